/**
 * The local stand-in for AWS Step Functions: runs the very ASL files that CDK deploys, with
 * aws-local-stepfunctions, and binds every Task state to the step handler module that the Lambda on AWS
 * would run (lambdas/steps/catalogue.ts). Everything is derived from the catalogue and the ASL files:
 *
 * - `${...FunctionArn}` placeholders are filled like CDK's definitionSubstitutions, with local Lambda ARNs;
 * - every Task state (Parallel branches and Map iterators included) is bound, by state name, to the step
 *   function whose ARN its `Parameters.FunctionName` names; a Task that names no known function is an error;
 * - every Wait state and every Retry pause is shortened, so a whole lifecycle takes seconds.
 *
 * It keeps a record of each execution (as DescribeExecution shows it), counts what AWS bills for (state
 * transitions, and the step Lambda invocations they cause) and writes the execution's history as it runs,
 * in the shape GetExecutionHistory answers with: the execution's start and end, every state entered and
 * exited (Parallel branches included), and each Lambda invocation of a Task (scheduled, started, succeeded or
 * failed), numbered in the order they happened.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HistoryEvent, HistoryEventType } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import { ExecutionAbortedError, ExecutionError, ExecutionTimeoutError, StateMachine } from 'aws-local-stepfunctions';
import { STATE_MACHINES, STEP_FUNCTIONS, STEP_FUNCTION_IDS, type StateMachineId, type StepFunctionId } from '../../lambdas/steps/catalogue';
import { PROJECT_ROOT } from './emulator';
import { allowRequireOfImportOnlyPackages } from './module-hooks';

/** The resource of a Task state that invokes a Lambda function (the only kind the ASL files may use). */
export const LAMBDA_INVOKE_RESOURCE = 'arn:aws:states:::lambda:invoke';

/** A step Lambda's entry point, as the module named by STEP_FUNCTIONS[id].entry exports it. */
export type StepLambdaHandler = (event: unknown, context: Context) => Promise<unknown>;

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** One execution, with the fields DescribeExecution answers and the counts that Step Functions bills. */
export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  stateMachineId: StateMachineId;
  name: string;
  status: ExecutionStatus;
  /** The input as given (a JSON string), and the output once SUCCEEDED. */
  input: string;
  output?: string;
  /** Error name and cause once FAILED (as a Fail state or an uncaught error left them). */
  error?: string;
  cause?: string;
  startDate: Date;
  stopDate?: Date;
  /** States entered plus retries: what Step Functions counts (and bills) as state transitions. */
  stateTransitions: number;
  /** Step Lambda invocations, in total, per step function and per step. */
  stepInvocations: number;
  stepInvocationsByFunction: Partial<Record<StepFunctionId, number>>;
  stepInvocationsByStep: Record<string, number>;
}

/**
 * One event of an execution's history, as GetExecutionHistory answers it: `id` counts from 1 in the order
 * events happened, `previousEventId` is the event before it (0 for the first), and the details sit in the
 * field AWS names after the event type (`stateEnteredEventDetails`, `taskScheduledEventDetails`, ...).
 */
export type ExecutionHistoryEvent = HistoryEvent & { id: number; previousEventId: number; type: HistoryEventType; timestamp: Date };

/** What the local executor reports as it runs (its `eventLogs`), as far as the history uses it. */
type ExecutorEvent = {
  type: string;
  timestamp: number;
  input?: unknown;
  output?: unknown;
  Error?: string;
  Cause?: unknown;
  state?: { name: string; type: string; input?: unknown; output?: unknown };
};

/** A state's input or output as the history carries it: JSON text, with no truncation. */
function dataOf(value: unknown): string {
  return JSON.stringify(value ?? null);
}

/**
 * The history event AWS records for what the executor reported, if AWS records one: the executor's
 * StateRetried, StateFailed, StateCaught and branch events have no counterpart there (a retried or failed
 * Task shows as TaskFailed, written where the Task's Lambda is invoked).
 */
