/**
 * Optional CloudWatch alarms (context mfenv:alarms, off by default: an alarm bills by the month, about
 * $0.10 each, and mfenv otherwise costs nothing idle). Kept to what a platform owner acts on: an execution
 * of a workflow that failed (a create that could not even roll back cleanly, a teardown that stopped), and
 * the API answering 5xx. With mfenv:alarmTopicArn, each alarm notifies that SNS topic.
 */
import { Duration } from 'aws-cdk-lib';
import type * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** One 5-minute period, any occurrence: each of these is rare and worth a look. */
const PERIOD = Duration.minutes(5);

export interface AlarmsProps {
  /** Every state machine of the stack, by its id. */
  stateMachines: Record<string, sfn.IStateMachine>;
  api: apigateway.RestApi;
  /** SNS topic the alarms notify; without one, they only show in the console. */
  topicArn?: string;
}

export class Alarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const common = {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No execution, no request: nothing is wrong, and an idle deployment stays OK rather than INSUFFICIENT_DATA.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    };
    for (const [machineId, stateMachine] of Object.entries(props.stateMachines)) {
      this.alarms.push(
        stateMachine.metricFailed({ period: PERIOD, statistic: cloudwatch.Stats.SUM }).createAlarm(this, `${machineId}ExecutionsFailed`, {
          ...common,
          alarmDescription: `An execution of the ${machineId} workflow failed: its environment's statusReason says why, and the execution's history which step.`,
        }),
      );
    }
    this.alarms.push(
      props.api.metricServerError({ period: PERIOD, statistic: cloudwatch.Stats.SUM }).createAlarm(this, 'ApiServerErrors', {
        ...common,
        alarmDescription: 'The mfenv API answered 5xx: the API function log group has the request id and the error.',
      }),
    );
    if (props.topicArn) {
      const topic = sns.Topic.fromTopicArn(this, 'Topic', props.topicArn);
      for (const alarm of this.alarms) alarm.addAlarmAction(new actions.SnsAction(topic));
    }
  }
}
