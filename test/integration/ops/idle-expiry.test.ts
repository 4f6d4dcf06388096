/**
 * Idle expiry against the emulator: environments recorded READY with a real job queue in its Batch, jobs
 * submitted to it, the teardown started on a stand-in state machine of its Step Functions, and the events
 * delivered by an EventBridge rule of its default bus to a CloudWatch Logs group (the emulator delivers there). Time is the check's clock, moved by
 * the test: a job's createdAt is the emulator's now, an environment made "20 days ago" says so in its record.
 */
import {
  BatchClient,
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
} from '@aws-sdk/client-batch';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CloudWatchLogsClient, CreateLogGroupCommand, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import type { Context } from 'aws-lambda';
import type { EnvironmentRecord } from '../../../lambdas/core/environment';
import { EVENT_SOURCE } from '../../../lambdas/core/events';
import { DAY_MS, IDLE_EXPIRY_EVENT, type IdleExpiryPolicy, checkEnvironment, checkIdleEnvironments } from '../../../lambdas/core/idle-expiry';
import * as registry from '../../../lambdas/core/registry';
import { SETTING } from '../../../lambdas/core/settings';
import { handler } from '../../../lambdas/ops/idle-expiry';
import { type Workflows, createStandInWorkflows, executionsFor } from '../api/fixtures';
import { useEmulator } from '../../support/emulator';
import { OWNER, namesOf, quietLogs, recordFor, uniqueName, workflowEnvironment } from '../steps/fixtures';

const emulator = useEmulator();
const POLICY: IdleExpiryPolicy = { idleDays: 14, graceDays: 3 };

let batch: BatchClient;
let logs: CloudWatchLogsClient;
let workflows: Workflows;
const LOG_GROUP = 'mfenv-idle-expiry-events';
/** Events already returned by eventsAbout, by id: each is read once. */
const seen = new Set<string>();
let jobDefinition: string;

beforeAll(async () => {
  quietLogs();
  const { clientConfig } = emulator.context;
  batch = new BatchClient(clientConfig);
  logs = new CloudWatchLogsClient(clientConfig);
  workflows = await createStandInWorkflows(emulator.context);
  // Every mfenv event lands in one log group, as an owner's own rule would route it.
  const events = new EventBridgeClient(clientConfig);
  await logs.send(new CreateLogGroupCommand({ logGroupName: LOG_GROUP }));
  await events.send(new PutRuleCommand({ Name: 'mfenv-idle-events', EventPattern: JSON.stringify({ source: [EVENT_SOURCE] }) }));
  await events.send(
    new PutTargetsCommand({ Rule: 'mfenv-idle-events', Targets: [{ Id: 'log', Arn: `arn:aws:logs:us-east-1:123456789012:log-group:${LOG_GROUP}` }] }),
  );
  events.destroy();
  jobDefinition = (
    await batch.send(
      new RegisterJobDefinitionCommand({ jobDefinitionName: 'metaflow_idle', type: 'container', containerProperties: { image: 'python:3.12', vcpus: 1, memory: 512 } }),
    )
  ).jobDefinitionArn!;
});

afterAll(() => {
  batch.destroy();
  logs.destroy();
  workflows.sfn.destroy();
});

/** A READY environment created `ageDays` ago, with its job queue in the emulator's Batch. */
async function readyEnvironment(base: string, ageDays: number, overrides: Partial<EnvironmentRecord> = {}): Promise<EnvironmentRecord> {
  const environment = workflowEnvironment(uniqueName(base));
  const names = namesOf(environment.name);
  const createdAt = new Date(Date.now() - ageDays * DAY_MS).toISOString();
  const record: EnvironmentRecord = { ...recordFor(environment, 'READY'), createdAt, updatedAt: createdAt, ...overrides };
  await batch.send(
    new CreateComputeEnvironmentCommand({
      computeEnvironmentName: names.computeEnvironmentName,
      type: 'UNMANAGED',
      state: 'ENABLED',
      serviceRole: emulator.context.bootstrap.env[SETTING.batchServiceRoleArn],
    }),
  );
  await batch.send(
    new CreateJobQueueCommand({
      jobQueueName: names.jobQueueName,
      state: 'ENABLED',
      priority: 1,
      computeEnvironmentOrder: [{ order: 1, computeEnvironment: names.computeEnvironmentArn }],
    }),
  );
  await registry.putNewEnvironment(record);
  // Writing the record READY published its status event: read it now, so a test sees only what the check sends.
  await eventsAbout(record.name);
  return record;
}

