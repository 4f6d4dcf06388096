/**
 * DELETE of an environment whose workflow stopped without recording an outcome: a CREATING or DELETING
 * record must never be stuck. The service looks up the execution the record waits on (by its deterministic
 * name) in the emulator's Step Functions, which leaves every execution RUNNING until it is stopped: a
 * running workflow is a started execution, a workflow aborted by hand a stopped one, a workflow that never
 * started no execution at all.
 */
import { DescribeExecutionCommand, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import type { EnvironmentRecord, EnvironmentStatus } from '../../../lambdas/core/environment';
import { WORKFLOW_START_WINDOW_MS } from '../../../lambdas/core/environments';
import { executionName, namesFor, resourcesOf } from '../../../lambdas/core/naming';
import * as registry from '../../../lambdas/core/registry';
import { currentDeployment, settings } from '../../../lambdas/core/settings';
import { type Answer, userArn } from '../../support/api-events';
import { useEmulator } from '../../support/emulator';
import { advance, asAlice, executionsFor, snapshot, useFreshRegistryAndWorkflows } from './fixtures';

const emulator = useEmulator({ maxEnvironmentsPerOwner: 10, maxEnvironments: 40 });
const workflows = useFreshRegistryAndWorkflows(emulator);

function expectProblem(answer: Answer, status: number) {
  expect({ status: answer.status, contentType: answer.headers['content-type'] }).toEqual({
    status,
    contentType: 'application/problem+json',
  });
  expect(answer.json).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
}

/** Longer ago than any request or step may still be starting the workflow of a status change. */
const LONG_AGO_MS = WORKFLOW_START_WINDOW_MS * 10;

/**
 * A record as a request or step leaves it when it dies between writing the status and starting the
 * workflow (or when its workflow has gone): `status` at `generation`, last changed `changedMsAgo` ago.
 */
async function recordLeftIn(
  name: string,
  status: EnvironmentStatus,
  generation: number,
  changedMsAgo = LONG_AGO_MS,
  more: Partial<EnvironmentRecord> = {},
): Promise<EnvironmentRecord> {
  const at = new Date(Date.now() - changedMsAgo).toISOString();
  const record: EnvironmentRecord = {
    name,
    owner: userArn('alice'),
    ownerUniqueId: null,
    purgeRequested: false,
    status,
    statusReason: null,
    region: settings.region(),
    spec: { maxVcpus: 4, gpu: false },
    resources: resourcesOf(namesFor(currentDeployment(), name)),
    config: null,
    generation,
    retainedBucket: null,
    createdAt: at,
    updatedAt: at,
    ...more,
  };
  await registry.putNewEnvironment(record);
  return record;
}

/** Starts the execution a record would wait on, as its workflow would be; moto keeps it RUNNING. */
async function startExecution(stateMachineArn: string, name: string, environment: Record<string, unknown>): Promise<string> {
  const { executionArn } = await workflows.sfn.send(
    new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify({ environment }) }),
  );
  return executionArn!;
}

async function statusOf(executionArn: string) {
  return (await workflows.sfn.send(new DescribeExecutionCommand({ executionArn }))).status;
}