function historyEventOf(event: ExecutorEvent): Omit<ExecutionHistoryEvent, 'id' | 'previousEventId'> | undefined {
  const timestamp = new Date(event.timestamp);
  switch (event.type) {
    case 'ExecutionStarted':
      return { type: 'ExecutionStarted', timestamp, executionStartedEventDetails: { input: dataOf(event.input), inputDetails: { truncated: false } } };
    case 'ExecutionSucceeded':
      return { type: 'ExecutionSucceeded', timestamp, executionSucceededEventDetails: { output: dataOf(event.output), outputDetails: { truncated: false } } };
    case 'ExecutionFailed':
      return {
        type: 'ExecutionFailed',
        timestamp,
        executionFailedEventDetails: { error: event.Error, cause: typeof event.Cause === 'string' ? event.Cause : dataOf(event.Cause) },
      };
    case 'ExecutionAborted':
      return { type: 'ExecutionAborted', timestamp, executionAbortedEventDetails: {} };
    case 'ExecutionTimeout':
      return { type: 'ExecutionTimedOut', timestamp, executionTimedOutEventDetails: {} };
    case 'StateEntered':
      return {
        type: `${event.state!.type}StateEntered` as HistoryEventType,
        timestamp,
        stateEnteredEventDetails: { name: event.state!.name, input: dataOf(event.state!.input), inputDetails: { truncated: false } },
      };
    case 'StateExited':
      return {
        type: `${event.state!.type}StateExited` as HistoryEventType,
        timestamp,
        stateExitedEventDetails: { name: event.state!.name, output: dataOf(event.state!.output), outputDetails: { truncated: false } },
      };
    default:
      return undefined;
  }
}

