/**
 * What a teammate sees of the workflow driving a CREATING or DELETING environment: the step it is in, as a
 * sentence, and since when (`progress` of the environment resource, DESIGN §4). It is read from the
 * execution's history when someone asks (lambdas/core/environments.ts, progressOf), never stored.
 *
 * The table lists, per state machine, every state that can be the current one, grouped into the steps a data
 * scientist recognises. A poll loop (Pass → Wait → Task → Choice) is one step, so its start time is the
 * loop's, not the latest poll's. The states of a Parallel's branches belong to the Parallel's step: they run
 * at once, so naming the last one entered would pick one branch at random. Terminal states (Fail, Succeed)
 * are left out: once one is entered the execution has ended and there is no progress to show.
 *
 * test/unit/core/progress.test.ts reads statemachine/*.asl.json and fails when a state is missing here, when
 * a state listed here is gone from the file, or when a branch state is not in its Parallel's step.
 */
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import type { StateMachineId } from '../steps/catalogue';
import type { Progress } from './environment';

export interface WorkflowStep {
  /** The sentence shown as `progress.step`. */
  sentence: string;
  /** The ASL states that make up the step. */
  states: readonly string[];
}

/**
 * The four states of a poll loop in the ASL files, named after what they wait for: reset the counter, wait,
 * check, and decide whether to check again.
 */
function pollLoop(until: string): string[] {
  return [`StartWaitingFor${until}`, `WaitFor${until}`, `Check${until}`, `Is${until}`];
}