/** The ARN StartExecution answered for an execution of `stateMachineArn` named `name`. */
const executionArnOf = (stateMachineArn: string, name: string) => `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;

describe('DELETE of a CREATING environment', () => {
  it('tears it down at the next generation when no provisioning execution exists', async () => {
    // prepare: the request that wrote CREATING died before StartExecution reached Step Functions
    await recordLeftIn('orphan', 'CREATING', 1);

    // act
    const answer = await asAlice.delete('/environments/orphan');

    // assess
    expect(answer.status).toBe(202);
    expect(answer.json).toMatchObject({ name: 'orphan', status: 'DELETING', statusReason: expect.stringMatching(/had stopped/) });
    expect(await registry.getEnvironment('orphan')).toMatchObject({
      status: 'DELETING',
      generation: 2,
      statusReason: expect.stringMatching(/^The workflow creating it had stopped \(no execution of it exists\)/),
    });
    expect(await executionsFor(workflows, 'orphan')).toEqual({
      provision: [],
      teardown: [
        {
          name: 'orphan-teardown-2',
          input: {
            environment: { name: 'orphan', owner: userArn('alice'), ownerUniqueId: null, spec: { maxVcpus: 4, gpu: false }, generation: 2, purge: false, mode: 'delete' },
          },
        },
      ],
      update: [],
    });
  });

  it('tears it down at once when its provisioning was aborted by hand, however recent', async () => {
    // prepare
    expect((await asAlice.post('/environments', { name: 'aborted' })).status).toBe(202);
    const provision = executionArnOf(workflows.provisionArn, 'aborted-provision-1');
    await workflows.sfn.send(new StopExecutionCommand({ executionArn: provision }));

    // act
    const answer = await asAlice.delete('/environments/aborted');

    // assess
    expect(answer.status).toBe(202);
    expect(await registry.getEnvironment('aborted')).toMatchObject({
      status: 'DELETING',
      generation: 2,
      statusReason: expect.stringContaining('aborted-provision-1 (ABORTED)'),
    });
    expect((await executionsFor(workflows, 'aborted')).teardown.map((execution) => execution.name)).toEqual(['aborted-teardown-2']);
  });

  it('answers 409 and changes nothing while its provisioning execution is RUNNING', async () => {
    // prepare: an old record, so only the running execution can hold the DELETE back
    const record = await recordLeftIn('busy', 'CREATING', 3);
    const provision = await startExecution(workflows.provisionArn, executionName('provision', 'busy', 3), { name: 'busy', generation: 3 });
    expect(await statusOf(provision)).toBe('RUNNING');
    const before = await snapshot(workflows);

    // act
    const answer = await asAlice.delete('/environments/busy');

    // assess
    expectProblem(answer, 409);
    expect(answer.json.detail).toMatch(/still being created.*READY or CREATE_FAILED/);
    expect(await snapshot(workflows)).toEqual(before);
    expect(await registry.getEnvironment('busy')).toEqual(record);
  });

  it('answers 409 while the rollback of a failed provisioning is RUNNING', async () => {
    // prepare: provisioning failed, started its rollback on the teardown state machine, and ended
    await recordLeftIn('failing', 'CREATING', 1);
    const provision = await startExecution(workflows.provisionArn, 'failing-provision-1', { name: 'failing', generation: 1 });
    await workflows.sfn.send(new StopExecutionCommand({ executionArn: provision }));
    await startExecution(workflows.teardownArn, 'failing-rollback-1', { name: 'failing', generation: 1, mode: 'rollback' });
    const before = await snapshot(workflows);

    // act
    const answer = await asAlice.delete('/environments/failing');

    // assess
    expectProblem(answer, 409);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('answers 409 when its status changed a moment ago and the workflow may still be starting', async () => {
    // prepare: no execution yet, but the request that wrote CREATING may still be on its way to Step Functions
    await recordLeftIn('starting', 'CREATING', 1, 1_000);
    const before = await snapshot(workflows);

    // act
    const answer = await asAlice.delete('/environments/starting');

    // assess
    expectProblem(answer, 409);
    expect(await snapshot(workflows)).toEqual(before);
  });
});

describe('DELETE of a DELETING environment', () => {
  it('starts a new teardown at the next generation when no teardown execution exists', async () => {
    // prepare
    await recordLeftIn('halted', 'DELETING', 2);

    // act
    const answer = await asAlice.delete('/environments/halted');

    // assess
    expect(answer.status).toBe(202);
    expect(answer.headers['retry-after']).toBeDefined();
    expect(await registry.getEnvironment('halted')).toMatchObject({
      status: 'DELETING',
      generation: 3,
      statusReason: expect.stringMatching(/^The previous teardown had stopped/),
    });
    expect((await executionsFor(workflows, 'halted')).teardown.map((execution) => execution.name)).toEqual(['halted-teardown-3']);
  });

  it('starts a new teardown when the running one was aborted by hand, keeping purge when asked', async () => {
    // prepare
    expect((await asAlice.post('/environments', { name: 'stopped' })).status).toBe(202);
    await advance('stopped', 'READY');
    expect((await asAlice.delete('/environments/stopped')).status).toBe(202);
    await workflows.sfn.send(new StopExecutionCommand({ executionArn: executionArnOf(workflows.teardownArn, 'stopped-teardown-2') }));

    // act
    const answer = await asAlice.delete('/environments/stopped', { query: { purge: 'true' } });

    // assess
    expect(answer.status).toBe(202);
    expect(await registry.getEnvironment('stopped')).toMatchObject({
      status: 'DELETING',
      generation: 3,
      statusReason: expect.stringMatching(/stopped-teardown-2 \(ABORTED\).*\(purge\)\.$/),
    });
    const teardowns = (await executionsFor(workflows, 'stopped')).teardown;
    expect(teardowns.map((execution) => [execution.name, execution.input.environment.purge])).toEqual([
      ['stopped-teardown-2', false],
      ['stopped-teardown-3', true],
    ]);
  });

  it('answers 202 with the environment and starts nothing while its teardown is RUNNING', async () => {
    // prepare
    const record = await recordLeftIn('going', 'DELETING', 2);
    await startExecution(workflows.teardownArn, 'going-teardown-2', { name: 'going', generation: 2, purge: false });
    const before = await snapshot(workflows);

    // act
    const answer = await asAlice.delete('/environments/going');

    // assess
    expect(answer.status).toBe(202);
    expect(answer.json).toMatchObject({ name: 'going', status: 'DELETING', updatedAt: record.updatedAt });
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('answers 409 to ?purge=true while a teardown without purge is RUNNING, and changes nothing', async () => {
    // prepare
    await recordLeftIn('keeping', 'DELETING', 2);
    await startExecution(workflows.teardownArn, 'keeping-teardown-2', { name: 'keeping', generation: 2, purge: false });
    const before = await snapshot(workflows);

    // act
    const answer = await asAlice.delete('/environments/keeping', { query: { purge: 'true' } });

    // assess
    expectProblem(answer, 409);
    expect(answer.json.detail).toMatch(/already being deleted without purge.*until it is DELETED.*DELETE \/environments\/keeping\?purge=true again/);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('answers ?purge=true again with 202 while the running teardown purges already', async () => {
    // prepare: the first DELETE ?purge=true, whose answer the client lost
    expect((await asAlice.post('/environments', { name: 'purging' })).status).toBe(202);
    await advance('purging', 'READY');
    expect((await asAlice.delete('/environments/purging', { query: { purge: 'true' } })).status).toBe(202);
    const before = await snapshot(workflows);

    // act
    const answer = await asAlice.delete('/environments/purging', { query: { purge: 'true' } });

    // assess
    expect(answer.status).toBe(202);
    expect(answer.json.status).toBe('DELETING');
    expect(await snapshot(workflows)).toEqual(before);
  });
});

describe('DELETE of an UPDATING environment', () => {
  it('tears it down, the compute environment in force named, once the resize was aborted by hand', async () => {
    // prepare: a resize (generation 3) of an environment whose compute environment in force is revision 2,
    // its update execution stopped before it recorded an outcome
    await recordLeftIn('resizing', 'UPDATING', 3, LONG_AGO_MS, { computeEnvironmentRevision: 2, pendingSpec: { maxVcpus: 8, gpu: false } });
    const update = await startExecution(workflows.updateArn, executionName('update', 'resizing', 3), { name: 'resizing', generation: 3 });
    await workflows.sfn.send(new StopExecutionCommand({ executionArn: update }));

    // act
    const answer = await asAlice.delete('/environments/resizing');

    // assess: the teardown removes revision 2 and whatever the resize left (batch-steps: every compute environment)
    expect(answer.status).toBe(202);
    expect(await registry.getEnvironment('resizing')).toMatchObject({
      status: 'DELETING',
      generation: 4,
      statusReason: expect.stringMatching(/^The workflow resizing it had stopped.*resizing-update-3 \(ABORTED\)/),
    });
    const { teardown } = await executionsFor(workflows, 'resizing');
    expect(teardown).toEqual([
      { name: 'resizing-teardown-4', input: { environment: expect.objectContaining({ name: 'resizing', generation: 4, mode: 'delete', computeEnvironmentRevision: 2 }) } },
    ]);
  });
});