/** Errors with the names Step Functions' API answers with (the HTTP endpoint passes them on as error codes). */
export class StepFunctionsApiError extends Error {
  constructor(
    readonly code:
      | 'ExecutionAlreadyExists'
      | 'ExecutionDoesNotExist'
      | 'StateMachineDoesNotExist'
      | 'InvalidArn'
      | 'InvalidName'
      | 'InvalidExecutionInput'
      | 'ValidationException',
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

export interface WorkflowRunnerOptions {
  region: string;
  accountId: string;
  /** Names the state machines and step functions as the stack does: `<stack>-provision`, `<stack>-batch-steps`. */
  stackName: string;
  /** How long each Wait state pauses, in ms (default MFENV_LOCAL_WAIT_MS, else 200). */
  waitMs?: number;
  /** How long each Retry pauses, in ms (default MFENV_LOCAL_RETRY_MS, else 100). */
  retryMs?: number;
  /** Where the step handlers come from: by default the module at STEP_FUNCTIONS[id].entry. */
  loadStepHandler?: (id: StepFunctionId) => StepLambdaHandler | Promise<StepLambdaHandler>;
  /** Told about every execution once it has stopped (local mode prints a line). */
  onExecutionEnd?: (record: ExecutionRecord) => void;
}

/** A state machine as registered: its ARN, its definition with placeholders filled, its Task bindings. */
export interface LocalStateMachine {
  id: StateMachineId;
  name: string;
  arn: string;
  definition: Record<string, unknown>;
  /** Task state name → the step function it invokes. */
  taskBindings: Record<string, StepFunctionId>;
  /** Task state name → its TimeoutSeconds (60 when unset, as the local executor applies): the Lambda's deadline. */
  taskTimeoutSeconds: Record<string, number>;
  waitStates: string[];
  retryingStates: string[];
}

type StateDefinition = {
  Type: string;
  TimeoutSeconds?: number;
  Resource?: string;
  Parameters?: { FunctionName?: unknown };
  Retry?: unknown[];
  Branches?: { States: Record<string, StateDefinition> }[];
  Iterator?: { States: Record<string, StateDefinition> };
  ItemProcessor?: { States: Record<string, StateDefinition> };
};

/** Every state of a definition, nested ones (Parallel branches, Map iterators) included. */
export function allStates(states: Record<string, StateDefinition>): [string, StateDefinition][] {
  const found: [string, StateDefinition][] = [];
  for (const [name, state] of Object.entries(states)) {
    found.push([name, state]);
    for (const branch of state.Branches ?? []) found.push(...allStates(branch.States));
    for (const nested of [state.Iterator, state.ItemProcessor]) if (nested) found.push(...allStates(nested.States));
  }
  return found;
}

/** Step Functions refuses names with whitespace, brackets, wildcards and a few punctuation marks. */
const INVALID_NAME_CHARACTERS = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/;

function defaultWaitMs(): number {
  const value = Number(process.env.MFENV_LOCAL_WAIT_MS ?? 200);
  return Number.isFinite(value) && value >= 0 ? value : 200;
}
function defaultRetryMs(): number {
  const value = Number(process.env.MFENV_LOCAL_RETRY_MS ?? 100);
  return Number.isFinite(value) && value >= 0 ? value : 100;
}

/** Loads the handler a step Lambda runs on AWS: the `handler` export of its entry module. */
export function loadStepHandlerModule(id: StepFunctionId): StepLambdaHandler {
  const entry = join(PROJECT_ROOT, STEP_FUNCTIONS[id].entry);
  allowRequireOfImportOnlyPackages();
  // require, not import(): the project is CommonJS, and both tsx and jest hook require for .ts files.
  const module = require(entry) as { handler?: unknown };
  if (typeof module.handler !== 'function') {
    throw new Error(`${STEP_FUNCTIONS[id].entry} does not export a function named "handler".`);
  }
  return module.handler as StepLambdaHandler;
}

/**
 * The error a failing Lambda hands to Step Functions: Error is the error's name (what Retry and Catch
 * match), Cause is the Lambda runtime's JSON error document, exactly as on AWS.
 */
function asLambdaFunctionError(error: unknown): Error {
  const name = (error as { name?: unknown })?.name;
  const errorType = typeof name === 'string' && name.length > 0 ? name : 'Error';
  const errorMessage = error instanceof Error ? error.message : String(error);
  const trace = error instanceof Error && error.stack ? error.stack.split('\n') : [];
  const failure = new Error(JSON.stringify({ errorType, errorMessage, trace }));
  failure.name = errorType;
  return failure;
}

/** Lambda serializes payloads: a step handler sees (and returns) JSON, never shared objects. */
function throughJson(value: unknown): unknown {
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

/**
 * Fills an ASL file's `${...FunctionArn}` placeholders (as CDK's definitionSubstitutions do) and finds what
 * to bind: every Task state (nested ones included) → the step function whose ARN it invokes, every Wait
 * state, every state with a Retry. Refuses a placeholder or a Task the catalogue does not know.
 */
export function prepareDefinition(file: string, text: string, functionArn: (id: StepFunctionId) => string) {
  const functionByArn = new Map<string, StepFunctionId>();
  for (const functionId of STEP_FUNCTION_IDS) {
    const arn = functionArn(functionId);
    text = text.split(`\${${STEP_FUNCTIONS[functionId].placeholder}}`).join(arn);
    functionByArn.set(arn, functionId);
  }
  const unfilled = text.match(/\$\{[A-Za-z0-9]+\}/);
  if (unfilled) throw new Error(`${file} uses the placeholder ${unfilled[0]}, which no step function in the catalogue fills.`);
  const definition = JSON.parse(text) as { States: Record<string, StateDefinition> };

  const taskBindings: Record<string, StepFunctionId> = {};
  const taskTimeoutSeconds: Record<string, number> = {};
  const waitStates: string[] = [];
  const retryingStates: string[] = [];
  const seen = new Set<string>();
  for (const [stateName, state] of allStates(definition.States)) {
    // Overrides are keyed by state name, so (as AWS also requires) names must be unique in the whole machine.
    if (seen.has(stateName)) throw new Error(`${file} has two states named "${stateName}".`);
    seen.add(stateName);
    if (state.Type === 'Wait') waitStates.push(stateName);
    if (state.Retry?.length) retryingStates.push(stateName);
    if (state.Type !== 'Task') continue;
    const functionName = state.Parameters?.FunctionName;
    const functionId = typeof functionName === 'string' ? functionByArn.get(functionName) : undefined;
    if (state.Resource !== LAMBDA_INVOKE_RESOURCE || !functionId) {
      throw new Error(`${file}: Task state "${stateName}" must invoke a step function of the catalogue through ${LAMBDA_INVOKE_RESOURCE}.`);
    }
    taskBindings[stateName] = functionId;
    taskTimeoutSeconds[stateName] = state.TimeoutSeconds ?? 60;
  }
  return { definition: definition as Record<string, unknown>, taskBindings, taskTimeoutSeconds, waitStates, retryingStates };
}

export class WorkflowRunner {
  readonly stateMachines: Record<StateMachineId, LocalStateMachine>;
  private readonly executions = new Map<string, ExecutionRecord>();
  private readonly histories = new Map<string, ExecutionHistoryEvent[]>();
  private readonly running = new Map<string, { abort: () => void; done: Promise<void> }>();
  private readonly handlers = new Map<StepFunctionId, Promise<StepLambdaHandler>>();
  private readonly waitMs: number;
  private readonly retryMs: number;

  constructor(private readonly options: WorkflowRunnerOptions) {
    this.waitMs = options.waitMs ?? defaultWaitMs();
    this.retryMs = options.retryMs ?? defaultRetryMs();
    this.stateMachines = Object.fromEntries(
      (Object.keys(STATE_MACHINES) as StateMachineId[]).map((id) => [id, this.load(id)]),
    ) as Record<StateMachineId, LocalStateMachine>;
  }

  /** The ARN the local Lambda of a step function answers to (what the ASL placeholders are filled with). */
  functionArn(id: StepFunctionId): string {
    const { region, accountId, stackName } = this.options;
    return `arn:aws:lambda:${region}:${accountId}:function:${stackName}-${id}-steps`;
  }

  stateMachineArn(id: StateMachineId): string {
    const { region, accountId, stackName } = this.options;
    return `arn:aws:states:${region}:${accountId}:stateMachine:${stackName}-${id}`;
  }

  private load(id: StateMachineId): LocalStateMachine {
    const file = STATE_MACHINES[id].file;
    const prepared = prepareDefinition(file, readFileSync(join(PROJECT_ROOT, file), 'utf8'), (functionId) => this.functionArn(functionId));
    return { id, name: `${this.options.stackName}-${id}`, arn: this.stateMachineArn(id), ...prepared };
  }

  private stateMachineByArn(arn: string): LocalStateMachine {
    if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[^:]+$/.test(arn)) {
      throw new StepFunctionsApiError('InvalidArn', `Invalid Arn: '${arn}' is not a state machine ARN.`);
    }
    const found = Object.values(this.stateMachines).find((machine) => machine.arn === arn);
    if (!found) throw new StepFunctionsApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    return found;
  }

  private handlerOf(id: StepFunctionId): Promise<StepLambdaHandler> {
    let handler = this.handlers.get(id);
    if (!handler) {
      const load = this.options.loadStepHandler ?? loadStepHandlerModule;
      handler = Promise.resolve().then(() => load(id));
      this.handlers.set(id, handler);
    }
    return handler;
  }

  private lambdaContext(id: StepFunctionId, timeoutMs: number): Context {
    const functionName = `${this.options.stackName}-${id}-steps`;
    const deadline = Date.now() + timeoutMs;
    return {
      callbackWaitsForEmptyEventLoop: true,
      functionName,
      functionVersion: '$LATEST',
      invokedFunctionArn: this.functionArn(id),
      memoryLimitInMB: '256',
      awsRequestId: randomUUID(),
      logGroupName: `/aws/lambda/${functionName}`,
      logStreamName: `local/${randomUUID()}`,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
  }

  /**
   * Starts an execution, with Step Functions' rules for names: a name is unique per state machine; asking
   * again with the same name and input while it runs returns the same execution (StartExecution is
   * idempotent for standard workflows), a different input or a closed execution is ExecutionAlreadyExists.
   */
  start(request: { stateMachineArn: string; name?: string; input?: string }): ExecutionRecord {
    const machine = this.stateMachineByArn(request.stateMachineArn);
    const name = request.name ?? randomUUID();
    if (name.length < 1 || name.length > 80 || INVALID_NAME_CHARACTERS.test(name)) {
      throw new StepFunctionsApiError('InvalidName', `Invalid Name: '${name}'`);
    }
    const inputText = request.input ?? '{}';
    let input: unknown;
    try {
      input = JSON.parse(inputText);
    } catch {
      throw new StepFunctionsApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: the input is not JSON.');
    }
    const executionArn = `arn:aws:states:${this.options.region}:${this.options.accountId}:execution:${machine.name}:${name}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === inputText) return existing;
      throw new StepFunctionsApiError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }

    const record: ExecutionRecord = {
      executionArn,
      stateMachineArn: machine.arn,
      stateMachineId: machine.id,
      name,
      status: 'RUNNING',
      input: inputText,
      startDate: new Date(),
      stateTransitions: 0,
      stepInvocations: 0,
      stepInvocationsByFunction: {},
      stepInvocationsByStep: {},
    };
    this.executions.set(executionArn, record);
    const history: ExecutionHistoryEvent[] = [];
    this.histories.set(executionArn, history);
    const writeHistory = (event: Omit<ExecutionHistoryEvent, 'id' | 'previousEventId'>) => {
      history.push({ ...event, id: history.length + 1, previousEventId: history.length });
    };
    // What every Task event of a lambda:invoke Task names as its resource, as on AWS.
    const lambdaResource = { resourceType: 'lambda', resource: 'invoke' };

    const taskResourceLocalHandlers = Object.fromEntries(
      Object.entries(machine.taskBindings).map(([stateName, functionId]) => [
        stateName,
        async (taskInput: unknown) => {
          // The executor reports the Task's state entry before calling this, but hands the report over through
          // promises only: once they have all run (before the next macrotask), the entry is in the history, and
          // the Task's own events follow it as they do on AWS.
          await new Promise((next) => setImmediate(next));
          const { Payload } = (taskInput ?? {}) as { FunctionName?: string; Payload?: unknown };
          const step = (Payload as { step?: unknown } | null)?.step;
          record.stepInvocations += 1;
          record.stepInvocationsByFunction[functionId] = (record.stepInvocationsByFunction[functionId] ?? 0) + 1;
          if (typeof step === 'string') record.stepInvocationsByStep[step] = (record.stepInvocationsByStep[step] ?? 0) + 1;
          const timeoutInSeconds = machine.taskTimeoutSeconds[stateName]!;
          writeHistory({
            type: 'TaskScheduled',
            timestamp: new Date(),
            taskScheduledEventDetails: { ...lambdaResource, region: this.options.region, parameters: dataOf(taskInput), timeoutInSeconds },
          });
          const handler = await this.handlerOf(functionId);
          writeHistory({ type: 'TaskStarted', timestamp: new Date(), taskStartedEventDetails: lambdaResource });
          try {
            const context = this.lambdaContext(functionId, timeoutInSeconds * 1000);
            const result = await handler(throughJson(Payload), context);
            // The shape lambda:invoke answers with, so ResultSelector's `$.Payload...` works as on AWS.
            const answer = { StatusCode: 200, ExecutedVersion: '$LATEST', Payload: throughJson(result) };
            writeHistory({
              type: 'TaskSucceeded',
              timestamp: new Date(),
              taskSucceededEventDetails: { ...lambdaResource, output: dataOf(answer), outputDetails: { truncated: false } },
            });
            return answer;
          } catch (error) {
            const failure = asLambdaFunctionError(error);
            writeHistory({
              type: 'TaskFailed',
              timestamp: new Date(),
              taskFailedEventDetails: { ...lambdaResource, error: failure.name, cause: failure.message },
            });
            throw failure;
          }
        },
      ]),
    );
    const stateMachine = new StateMachine(machine.definition as never, { validationOptions: { checkArn: true, checkPaths: true } });
    const execution = stateMachine.run(input as never, {
      overrides: {
        taskResourceLocalHandlers: taskResourceLocalHandlers as never,
        waitTimeOverrides: Object.fromEntries(machine.waitStates.map((state) => [state, this.waitMs])),
        retryIntervalOverrides: Object.fromEntries(machine.retryingStates.map((state) => [state, this.retryMs])),
      },
      context: {
        Execution: { Id: executionArn, Name: name, StartTime: record.startDate.toISOString() },
        StateMachine: { Id: machine.arn, Name: machine.name },
      },
    });

    const counted = (async () => {
      for await (const event of execution.eventLogs) {
        if (event.type === 'StateEntered' || event.type === 'StateRetried') record.stateTransitions += 1;
        const written = historyEventOf(event as ExecutorEvent);
        if (written) writeHistory(written);
      }
    })();
    const settled = execution.result.then(
      (output) => {
        record.status = 'SUCCEEDED';
        record.output = JSON.stringify(output ?? null);
      },
      (error: unknown) => {
        if (error instanceof ExecutionTimeoutError) {
          record.status = 'TIMED_OUT';
        } else if (error instanceof ExecutionAbortedError) {
          record.status = 'ABORTED';
        } else {
          const failure = error instanceof ExecutionError ? (error.cause as Error) : (error as Error);
          record.status = 'FAILED';
          record.error = failure?.name ?? 'Error';
          record.cause = failure?.message ?? String(error);
        }
      },
    );
    const done = Promise.all([settled, counted.catch(() => undefined)]).then(() => {
      record.stopDate = new Date();
      this.running.delete(executionArn);
      this.options.onExecutionEnd?.(record);
    });
    this.running.set(executionArn, { abort: execution.abort, done });
    return record;
  }

  describe(executionArn: string): ExecutionRecord {
    if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/.test(executionArn)) {
      throw new StepFunctionsApiError('InvalidArn', `Invalid Arn: '${executionArn}' is not an execution ARN.`);
    }
    const record = this.executions.get(executionArn);
    if (!record) throw new StepFunctionsApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return record;
  }

  /** The history of an execution so far, oldest event first (what GetExecutionHistory pages through). */
  history(executionArn: string): readonly ExecutionHistoryEvent[] {
    this.describe(executionArn);
    return [...this.histories.get(executionArn)!];
  }

  /** Executions of one state machine (or all), newest first, optionally of one status. */
  list(filter: { stateMachineArn?: string; status?: ExecutionStatus } = {}): ExecutionRecord[] {
    if (filter.stateMachineArn) this.stateMachineByArn(filter.stateMachineArn);
    return [...this.executions.values()]
      .filter((record) => !filter.stateMachineArn || record.stateMachineArn === filter.stateMachineArn)
      .filter((record) => !filter.status || record.status === filter.status)
      .sort((a, b) => b.startDate.getTime() - a.startDate.getTime());
  }

  /** Resolves once the execution has stopped (at once if it already has). */
  async waitFor(executionArn: string): Promise<ExecutionRecord> {
    await this.running.get(executionArn)?.done;
    return this.describe(executionArn);
  }

  /** Resolves once nothing runs, including executions started while waiting (a rollback starts a teardown). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((run) => run.done));
  }

  /** Aborts every running execution (local mode's shutdown) and waits until they have stopped. */
  async abortAll(): Promise<void> {
    for (const run of this.running.values()) run.abort();
    await this.settled();
  }
}
