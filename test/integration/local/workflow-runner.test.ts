/**
 * The local workflow runner executes the real ASL files. These tests replace the step handlers with
 * scripted ones (the runner's job is the binding, not what a step does: the step handlers have their own
 * integration tests against the emulator), so every path of both state machines can be driven on purpose.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../../infra/local/emulator';
import { type StepLambdaHandler, WorkflowRunner, allStates, prepareDefinition } from '../../../infra/local/workflow-runner';
import { ResourceConflictError, TransientError } from '../../../lambdas/core/errors';
import { STATE_MACHINES, STEP_FUNCTIONS, type StateMachineId, type StepFunctionId } from '../../../lambdas/steps/catalogue';

type Call = { functionId: StepFunctionId; payload: Record<string, any>; remainingMs: number };

/**
 * A scripted step: answers like the real steps do (poll steps report done, deleteBucket reports the bucket,
 * allocateNetwork reports no block of its own, as with network isolation off). `recreateOnce`: the first
 * wait for a VALID compute environment answers `recreate`, as for one AWS made INVALID before it could see
 * the new instance profile, so the provision takes its re-create path.
 */
function scriptedSteps(script: { fail?: Record<string, Error[]>; pollsBeforeDone?: number; recreateOnce?: boolean } = {}) {
  const calls: Call[] = [];
  const failures = Object.fromEntries(Object.entries(script.fail ?? {}).map(([step, errors]) => [step, [...errors]]));
  const load = (functionId: StepFunctionId): StepLambdaHandler => async (event, context) => {
    const payload = event as Record<string, any>;
    calls.push({ functionId, payload, remainingMs: context.getRemainingTimeInMillis() });
    const failure = failures[payload.step]?.shift();
    if (failure) throw failure;
    if (payload.step.startsWith('poll')) {
      const attempt = (payload.poll?.attempt ?? 0) + 1;
      const firstValidWait = payload.step === 'pollComputeEnvironment' && payload.until === 'VALID' && !payload.computeEnvironmentRecreated;
      if (script.recreateOnce && firstValidWait) return { done: false, attempt, waitSeconds: 30, recreate: true };
      const done = attempt > (script.pollsBeforeDone ?? 0);
      return { done, attempt, waitSeconds: 30, sightings: done ? 3 : 0, recreate: false };
    }
    if (payload.step === 'deleteBucket') return { retained: false, objectCount: 0 };
    if (payload.step === 'allocateNetwork') return { cidr: null };
    return {};
  };
  return { calls, load };
}

const environment = { name: 'alice', owner: 'arn:aws:iam::123456789012:user/alice', spec: { maxVcpus: 8, gpu: false }, generation: 1 };
const input = (extra: Record<string, unknown> = {}) => JSON.stringify({ environment: { ...environment, ...extra } });

function runnerWith(load: (id: StepFunctionId) => StepLambdaHandler, waitMs = 10) {
  return new WorkflowRunner({ region: 'us-east-1', accountId: '123456789012', stackName: 'mfenv-test', waitMs, retryMs: 10, loadStepHandler: load });
}

/** The ASL file read on its own: Task state → [placeholder it names, step it asks for]. */
function tasksOf(id: StateMachineId) {
  const definition = JSON.parse(readFileSync(join(PROJECT_ROOT, STATE_MACHINES[id].file), 'utf8'));
  return Object.fromEntries(
    allStates(definition.States)
      .filter(([, state]) => state.Type === 'Task')
      .map(([name, state]) => {
        const parameters = state.Parameters as { FunctionName: string; Payload: { step: string } };
        return [name, { placeholder: parameters.FunctionName, step: parameters.Payload.step }];
      }),
  );
}

const functionOfPlaceholder = (placeholder: string) =>
  (Object.keys(STEP_FUNCTIONS) as StepFunctionId[]).find((id) => placeholder === `\${${STEP_FUNCTIONS[id].placeholder}}`);

