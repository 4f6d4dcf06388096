/**
 * Idle expiry (lambdas/core/idle-expiry.ts): the checker Lambda and the EventBridge rule that runs it once a
 * day. infra/stack.ts creates this only when mfenv:idleExpiryDays is set; otherwise the stack has neither.
 *
 * Cost while idle: one scheduled invocation a day (30 or 31 a month, a few seconds each, inside Lambda's free
 * tier; EventBridge does not charge for the events of scheduled rules), and per READY environment one Batch
 * ListJobs call and, only when something changes, one registry write.
 */
import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { IDLE_EXPIRY_FUNCTION } from '../lambdas/steps/catalogue';
import { MfenvFunction, bindStateMachine } from './functions';
import { publishStatusEventsStatement } from './permissions';

/** How often the check runs: idleness is counted in days, so once a day announces at most a day late. */
export const IDLE_EXPIRY_SCHEDULE = events.Schedule.rate(Duration.days(1));

export interface IdleExpiryProps {
  table: dynamodb.ITable;
  teardownStateMachineArn: string;
  idleDays: number;
  graceDays: number;
}

/**
 * The registry access of the check: it lists the environments (a scan of a table of a few hundred items),
 * reads one back after a lost conditional write, and updates one conditionally. No Put, no Delete.
 */
export function bindIdleExpiryRegistry(fn: MfenvFunction, table: dynamodb.ITable): void {
  fn.setSetting('tableName', table.tableName);
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'CheckEnvironmentRecords',
      actions: ['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
      resources: [table.tableArn],
    }),
  );
}

/**
 * The jobs of an environment's queue. batch:ListJobs supports no resource-level permission (AWS Batch's
 * list of actions that do leaves it out), so it is granted on `*`; the check reads only summaries.
 */
export function bindJobListing(fn: MfenvFunction): void {
  fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListQueueJobs', actions: ['batch:ListJobs'], resources: ['*'] }));
}

export class IdleExpiry extends Construct {
  readonly function: MfenvFunction;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: IdleExpiryProps) {
    super(scope, id);
    this.function = new MfenvFunction(this, 'Function', {
      entry: IDLE_EXPIRY_FUNCTION.entry,
      description: IDLE_EXPIRY_FUNCTION.description,
      // At most 50 environments, one ListJobs each and a write when something changes: seconds, not minutes.
      timeout: Duration.seconds(90),
    });
    this.function
      .setSetting('idleExpiryDays', String(props.idleDays))
      .setSetting('idleExpiryGraceDays', String(props.graceDays));
    bindIdleExpiryRegistry(this.function, props.table);
    bindJobListing(this.function);
    // Its announcements, and the status changes it writes (DELETING), go out as events (lambdas/core/events.ts).
    this.function.addToRolePolicy(publishStatusEventsStatement());
    // Expiry starts the teardown as a DELETE does (lambdas/core/environments.ts, startTeardown).
    bindStateMachine(this.function, 'teardownStateMachineArn', props.teardownStateMachineArn);
    // A failed run is not retried: every run checks from the registry again, and the next one is a day away.
    this.function.configureAsyncInvoke({ retryAttempts: 0 });

    this.rule = new events.Rule(this, 'Schedule', {
      description: 'Runs the idle-expiry check of mfenv environments once a day.',
      schedule: IDLE_EXPIRY_SCHEDULE,
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 2 })],
    });
  }
}
