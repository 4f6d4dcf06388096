/**
 * Status changes as EventBridge events (lambdas/core/events.ts), observed as an owner would: a rule on the
 * emulator's default bus matching source mfenv, targeting a CloudWatch Logs group (which the emulator
 * delivers to), read back over HTTP. And a publish that fails leaves the transition standing.
 */
import { CloudWatchLogsClient, CreateLogGroupCommand, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { resetClients } from '../../../lambdas/core/clients';
import * as registry from '../../../lambdas/core/registry';
import { handler } from '../../../lambdas/steps/registry-steps';
import { useEmulator } from '../../support/emulator';
import { emfDocuments, jsonLinesOf } from '../../support/stdout';
import { invoke, quietLogs, recordFor, uniqueName, withSetting, workflowEnvironment } from './fixtures';

const { context } = useEmulator();
const LOG_GROUP = 'mfenv-status-events';
let logs: CloudWatchLogsClient;
let events: EventBridgeClient;

beforeAll(async () => {
  quietLogs();
  logs = new CloudWatchLogsClient(context.clientConfig);
  events = new EventBridgeClient(context.clientConfig);
  await logs.send(new CreateLogGroupCommand({ logGroupName: LOG_GROUP }));
  // The rule an owner would write (README, Notifications), on the default bus.
  await events.send(new PutRuleCommand({ Name: 'mfenv-status', EventPattern: JSON.stringify({ source: ['mfenv'] }) }));
  await events.send(
    new PutTargetsCommand({
      Rule: 'mfenv-status',
      Targets: [{ Id: 'log', Arn: `arn:aws:logs:${context.bootstrap.env.AWS_REGION ?? 'us-east-1'}:123456789012:log-group:${LOG_GROUP}` }],
    }),
  );
});
afterAll(() => {
  logs?.destroy();
  events?.destroy();
});

/** Every event the rule delivered for one environment. */
async function eventsOf(name: string): Promise<Record<string, any>[]> {
  const { events: logEvents = [] } = await logs.send(new FilterLogEventsCommand({ logGroupName: LOG_GROUP }));
  return logEvents.map((logEvent) => JSON.parse(logEvent.message!) as Record<string, any>).filter((event) => event.detail?.name === name);
}

describe('status-change events', () => {
  it('go out once per status: READY says who, what and where, and nothing secret', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('evented'));
    await registry.putNewEnvironment(recordFor(environment, 'CREATING'));

    // act
    const lines = await jsonLinesOf(async () => {
      await invoke(handler, { step: 'markReady', environment });
      // A retried step finds READY recorded already, and announces nothing more.
      await invoke(handler, { step: 'markReady', environment });
    });

    // assess
    const delivered = await eventsOf(environment.name);
    expect(delivered.map((event) => event['detail-type'])).toEqual(['Environment CREATING', 'Environment READY']);
    const ready = delivered[1]!;
    expect(ready).toMatchObject({ source: 'mfenv', 'detail-type': 'Environment READY' });
    const record = (await registry.getEnvironment(environment.name))!;
    expect(ready.detail).toEqual({
      name: environment.name,
      owner: environment.owner,
      status: 'READY',
      statusReason: null,
      generation: 1,
      region: record.region,
      bucket: record.resources.bucket,
      jobQueueArn: record.resources.jobQueueArn,
      updatedAt: record.updatedAt,
    });
    // Nothing of the Metaflow payload, no role ARN: what a chat channel may show.
    expect(JSON.stringify(ready.detail)).not.toMatch(/role|METAFLOW/i);
    const readyMetrics = emfDocuments(lines).filter((document) => 'SecondsToReady' in document);
    expect(readyMetrics).toHaveLength(1);
    expect(readyMetrics[0]!.SecondsToReady).toBeGreaterThanOrEqual(0);
  });

  it('that cannot be published leave the transition standing, logged and counted', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('unannounced'));
    await registry.putNewEnvironment(recordFor(environment, 'CREATING'));

    // act: EventBridge at a closed port, everything else at the emulator
    const lines = await withSetting('AWS_ENDPOINT_URL_EVENTBRIDGE', 'http://127.0.0.1:9', async () => {
      resetClients();
      try {
        return await jsonLinesOf(() => invoke(handler, { step: 'markReady', environment }));
      } finally {
        resetClients();
      }
    });

    // assess
    expect((await registry.getEnvironment(environment.name))!.status).toBe('READY');
    expect((await eventsOf(environment.name)).map((event) => event['detail-type'])).toEqual(['Environment CREATING']);
    const notPublished = emfDocuments(lines).filter((document) => 'StatusEventsNotPublished' in document);
    expect(notPublished).toEqual([expect.objectContaining({ StatusEventsNotPublished: 1, service: 'mfenv' })]);
  });
});