describe('workflow runner', () => {
  it.each(Object.keys(STATE_MACHINES) as StateMachineId[])('binds every Task state of %s to the step function its placeholder names', (id) => {
    // prepare
    const expected = Object.fromEntries(Object.entries(tasksOf(id)).map(([state, task]) => [state, functionOfPlaceholder(task.placeholder)]));

    // act
    const runner = runnerWith(scriptedSteps().load);

    // assess
    expect(Object.keys(expected).length).toBeGreaterThan(5);
    expect(Object.values(expected)).not.toContain(undefined);
    expect(runner.stateMachines[id].taskBindings).toEqual(expected);
    expect(JSON.stringify(runner.stateMachines[id].definition)).not.toMatch(/\$\{/);
    expect(JSON.stringify(runner.stateMachines[id].definition)).toContain(runner.functionArn('batch'));
  });

  it.each([
    ['provision', 'createJobQueue', 'StartRollback'],
    ['teardown', 'deleteBucket', 'MarkTeardownFailed'],
  ] as const)('invokes every Task state of %s over its success and failure paths', async (id, failingStep, failureState) => {
    // prepare
    const tasks = tasksOf(id);
    const succeeding = scriptedSteps({ recreateOnce: true });
    const failing = scriptedSteps({ fail: { [failingStep]: [new ResourceConflictError('taken by someone else')] } });

    // act
    // with scheduling on, so the Task of its branch runs too
    const scheduled = input({ spec: { ...environment.spec, scheduling: true } });
    const ok = runnerWith(succeeding.load);
    const okRun = await ok.waitFor(ok.start({ stateMachineArn: ok.stateMachineArn(id), input: scheduled }).executionArn);
    const ko = runnerWith(failing.load);
    const koRun = await ko.waitFor(ko.start({ stateMachineArn: ko.stateMachineArn(id), input: input() }).executionArn);

    // assess: every Task's step was invoked on the function it names, with the environment it was given
    expect(okRun.status).toBe('SUCCEEDED');
    expect(koRun.status).toBe('FAILED');
    const invoked = new Set([...succeeding.calls, ...failing.calls].map((call) => `${call.functionId}.${call.payload.step}`));
    for (const [state, task] of Object.entries(tasks)) {
      expect({ state, invoked: invoked.has(`${functionOfPlaceholder(task.placeholder)}.${task.step}`) }).toEqual({ state, invoked: true });
    }
    expect(succeeding.calls.every((call) => call.payload.environment.name === 'alice')).toBe(true);
    expect(succeeding.calls.map((call) => call.payload.step)).not.toContain(tasks[failureState]!.step);
    expect(failing.calls.map((call) => call.payload.step)).toContain(tasks[failureState]!.step);
  });

  it("lets a step's error reach Catch by its name, with the Lambda's JSON error as Cause", async () => {
    // prepare
    const steps = scriptedSteps({ fail: { createComputeEnvironment: [new ResourceConflictError('mfenv-alice belongs to someone else')] } });
    const runner = runnerWith(steps.load);

    // act
    const run = await runner.waitFor(runner.start({ stateMachineArn: runner.stateMachineArn('provision'), input: input() }).executionArn);

    // assess
    const rollback = steps.calls.find((call) => call.payload.step === 'startRollback');
    expect(rollback?.payload.error.Error).toBe('ResourceConflict');
    expect(JSON.parse(rollback?.payload.error.Cause)).toMatchObject({
      errorType: 'ResourceConflict',
      errorMessage: 'mfenv-alice belongs to someone else',
    });
    expect(steps.calls.map((call) => call.payload.step)).not.toContain('createJobQueue');
    expect(run).toMatchObject({ status: 'FAILED', error: 'ProvisioningFailed' });
    expect(run.cause).toMatch(/rolling it back/);
  });

  it('retries a TransientError as the Retry field says, and counts each attempt', async () => {
    // prepare
    const transient = () => new TransientError('throttled');
    const steps = scriptedSteps({ fail: { createBucket: [transient(), transient()] } });
    const runner = runnerWith(steps.load);

    // act
    const run = await runner.waitFor(runner.start({ stateMachineArn: runner.stateMachineArn('provision'), input: input() }).executionArn);

    // assess
    expect(run.status).toBe('SUCCEEDED');
    expect(run.stepInvocationsByStep.createBucket).toBe(3);
    expect(steps.calls.filter((call) => call.payload.step === 'createBucket')).toHaveLength(3);
  });

  it('shortens Wait states: six 30-second poll waits pass in seconds', async () => {
    // prepare: each poll answers "not yet, wait 30 s" three times
    const steps = scriptedSteps({ pollsBeforeDone: 3 });
    const runner = runnerWith(steps.load, 20);
    const waitStatesInFile = allStates(
      JSON.parse(readFileSync(join(PROJECT_ROOT, STATE_MACHINES.provision.file), 'utf8')).States,
    )
      .filter(([, state]) => state.Type === 'Wait')
      .map(([name]) => name)
      .sort();

    // act
    const run = await runner.waitFor(runner.start({ stateMachineArn: runner.stateMachineArn('provision'), input: input() }).executionArn);

    // assess: two poll loops of four checks each; at the ASL's pace that is at least 2 × 3 × 30 s
    expect(run.status).toBe('SUCCEEDED');
    expect(run.stepInvocationsByStep.pollComputeEnvironment).toBe(4);
    expect(run.stepInvocationsByStep.pollJobQueue).toBe(4);
    // every Wait state of the file is shortened (at the ASL's pace the run would outlast the test's timeout)
    expect([...runner.stateMachines.provision.waitStates].sort()).toEqual(waitStatesInFile);
    expect(waitStatesInFile.length).toBeGreaterThan(0);
  });

  it('counts state transitions and step invocations of an execution', async () => {
    // prepare: with polls done at once, scheduling on and the compute environment re-created once, the success
    // path visits every state once but the two failure states and the Pass of scheduling off
    const steps = scriptedSteps({ recreateOnce: true });
    const runner = runnerWith(steps.load);
    const definition = runner.stateMachines.provision.definition as { States: Record<string, any> };
    const states = allStates(definition.States).map(([name]) => name);
    const tasks = Object.keys(runner.stateMachines.provision.taskBindings);
    // every Task but the failure path's StartRollback runs once, on the function it is bound to
    const invokedByFunction: Partial<Record<StepFunctionId, number>> = {};
    for (const [state, functionId] of Object.entries(runner.stateMachines.provision.taskBindings)) {
      if (state !== 'StartRollback') invokedByFunction[functionId] = (invokedByFunction[functionId] ?? 0) + 1;
    }

    // act
    const run = await runner.waitFor(
      runner.start({ stateMachineArn: runner.stateMachineArn('provision'), input: input({ spec: { ...environment.spec, scheduling: true } }) }).executionArn,
    );

    // assess
    expect(states).toContain('SchedulingOff');
    expect(run.stateTransitions).toBe(states.length - 3);
    expect(run.stepInvocations).toBe(tasks.length - 1);
    expect(run.stepInvocations).toBe(steps.calls.length);
    expect(run.stepInvocationsByFunction).toEqual(invokedByFunction);
    expect(invokedByFunction).toMatchObject({ bucket: 1, iam: 5, batch: 10, registry: 1 });
    expect(JSON.parse(run.output!)).toMatchObject({ environment: { name: 'alice' } });
    expect(run.stopDate!.getTime()).toBeGreaterThanOrEqual(run.startDate.getTime());
    // a Lambda's context counts down from the Task's timeout
    expect(steps.calls.every((call) => call.remainingMs > 100_000 && call.remainingMs <= 120_000)).toBe(true);
  });

  it('writes the history as it runs: each state entered and exited, and each invocation of a Task', async () => {
    // prepare: a teardown whose first step fails once (and is retried), and whose first poll waits for a gate
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const steps = scriptedSteps({ fail: { disableJobQueue: [new TransientError('throttled')] } });
    const runner = runnerWith((functionId) => {
      const scripted = steps.load(functionId);
      return async (event, context) => {
        if ((event as { step: string }).step === 'pollJobQueue' && (event as { until: string }).until === 'DISABLED') await gate;
        return scripted(event, context);
      };
    });
    const definition = runner.stateMachines.teardown.definition as { States: Record<string, any> };
    const typeOf = new Map(allStates(definition.States).map(([name, state]) => [name, state.Type]));
    const { executionArn } = runner.start({ stateMachineArn: runner.stateMachineArn('teardown'), input: input() });

    // act: read the history while the first poll's Lambda is held, then let the execution finish
    const deadline = Date.now() + 20_000;
    let whileRunning = runner.history(executionArn);
    while (whileRunning.at(-1)?.type !== 'TaskStarted' || whileRunning.at(-3)?.stateEnteredEventDetails?.name !== 'CheckJobQueueDisabled') {
      if (Date.now() > deadline) throw new Error('the first poll was never reached');
      await new Promise((resolve) => setTimeout(resolve, 10));
      whileRunning = runner.history(executionArn);
    }
    open();
    const run = await runner.waitFor(executionArn);
    const history = runner.history(executionArn);

    // assess: while the poll's Lambda runs, its state is the last entered and nothing followed its start
    expect(whileRunning.slice(-3).map((event) => event.type)).toEqual(['TaskStateEntered', 'TaskScheduled', 'TaskStarted']);
    expect(history.slice(0, whileRunning.length)).toEqual(whileRunning);
    // numbered in order, from the start to the end of the execution
    expect(run.status).toBe('SUCCEEDED');
    expect(history.map((event) => [event.id, event.previousEventId])).toEqual(history.map((_, index) => [index + 1, index]));
    expect(history[0]).toMatchObject({ type: 'ExecutionStarted', executionStartedEventDetails: { input: input() } });
    expect(history.at(-1)).toMatchObject({ type: 'ExecutionSucceeded' });
    for (const event of history) {
      expect(event.timestamp.getTime()).toBeGreaterThanOrEqual(run.startDate.getTime());
      expect(event.timestamp.getTime()).toBeLessThanOrEqual(run.stopDate!.getTime());
    }
    // every state of the success path entered once (Parallel branches included), named by its type as on AWS
    const entered = history.filter((event) => event.type.endsWith('StateEntered'));
    const names = entered.map((event) => event.stateEnteredEventDetails!.name!);
    expect(names.slice(0, 6)).toEqual([
      'DisableJobQueue',
      'StartWaitingForJobQueueDisabled',
      'WaitForJobQueueDisabled',
      'CheckJobQueueDisabled',
      'IsJobQueueDisabled',
      'DeleteJobQueue',
    ]);
    expect([...names].sort()).toEqual([...typeOf.keys()].filter((name) => !['MarkTeardownFailed', 'TeardownFailed'].includes(name)).sort());
    expect(entered.map((event) => event.type)).toEqual(names.map((name) => `${typeOf.get(name)}StateEntered`));
    const exited = history.filter((event) => event.type.endsWith('StateExited')).map((event) => event.stateExitedEventDetails!.name!);
    expect(exited.sort()).toEqual([...names].sort());
    // a Task's own events sit between its entry and its exit: the failed attempt, then the retry
    const from = history.findIndex((event) => event.stateEnteredEventDetails?.name === 'DisableJobQueue');
    const to = history.findIndex((event) => event.stateExitedEventDetails?.name === 'DisableJobQueue');
    expect(history.slice(from, to + 1).map((event) => event.type)).toEqual([
      'TaskStateEntered',
      'TaskScheduled',
      'TaskStarted',
      'TaskFailed',
      'TaskScheduled',
      'TaskStarted',
      'TaskSucceeded',
      'TaskStateExited',
    ]);
    expect(history[from + 3]).toMatchObject({ taskFailedEventDetails: { resourceType: 'lambda', resource: 'invoke', error: 'TransientError' } });
  });

  it.each([
    ['an unknown placeholder', '${MysteryFunctionArn}', /placeholder \$\{MysteryFunctionArn\}/],
    ['a function outside the catalogue', 'arn:aws:lambda:us-east-1:123456789012:function:stray', /Task state "Stray"/],
  ])('refuses an ASL file whose Task names %s', (_case, functionName, message) => {
    // prepare
    const asl = JSON.stringify({
      StartAt: 'Stray',
      States: { Stray: { Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', Parameters: { FunctionName: functionName }, End: true } },
    });

    // act + assess
    expect(() => prepareDefinition('stray.asl.json', asl, (id) => `arn:aws:lambda:us-east-1:123456789012:function:${id}`)).toThrow(message);
  });
});