export const WORKFLOW_STEPS: Record<StateMachineId, readonly WorkflowStep[]> = {
  provision: [
    { sentence: 'Reserving network addresses for the environment', states: ['AllocateNetwork'] },
    {
      sentence: 'Creating the bucket, the roles and the subnets',
      states: [
        'CreateStorageAndIdentity',
        'CreateBucket',
        'CreateJobRole',
        'CreateInstanceRole',
        'CreateAccessRole',
        'CreateSubnets',
        'IsSchedulingOn',
        'CreateScheduling',
        'SchedulingOff',
      ],
    },
    { sentence: 'Waiting until AWS shows the new instance profile everywhere', states: pollLoop('InstanceProfileVisible') },
    { sentence: 'Creating the compute environment', states: ['CreateComputeEnvironment'] },
    { sentence: 'Waiting for the compute environment to become valid', states: pollLoop('ComputeEnvironmentValid') },
    {
      sentence: 'Re-creating the compute environment, which AWS marked invalid before it could see the new roles',
      states: [
        'DisableInvalidComputeEnvironment',
        ...pollLoop('InvalidComputeEnvironmentDisabled'),
        'DeleteInvalidComputeEnvironment',
        ...pollLoop('InvalidComputeEnvironmentDeleted'),
        'RecreateComputeEnvironment',
      ],
    },
    { sentence: 'Waiting for the re-created compute environment to become valid', states: pollLoop('RecreatedComputeEnvironmentValid') },
    { sentence: "Limiting the instance role to the compute environment's cluster", states: ['ScopeInstanceRole'] },
    { sentence: 'Creating the job queue', states: ['CreateJobQueue'] },
    { sentence: 'Waiting for the job queue to become valid', states: pollLoop('JobQueueValid') },
    { sentence: 'Writing the Metaflow configuration', states: ['MarkReady'] },
    { sentence: 'Creating failed; starting to remove what was made', states: ['StartRollback'] },
  ],
  teardown: [
    { sentence: 'Disabling the job queue', states: ['DisableJobQueue'] },
    { sentence: 'Waiting for the job queue to be disabled', states: pollLoop('JobQueueDisabled') },
    { sentence: 'Deleting the job queue', states: ['DeleteJobQueue'] },
    { sentence: 'Waiting for the job queue to be deleted', states: pollLoop('JobQueueDeleted') },
    { sentence: 'Disabling the compute environment', states: ['DisableComputeEnvironment'] },
    { sentence: 'Waiting for the compute environment to be disabled', states: pollLoop('ComputeEnvironmentDisabled') },
    { sentence: 'Deleting the compute environment', states: ['DeleteComputeEnvironment'] },
    { sentence: 'Waiting for the compute environment to be deleted', states: pollLoop('ComputeEnvironmentDeleted') },
    {
      sentence: 'Deleting the roles and the subnets',
      states: [
        'DeleteIdentity',
        'DeleteAccessRole',
        'DeleteInstanceRole',
        'DeleteJobRole',
        'DeleteSubnets',
        'DeleteScheduling',
        'DeregisterJobDefinitions',
      ],
    },
    { sentence: 'Deleting the bucket (kept if it holds data, unless purge was asked for)', states: ['DeleteBucket'] },
    { sentence: 'Recording the outcome', states: ['FinishTeardown'] },
    { sentence: 'A step failed; recording why', states: ['MarkTeardownFailed'] },
  ],
  update: [
    { sentence: 'Working out what the change takes', states: ['PlanUpdate', 'ChangeCompute'] },
    { sentence: 'Changing the compute environment', states: ['UpdateComputeEnvironment'] },
    { sentence: 'Waiting for the compute environment to apply the change', states: [...pollLoop('ComputeEnvironmentValid'), 'ComputeEnvironmentInvalid'] },
    { sentence: 'Creating a compute environment with the new instance types', states: ['CreateReplacementComputeEnvironment'] },
    {
      sentence: 'Waiting for the new compute environment to become valid',
      states: [...pollLoop('ReplacementComputeEnvironmentValid'), 'ReplacementComputeEnvironmentInvalid'],
    },
    { sentence: "Limiting the instance role to the new compute environment's cluster", states: ['ScopeInstanceRoleToReplacement'] },
    { sentence: 'Moving the job queue to the new compute environment', states: ['SwitchJobQueue', ...pollLoop('SwitchedJobQueueValid')] },
    { sentence: 'Turning scheduled flows on or off', states: ['ChangeScheduling', 'CreateScheduling', 'DeleteScheduling'] },
    {
      sentence: 'Removing the replaced compute environment',
      states: [
        'RetirePreviousComputeEnvironment',
        'DisablePreviousComputeEnvironment',
        ...pollLoop('PreviousComputeEnvironmentDisabled'),
        'DeletePreviousComputeEnvironment',
      ],
    },
    { sentence: 'Recording the new settings and writing the Metaflow configuration', states: ['MarkUpdated'] },
    {
      sentence: 'The change failed; putting the environment back as it was',
      states: [
        'UndoScheduling',
        'UndoCreateScheduling',
        'UndoDeleteScheduling',
        'UndoCompute',
        ...pollLoop('ComputeEnvironmentSettled'),
        'RestoreComputeEnvironment',
        ...pollLoop('RestoredComputeEnvironmentValid'),
        'RestoredComputeEnvironmentInvalid',
        'RestoreJobQueue',
        ...pollLoop('RestoredJobQueueValid'),
        'ScopeInstanceRoleToPrevious',
        'DisableReplacementComputeEnvironment',
        ...pollLoop('ReplacementComputeEnvironmentDisabled'),
        'DeleteReplacementComputeEnvironment',
      ],
    },
    { sentence: 'Recording why the change failed', states: ['MarkUpdateFailed', 'MarkUndoFailed'] },
  ],
};

/** Which workflow an execution is: a rollback runs on the teardown state machine, for a failed create. */
export type WorkflowKind = 'provision' | 'teardown' | 'rollback' | 'update';

const MACHINE_OF: Record<WorkflowKind, StateMachineId> = { provision: 'provision', teardown: 'teardown', rollback: 'teardown', update: 'update' };