async function submitJob(record: EnvironmentRecord): Promise<void> {
  await batch.send(new SubmitJobCommand({ jobName: 'start', jobQueue: record.resources.jobQueueArn, jobDefinition }));
}

/** The events about `name` delivered since the last call (the status events of the test's own setup included). */
async function eventsAbout(name: string): Promise<{ 'detail-type': string; detail: Record<string, unknown> }[]> {
  const { events = [] } = await logs.send(new FilterLogEventsCommand({ logGroupName: LOG_GROUP }));
  const delivered = events.map((event) => JSON.parse(event.message!)).filter((event) => event.detail?.name === name && !seen.has(event.id));
  for (const event of delivered) seen.add(event.id);
  return delivered;
}

const current = async (record: EnvironmentRecord) => (await registry.getEnvironment(record.name))!;
const at = (offsetDays: number) => new Date(Date.now() + offsetDays * DAY_MS);

describe('the idle-expiry check', () => {
  it('does nothing at all when the setting is off', async () => {
    // prepare
    const idle = await readyEnvironment('off', 400);
    const saved = process.env[SETTING.idleExpiryDays];
    delete process.env[SETTING.idleExpiryDays];

    // act
    let report;
    try {
      report = await handler({}, {} as Context);
    } finally {
      if (saved !== undefined) process.env[SETTING.idleExpiryDays] = saved;
    }

    // assess
    expect(report).toEqual({ enabled: false, outcomes: {} });
    expect(await current(idle)).toEqual(idle);
  });

  it('leaves an environment with a recent job alone, recording when that job was submitted', async () => {
    // prepare
    const busy = await readyEnvironment('busy', 30);
    await submitJob(busy);

    // act
    const outcome = await checkEnvironment(busy, POLICY, at(0));

    // assess
    const after = await current(busy);
    expect(outcome).toBe('active');
    expect(after).toMatchObject({ status: 'READY', statusReason: null, generation: busy.generation });
    expect(after.idleExpiryAnnouncedAt ?? null).toBeNull();
    expect(Date.now() - Date.parse(after.lastActivityAt!)).toBeLessThan(60_000);
  });

  it('keeps counting from the recorded job once Batch no longer lists it', async () => {
    // prepare: a job seen 10 days ago (recorded), none listed now.
    const lastActivityAt = at(-10).toISOString();
    const quiet = await readyEnvironment('quiet', 30, { lastActivityAt });

    // act
    const early = await checkEnvironment(quiet, POLICY, at(0));
    const later = await checkEnvironment(quiet, POLICY, at(4));

    // assess
    expect(early).toBe('active');
    expect(later).toBe('announced');
    expect((await current(quiet)).statusReason).toMatch(new RegExp(`^Idle since ${lastActivityAt.slice(0, 10)}: no job submitted for 14 days`));
  });

  it('announces an environment idle past the period: statusReason and an event, nothing torn down', async () => {
    // prepare
    const idle = await readyEnvironment('idle', 20);
    const now = at(0);

    // act
    const report = await checkIdleEnvironments(POLICY, () => now);

    // assess
    const after = await current(idle);
    const tearDownOn = at(3).toISOString().slice(0, 10);
    expect(report.outcomes[idle.name]).toBe('announced');
    expect(after).toMatchObject({ status: 'READY', generation: idle.generation, idleExpiryAnnouncedAt: now.toISOString(), owner: OWNER });
    expect(after.statusReason).toBe(
      `Idle since ${idle.createdAt.slice(0, 10)}: no job submitted for 20 days; it will be torn down on ${tearDownOn} ` +
        '(its bucket kept) unless a job runs or an admin exempts it.',
    );
    const events = await eventsAbout(idle.name);
    expect(events).toEqual([
      expect.objectContaining({
        'detail-type': IDLE_EXPIRY_EVENT.announced,
        detail: expect.objectContaining({ name: idle.name, owner: OWNER, status: 'READY', statusReason: after.statusReason, idleDays: 20 }),
      }),
    ]);
    expect((await executionsFor(workflows, idle.name)).teardown).toEqual([]);
  });

  it('withdraws the announcement when a job runs before the grace ends', async () => {
    // prepare
    const idle = await readyEnvironment('revived', 20);
    await checkEnvironment(idle, POLICY, at(0));
    await eventsAbout(idle.name);
    await submitJob(idle);

    // act
    const outcome = await checkEnvironment(await current(idle), POLICY, at(1));

    // assess
    const after = await current(idle);
    expect(outcome).toBe('withdrawn');
    expect(after).toMatchObject({ status: 'READY', statusReason: null, idleExpiryAnnouncedAt: null });
    expect(after.lastActivityAt).toBeDefined();
    expect((await eventsAbout(idle.name)).map((event) => event['detail-type'])).toEqual([IDLE_EXPIRY_EVENT.withdrawn]);
    expect(await checkEnvironment(after, POLICY, at(4))).toBe('active');
  });

  it('tears the environment down once the grace has passed, as a DELETE without purge, the owner unchanged', async () => {
    // prepare
    const idle = await readyEnvironment('expired', 20);
    await checkEnvironment(idle, POLICY, at(0));
    const announced = await current(idle);

    // act
    const inGrace = await checkEnvironment(announced, POLICY, at(2));
    const expired = await checkEnvironment(announced, POLICY, at(3));

    // assess
    const after = await current(idle);
    expect([inGrace, expired]).toEqual(['in-grace', 'expired']);
    expect(after).toMatchObject({ status: 'DELETING', generation: idle.generation + 1, purgeRequested: false, owner: OWNER });
    expect(after.statusReason).toMatch(/^Expired: idle since .*, announced on .* and torn down after a grace of 3 days\. Its bucket .* is kept/);
    const { teardown } = await executionsFor(workflows, idle.name);
    expect(teardown).toEqual([
      {
        name: `${idle.name}-teardown-${idle.generation + 1}`,
        input: { environment: expect.objectContaining({ name: idle.name, owner: OWNER, generation: idle.generation + 1, purge: false, mode: 'delete' }) },
      },
    ]);
    expect((await eventsAbout(idle.name)).map((event) => event['detail-type'])).toEqual([IDLE_EXPIRY_EVENT.announced, 'Environment DELETING']);
  });

  it('skips an exempt environment, and withdraws an announcement an admin answered with an exemption', async () => {
    // prepare
    const exempt = await readyEnvironment('exempt', 400, { idleExpiryExempt: true });
    const announced = await readyEnvironment('exempted-late', 20);
    await checkEnvironment(announced, POLICY, at(0));
    await registry.transition(announced.name, { from: ['READY'], to: 'READY', statusReason: (await current(announced)).statusReason, set: { idleExpiryExempt: true } });

    // act
    const report = await checkIdleEnvironments(POLICY, () => at(5));

    // assess
    expect(report.outcomes[exempt.name]).toBe('exempt');
    expect(report.outcomes[announced.name]).toBe('withdrawn');
    expect(await current(exempt)).toEqual(exempt);
    expect(await current(announced)).toMatchObject({ status: 'READY', statusReason: null, idleExpiryAnnouncedAt: null, idleExpiryExempt: true });
    expect((await executionsFor(workflows, announced.name)).teardown).toEqual([]);
  });

  it('changes nothing when an admin exempts the environment, or its owner deletes it, after the check read it', async () => {
    // prepare: both announced, grace passed; then changed behind the check's back.
    const exempted = await readyEnvironment('race-exempt', 20);
    const deleted = await readyEnvironment('race-delete', 20);
    for (const record of [exempted, deleted]) await checkEnvironment(record, POLICY, at(0));
    const [staleExempted, staleDeleted] = [await current(exempted), await current(deleted)];
    await registry.transition(exempted.name, { from: ['READY'], to: 'READY', statusReason: staleExempted.statusReason, set: { idleExpiryExempt: true } });
    await registry.transition(deleted.name, { from: ['READY'], generation: deleted.generation, to: 'DELETING', statusReason: null, set: { generation: deleted.generation + 1 } });

    // act
    const outcomes = [await checkEnvironment(staleExempted, POLICY, at(3)), await checkEnvironment(staleDeleted, POLICY, at(3))];

    // assess
    expect(outcomes).toEqual(['changed', 'changed']);
    expect(await current(exempted)).toMatchObject({ status: 'READY', generation: exempted.generation, idleExpiryExempt: true });
    expect(await current(deleted)).toMatchObject({ status: 'DELETING', generation: deleted.generation + 1, statusReason: null });
    expect((await executionsFor(workflows, exempted.name)).teardown).toEqual([]);
    expect((await executionsFor(workflows, deleted.name)).teardown).toEqual([]);
  });
});
