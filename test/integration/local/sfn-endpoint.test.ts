/**
 * The local Step Functions endpoint, reached by the project's ordinary SFNClient (lambdas/core/clients.ts)
 * through AWS_ENDPOINT_URL_SFN only, as the API handler and the rollback step reach it in local mode.
 * Step handlers are scripted (a gate holds an execution RUNNING for as long as a test needs). The history
 * it answers with is read by the API's progress lookup (lambdas/core/environments.ts, progressOf) as on AWS.
 */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  type GetExecutionHistoryCommandInput,
  type HistoryEvent,
  InvalidName,
  InvalidToken,
  ListExecutionsCommand,
  StartExecutionCommand,
  StateMachineDoesNotExist,
  ValidationException,
} from '@aws-sdk/client-sfn';
import { type SfnEndpoint, startSfnEndpoint } from '../../../infra/local/sfn-endpoint';
import { WorkflowRunner } from '../../../infra/local/workflow-runner';
import { resetClients, sfnClient } from '../../../lambdas/core/clients';
import type { EnvironmentRecord } from '../../../lambdas/core/environment';
import { PROGRESS_PAGE_SIZE, progressOf } from '../../../lambdas/core/environments';
import { logger } from '../../../lambdas/core/logger';
import { readHistory, stepOf } from '../../../lambdas/core/progress';
import { SETTING } from '../../../lambdas/core/settings';
import { outcomeOf } from '../../support/outcome';

const saved = { ...process.env };
let release: () => void = () => undefined;
let gate = new Promise<void>((open) => (release = open));
/** Generation 3 of alice polls its compute environment this many times, and the last poll waits for pollGate. */
const LONG_POLLS = 6;
let releasePoll: () => void = () => undefined;
const pollGate = new Promise<void>((open) => (releasePoll = open));
const runner = new WorkflowRunner({
  region: 'us-east-1',
  accountId: '123456789012',
  stackName: 'mfenv-test',
  waitMs: 5,
  retryMs: 5,
  loadStepHandler: () => async (event) => {
    const { step, poll, environment } = event as { step: string; poll?: { attempt: number }; environment: { generation: number } };
    if (step === 'createBucket' && environment.generation < 3) await gate;
    if (step.startsWith('poll')) {
      const attempt = (poll?.attempt ?? 0) + 1;
      // As the real polls answer: the instance profile seen often enough, no compute environment to re-create.
      const answer = { attempt, waitSeconds: 2, sightings: 3, recreate: false };
      if (step !== 'pollComputeEnvironment' || environment.generation !== 3) return { ...answer, done: true };
      if (attempt === LONG_POLLS) await pollGate;
      return { ...answer, done: attempt >= LONG_POLLS };
    }
    // as the real step answers with network isolation off
    if (step === 'allocateNetwork') return { cidr: null };
    return {};
  },
});
let endpoint: SfnEndpoint;

const provisionArn = runner.stateMachineArn('provision');
/** The registry record of alice at `generation`, in `status`: what the API reads progress for. */
const aliceRecord = (status: EnvironmentRecord['status'], generation: number): EnvironmentRecord => ({
  name: 'alice',
  owner: 'arn:aws:iam::123456789012:user/alice',
  ownerUniqueId: null,
  status,
  statusReason: null,
  region: 'us-east-1',
  spec: { maxVcpus: 4, gpu: false },
  resources: { bucket: 'b', jobQueueArn: 'q', computeEnvironmentArn: 'c', jobRoleArn: 'j', instanceProfileArn: 'i', accessRoleArn: 'a' },
  config: null,
  generation,
  retainedBucket: null,
  purgeRequested: false,
  createdAt: new Date().toISOString(),
  updatedAt: new Date().toISOString(),
});
const environmentInput = (generation: number) =>
  JSON.stringify({ environment: { name: 'alice', owner: 'arn:aws:iam::123456789012:user/alice', spec: { maxVcpus: 4, gpu: false }, generation } });