/** The step of `state` in the state machine `machine`, or undefined when the table does not know the state. */
export function stepOf(machine: StateMachineId, state: string): WorkflowStep | undefined {
  return WORKFLOW_STEPS[machine].find((step) => step.states.includes(state));
}

/** The sentence a teammate reads: a rollback says that it is undoing a create, so "deleting" is no surprise. */
function sentenceOf(kind: WorkflowKind, step: WorkflowStep): string {
  if (kind !== 'rollback') return step.sentence;
  return `Rolling back the failed creation: ${step.sentence.charAt(0).toLowerCase()}${step.sentence.slice(1)}`;
}

/** The events that close an execution: after one of them nothing runs. */
const EXECUTION_ENDS = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

/** Entering one of these states ends the execution: its end event follows at once. */
const TERMINAL_STATE_ENTRIES = new Set(['FailStateEntered', 'SucceedStateEntered']);

/** The state an event says was entered (`TaskStateEntered`, `WaitStateEntered`, ...), if it is such an event. */
function enteredState(event: HistoryEvent): string | undefined {
  return event.type?.endsWith('StateEntered') ? event.stateEnteredEventDetails?.name : undefined;
}

/** What the newest events of an execution's history say about it. */
export type HistoryReading =
  /** The execution has ended, or is ending in a Fail or Succeed state. */
  | { kind: 'ended' }
  /**
   * The execution runs. `progress`: the step it is in, unless no state was entered among the events read or
   * the state entered last is one the table does not know (`unknownState`). `needsOlder`: the events read do
   * not reach back to where that step began (or, with no state entered among them, to the execution's start),
   * so older events would tell more.
   */
  | { kind: 'running'; progress?: Progress; unknownState?: string; needsOlder: boolean };

/**
 * Reads the newest events of an execution's history (GetExecutionHistory with reverseOrder, one or more pages
 * together). The step is that of the state entered last; it began when the first of its states was entered,
 * which is the oldest entry of one of its states before an entry of another step (or the execution's start).
 * When the events run out before that boundary, `startedAt` is the oldest entry read: the step began then at
 * the latest, and `needsOlder` says so. Events are sorted by id here, whatever order they came in.
 */
export function readHistory(kind: WorkflowKind, events: readonly HistoryEvent[]): HistoryReading {
  const newestFirst = [...events].sort((a, b) => (b.id ?? 0) - (a.id ?? 0));
  if (newestFirst[0]?.type && EXECUTION_ENDS.has(newestFirst[0].type)) return { kind: 'ended' };

  const machine = MACHINE_OF[kind];
  let step: WorkflowStep | undefined;
  let startedAt: Date | undefined;
  for (const event of newestFirst) {
    if (event.type === 'ExecutionStarted') break;
    const state = enteredState(event);
    if (state === undefined) continue;
    if (step === undefined) {
      if (TERMINAL_STATE_ENTRIES.has(event.type!)) return { kind: 'ended' };
      step = stepOf(machine, state);
      if (step === undefined) return { kind: 'running', unknownState: state, needsOlder: false };
    } else if (!step.states.includes(state)) {
      // An entry of the step before: the one the execution is in began with the entry read just before this.
      return { kind: 'running', progress: progressFrom(kind, step, startedAt), needsOlder: false };
    }
    startedAt = event.timestamp ?? startedAt;
  }
  const reachedStart = newestFirst.some((event) => event.type === 'ExecutionStarted');
  if (step === undefined) return { kind: 'running', needsOlder: !reachedStart };
  return { kind: 'running', progress: progressFrom(kind, step, startedAt), needsOlder: !reachedStart };
}

function progressFrom(kind: WorkflowKind, step: WorkflowStep, startedAt: Date | undefined): Progress | undefined {
  // A history event always carries its time; without one there is nothing true to say about since when.
  if (startedAt === undefined) return undefined;
  return { step: sentenceOf(kind, step), startedAt: startedAt.toISOString() };
}
