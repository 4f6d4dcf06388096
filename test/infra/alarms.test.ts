/**
 * Optional alarms (infra/alarms.ts): none unless the deployment asks (they bill by the month); when asked,
 * one per workflow on failed executions and one on API 5xx, notifying the topic given.
 */
import { CONTEXT, ConfigError } from '../../infra/config';
import { resourcesOfType, synthesize } from './synth';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:mfenv-alarms';

describe('the alarms', () => {
  it('are absent by default: nothing that bills by the month', () => {
    // prepare
    const context = {};

    // act
    const { json } = synthesize(context);

    // assess
    expect(resourcesOfType(json, 'AWS::CloudWatch::Alarm')).toEqual([]);
  });

  it('watch every workflow for failed executions and the API for 5xx when mfenv:alarms is true, notifying the topic', () => {
    // prepare
    const context = { [CONTEXT.alarms]: 'true', [CONTEXT.alarmTopicArn]: TOPIC };

    // act
    const { stack, json } = synthesize(context);

    // assess
    const alarms = resourcesOfType(json, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!);
    const failed = alarms.filter((alarm) => alarm.Namespace === 'AWS/States' && alarm.MetricName === 'ExecutionsFailed');
    expect(failed).toHaveLength(Object.keys(stack.workflows.stateMachines).length);
    expect(alarms.filter((alarm) => alarm.Namespace === 'AWS/ApiGateway' && alarm.MetricName === '5XXError')).toHaveLength(1);
    expect(alarms).toHaveLength(failed.length + 1);
    for (const alarm of alarms) {
      expect(alarm).toMatchObject({ Threshold: 1, EvaluationPeriods: 1, Period: 300, Statistic: 'Sum', TreatMissingData: 'notBreaching', AlarmActions: [TOPIC] });
    }
  });

  it('notify nobody without a topic, and a topic without alarms is refused at synth', () => {
    // prepare
    const withoutTopic = { [CONTEXT.alarms]: true };
    const topicOnly = { [CONTEXT.alarmTopicArn]: TOPIC };

    // act
    const { json } = synthesize(withoutTopic);
    const refused = () => synthesize(topicOnly);

    // assess
    const alarms = resourcesOfType(json, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!);
    expect(alarms.length).toBeGreaterThan(1);
    for (const alarm of alarms) expect(alarm.AlarmActions).toBeUndefined();
    expect(refused).toThrow(ConfigError);
    expect(refused).toThrow(/mfenv:alarmTopicArn is set but mfenv:alarms is not true/);
  });
});