beforeAll(async () => {
  endpoint = await startSfnEndpoint(runner);
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    // Every other service would go to a port where nothing listens: only the SFN-specific variable can work.
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_SFN: endpoint.endpoint,
    [SETTING.provisionStateMachineArn]: provisionArn,
    [SETTING.teardownStateMachineArn]: runner.stateMachineArn('teardown'),
  });
  resetClients();
});

afterAll(async () => {
  release();
  await runner.settled();
  await endpoint.stop();
  process.env = saved;
  resetClients();
});

/** Every page of an execution's history, read through the SDK as a caller pages through it. */
async function allPages(request: GetExecutionHistoryCommandInput): Promise<{ events: HistoryEvent[]; pages: number }> {
  const events: HistoryEvent[] = [];
  let pages = 0;
  let nextToken: string | undefined;
  do {
    const answer = await sfnClient().send(new GetExecutionHistoryCommand({ ...request, nextToken }));
    events.push(...(answer.events ?? []));
    nextToken = answer.nextToken;
    pages += 1;
  } while (nextToken);
  return { events, pages };
}

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  // Bounded (≈ 30 s at most) but generous: the machine running the tests may be busy.
  for (let attempt = 0; attempt < 1200; attempt++) {
    const value = await probe();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the condition never held');
}

describe('local Step Functions endpoint', () => {
  it('starts an execution, idempotently while it runs, and refuses the name for another input', async () => {
    // prepare
    const sfn = sfnClient();

    // act
    const first = await sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(1) }));
    const again = await sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(1) }));
    const other = sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(2) }));

    // assess
    expect(first.executionArn).toBe('arn:aws:states:us-east-1:123456789012:execution:mfenv-test-provision:alice-provision-1');
    expect(first.startDate).toBeInstanceOf(Date);
    expect(again.executionArn).toBe(first.executionArn);
    await expect(other).rejects.toBeInstanceOf(ExecutionAlreadyExists);
    expect(runner.list({ stateMachineArn: provisionArn })).toHaveLength(1);
  });

  it('describes and lists executions as they run and after they end', async () => {
    // prepare
    const sfn = sfnClient();
    const executionArn = runner.list({ stateMachineArn: provisionArn })[0]!.executionArn;

    // act
    const running = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    release();
    const ended = await until(
      () => sfn.send(new DescribeExecutionCommand({ executionArn })),
      (answer) => answer.status !== 'RUNNING',
    );
    const succeeded = await sfn.send(new ListExecutionsCommand({ stateMachineArn: provisionArn, statusFilter: 'SUCCEEDED' }));
    const runningNow = await sfn.send(new ListExecutionsCommand({ stateMachineArn: provisionArn, statusFilter: 'RUNNING' }));

    // assess
    expect(running).toMatchObject({ status: 'RUNNING', name: 'alice-provision-1', stateMachineArn: provisionArn, input: environmentInput(1) });
    expect(running.stopDate).toBeUndefined();
    expect(ended.status).toBe('SUCCEEDED');
    expect(JSON.parse(ended.output!)).toMatchObject({ environment: { name: 'alice', generation: 1 } });
    expect(ended.stopDate!.getTime()).toBeGreaterThanOrEqual(ended.startDate!.getTime());
    expect(succeeded.executions?.map((execution) => execution.executionArn)).toEqual([executionArn]);
    expect(runningNow.executions).toEqual([]);
  });

  it('refuses a closed execution name even with the same input', async () => {
    // prepare
    const sfn = sfnClient();

    // act
    const reused = sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(1) }));

    // assess
    await expect(reused).rejects.toBeInstanceOf(ExecutionAlreadyExists);
  });

  it('answers with the errors Step Functions uses for unknown machines, executions and bad names', async () => {
    // prepare
    const sfn = sfnClient();
    const missingMachine = 'arn:aws:states:us-east-1:123456789012:stateMachine:nope';

    // act
    const unknownMachine = outcomeOf(sfn.send(new StartExecutionCommand({ stateMachineArn: missingMachine, input: '{}' })));
    const unknownExecution = outcomeOf(
      sfn.send(new DescribeExecutionCommand({ executionArn: 'arn:aws:states:us-east-1:123456789012:execution:mfenv-test-provision:nope' })),
    );
    const badName = outcomeOf(sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'has space', input: '{}' })));

    // assess
    expect(await unknownMachine).toBeInstanceOf(StateMachineDoesNotExist);
    expect(await unknownExecution).toBeInstanceOf(ExecutionDoesNotExist);
    expect(await badName).toBeInstanceOf(InvalidName);
    expect(runner.list()).toHaveLength(1);
  });

  it('pages through the history of an ended execution as GetExecutionHistory does: oldest or newest first', async () => {
    // prepare
    const executionArn = runner.list({ stateMachineArn: provisionArn })[0]!.executionArn;
    const recorded = runner.history(executionArn);

    // act
    const forward = await allPages({ executionArn, maxResults: 7 });
    const backward = await allPages({ executionArn, maxResults: 5, reverseOrder: true });
    const whole = await sfnClient().send(new GetExecutionHistoryCommand({ executionArn }));
    const newest = await sfnClient().send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 3, includeExecutionData: false }));

    // assess: the same events either way, each with its id, the one before it, its type and time
    expect(recorded.length).toBeGreaterThan(30);
    expect(forward.events).toEqual(recorded);
    expect(forward.pages).toBe(Math.ceil(recorded.length / 7));
    expect(backward.events).toEqual([...recorded].reverse());
    expect(whole.events).toEqual(recorded);
    expect(whole.nextToken).toBeUndefined();
    expect(forward.events[0]).toMatchObject({ id: 1, previousEventId: 0, type: 'ExecutionStarted', timestamp: expect.any(Date) });
    expect(forward.events).toContainEqual(
      expect.objectContaining({ type: 'ParallelStateEntered', stateEnteredEventDetails: expect.objectContaining({ name: 'CreateStorageAndIdentity' }) }),
    );
    expect(forward.events).toContainEqual(expect.objectContaining({ type: 'WaitStateEntered' }));
    // the newest page, without the states' inputs and outputs
    expect(newest.events?.map((event) => event.id)).toEqual([recorded.length, recorded.length - 1, recorded.length - 2]);
    expect(newest.events?.[0]).toMatchObject({ type: 'ExecutionSucceeded', executionSucceededEventDetails: {} });
    expect(newest.events?.[1]).toMatchObject({ type: 'TaskStateExited', stateExitedEventDetails: { name: 'MarkReady' } });
    expect(JSON.stringify(newest.events)).not.toMatch(/"(input|output)"/);
    expect(newest.nextToken).toEqual(expect.any(String));
  });

  it('answers with the history of a running execution, newest first, up to the state it is in', async () => {
    // prepare: an execution held in the bucket step
    gate = new Promise<void>((open) => (release = open));
    const { executionArn } = await sfnClient().send(
      new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-2', input: environmentInput(2) }),
    );

    const definition = runner.stateMachines.provision.definition as { States: Record<string, any> };
    const parallel = Object.values(definition.States).find((state) => state.Type === 'Parallel');
    // Each other branch is done once one of its last states has run (a branch may choose between them: scheduling).
    const otherBranches = (parallel.Branches as { States: Record<string, { End?: boolean }> }[])
      .filter((branch) => !('CreateBucket' in branch.States))
      .map((branch) => Object.entries(branch.States).filter(([, state]) => state.End).map(([name]) => name));
    await until(
      async () => runner.history(executionArn!),
      (events) => otherBranches.every((ends) => events.some((event) => ends.includes(event.stateExitedEventDetails?.name ?? ''))),
    );

    // act: once the other branches are done, read the newest events as the API does, and its progress
    const newest = await sfnClient().send(
      new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: PROGRESS_PAGE_SIZE, includeExecutionData: false }),
    );
    const creating = await progressOf(aliceRecord('CREATING', 2));
    const ready = await progressOf(aliceRecord('READY', 2));
    release();

    // assess: what the API reads from it is the Parallel's step, from the Parallel's entry
    const parallelEntry = runner.history(executionArn!).find((event) => event.type === 'ParallelStateEntered')!;
    const parallelStep = stepOf('provision', parallelEntry.stateEnteredEventDetails!.name!)!.sentence;
    expect(newest.events?.every((event, index) => index === 0 || event.id! < newest.events![index - 1]!.id!)).toBe(true);
    expect(newest.events?.map((event) => event.type)).not.toContain('ExecutionSucceeded');
    expect(readHistory('provision', newest.events ?? [])).toMatchObject({ kind: 'running', progress: { step: parallelStep } });
    expect(creating).toEqual({ step: parallelStep, startedAt: parallelEntry.timestamp.toISOString() });
    expect(ready).toBeUndefined();
    await until(
      () => sfnClient().send(new DescribeExecutionCommand({ executionArn })),
      (answer) => answer.status === 'SUCCEEDED',
    );
  });

  it('refuses an unknown execution, a token of another request and a page too large, with the errors Step Functions uses', async () => {
    // prepare
    const sfn = sfnClient();
    const executionArn = runner.list({ stateMachineArn: provisionArn }).find((record) => record.name === 'alice-provision-1')!.executionArn;
    const { nextToken } = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 2 }));

    // act
    const unknown = outcomeOf(sfn.send(new GetExecutionHistoryCommand({ executionArn: `${executionArn}-nope` })));
    const otherDirection = outcomeOf(sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 2, reverseOrder: true, nextToken })));
    const garbled = outcomeOf(sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken: 'not-a-token' })));
    const tooLarge = outcomeOf(sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1001 })));

    // assess
    expect(await unknown).toBeInstanceOf(ExecutionDoesNotExist);
    expect(await otherDirection).toBeInstanceOf(InvalidToken);
    expect(await garbled).toBeInstanceOf(InvalidToken);
    expect(await tooLarge).toBeInstanceOf(ValidationException);
  });

  it('lets the API date a long poll loop from its start, reading older pages of the history', async () => {
    // prepare: an execution held in the last of several polls of its compute environment
    const { executionArn } = await sfnClient().send(
      new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-3', input: environmentInput(3) }),
    );
    await until(
      async () => runner.history(executionArn!),
      (events) => events.filter((event) => event.stateEnteredEventDetails?.name === 'CheckComputeEnvironmentValid').length === LONG_POLLS && events.at(-1)?.type === 'TaskStarted',
    );
    const send = jest.spyOn(sfnClient(), 'send');

    // act
    const progress = await progressOf(aliceRecord('CREATING', 3));
    releasePoll();

    // assess: the loop began when its first state was entered, more than one page of events ago
    const events = runner.history(executionArn!);
    const loopStart = events.find((event) => event.stateEnteredEventDetails?.name === 'StartWaitingForComputeEnvironmentValid')!;
    expect(events.length - loopStart.id).toBeGreaterThan(PROGRESS_PAGE_SIZE);
    expect(progress).toEqual({ step: 'Waiting for the compute environment to become valid', startedAt: loopStart.timestamp.toISOString() });
    expect(send.mock.calls.filter(([command]) => command instanceof GetExecutionHistoryCommand).length).toBeGreaterThan(1);
    send.mockRestore();
    await until(
      () => sfnClient().send(new DescribeExecutionCommand({ executionArn })),
      (answer) => answer.status === 'SUCCEEDED',
    );
  });

  it('lets the API answer without progress when the execution has ended or Step Functions cannot be reached', async () => {
    // prepare: alice-provision-2 has ended, and no rollback of it exists
    const warn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);

    // act
    const ended = await progressOf(aliceRecord('CREATING', 2));
    process.env.AWS_ENDPOINT_URL_SFN = 'http://127.0.0.1:9';
    resetClients();
    const startedAt = Date.now();
    const unreachable = await progressOf(aliceRecord('CREATING', 1));
    const tookMs = Date.now() - startedAt;

    // assess: no progress, no error; the failure is logged, and the wait for it is bounded
    process.env.AWS_ENDPOINT_URL_SFN = endpoint.endpoint;
    resetClients();
    expect(ended).toBeUndefined();
    expect(unreachable).toBeUndefined();
    expect(tookMs).toBeLessThan(10_000);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('could not read the progress'), expect.objectContaining({ environment: 'alice' }));
    warn.mockRestore();
  });
});
