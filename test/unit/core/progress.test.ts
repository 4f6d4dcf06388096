/**
 * The progress of a running workflow: every state of the ASL files that can be the current one has a
 * sentence (so a new state cannot be forgotten), the states of a Parallel's branches read as the Parallel's
 * step, and the newest events of an execution's history are read into the step it is in and since when.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { HistoryEvent, HistoryEventType } from '@aws-sdk/client-sfn';
import { WORKFLOW_STEPS, readHistory, stepOf } from '../../../lambdas/core/progress';
import { STATE_MACHINES, type StateMachineId } from '../../../lambdas/steps/catalogue';

const PROJECT_ROOT = resolve(__dirname, '../../..');
const MACHINES = Object.keys(STATE_MACHINES) as StateMachineId[];

interface AslState {
  Type: string;
  Branches?: { States: Record<string, AslState> }[];
  Iterator?: { States: Record<string, AslState> };
  ItemProcessor?: { States: Record<string, AslState> };
}
interface Asl {
  States: Record<string, AslState>;
}

const aslOf = (machine: StateMachineId): Asl => JSON.parse(readFileSync(resolve(PROJECT_ROOT, STATE_MACHINES[machine].file), 'utf8'));

/** Every state of a definition with the Parallel or Map it sits in, nested ones included. */
function statesOf(states: Record<string, AslState>, parent?: string): { name: string; type: string; parent?: string }[] {
  return Object.entries(states).flatMap(([name, state]) => [
    { name, type: state.Type, parent },
    ...(state.Branches ?? []).flatMap((branch) => statesOf(branch.States, parent ?? name)),
    ...[state.Iterator, state.ItemProcessor].flatMap((nested) => (nested ? statesOf(nested.States, parent ?? name) : [])),
  ]);
}

/** The states that can be current (a Fail or Succeed state ends the execution) and have no step in the table. */
function statesWithoutStep(machine: StateMachineId, asl: Asl): string[] {
  return statesOf(asl.States)
    .filter((state) => state.type !== 'Fail' && state.type !== 'Succeed')
    .filter((state) => stepOf(machine, state.name) === undefined)
    .map((state) => state.name);
}

/** A history, oldest event first: ids from 1, one second apart from 12:00:00. */
function history(events: [HistoryEventType, string?][]): HistoryEvent[] {
  return events.map(([type, name], index) => ({
    id: index + 1,
    previousEventId: index,
    type,
    timestamp: new Date(Date.UTC(2026, 0, 1, 12, 0, index)),
    ...(name ? { [type.endsWith('Entered') ? 'stateEnteredEventDetails' : 'stateExitedEventDetails']: { name } } : {}),
  }));
}
const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, second)).toISOString();
const newestFirst = (events: HistoryEvent[]) => [...events].reverse();

/** The events of one Task state whose Lambda succeeded. */
const task = (name: string): [HistoryEventType, string?][] => [
  ['TaskStateEntered', name],
  ['TaskScheduled'],
  ['TaskStarted'],
  ['TaskSucceeded'],
  ['TaskStateExited', name],
];
/** One turn of a poll loop that answers "not yet". */
const pollTurn = (until: string): [HistoryEventType, string?][] => [
  ['WaitStateEntered', `WaitFor${until}`],
  ['WaitStateExited', `WaitFor${until}`],
  ...task(`Check${until}`),
  ['ChoiceStateEntered', `Is${until}`],
  ['ChoiceStateExited', `Is${until}`],
];

describe('the progress table', () => {
  it.each(MACHINES)('gives every state of %s that can be current a step, and names no state the file lacks', (machine) => {
    // prepare
    const asl = aslOf(machine);
    const inFile = new Set(statesOf(asl.States).map((state) => state.name));

    // act
    const missing = statesWithoutStep(machine, asl);
    const stale = WORKFLOW_STEPS[machine].flatMap((step) => step.states).filter((state) => !inFile.has(state));

    // assess
    expect(inFile.size).toBeGreaterThan(10);
    expect(missing).toEqual([]);
    expect(stale).toEqual([]);
  });

  it('finds a state without a sentence, at the top level or in a Parallel branch', () => {
    // prepare: the provisioning file with one state added after the last poll and one in a branch
    const asl = aslOf('provision');
    asl.States.WaitForSomethingNew = { Type: 'Wait' };
    const parallel = Object.values(asl.States).find((state) => state.Type === 'Parallel')!;
    parallel.Branches!.push({ States: { CreateSomethingElse: { Type: 'Task' } } });

    // act
    const missing = statesWithoutStep('provision', asl);

    // assess
    expect(missing.sort()).toEqual(['CreateSomethingElse', 'WaitForSomethingNew']);
  });

  // Only the machines that have a Parallel (the update workflow has none).
  const withParallel = MACHINES.filter((machine) => Object.values(aslOf(machine).States).some((state) => state.Type === 'Parallel'));

  it.each(withParallel)("reads the states of every Parallel branch of %s as the Parallel's step", (machine) => {
    // prepare
    const nested = statesOf(aslOf(machine).States).filter((state) => state.parent !== undefined);

    // act
    const apart = nested.filter((state) => stepOf(machine, state.name) !== stepOf(machine, state.parent!));

    // assess
    expect(nested.length).toBeGreaterThan(1);
    expect(apart).toEqual([]);
  });

  it.each(MACHINES)('says each step of %s once, as a sentence', (machine) => {
    // prepare
    const sentences = WORKFLOW_STEPS[machine].map((step) => step.sentence);

    // act
    const malformed = sentences.filter((sentence) => !/^[A-Z][^.]*[a-z)]$/.test(sentence));

    // assess
    expect(malformed).toEqual([]);
    expect(new Set(sentences).size).toBe(sentences.length);
  });
});

describe('reading the history of a running execution', () => {
  it('picks the state entered last, past the newer events of its Task, and dates the step from its first state', () => {
    // prepare: provisioning is polling the compute environment for the second time
    const events = history([
      ['ExecutionStarted'],
      ['ParallelStateEntered', 'CreateStorageAndIdentity'],
      ['ParallelStateExited', 'CreateStorageAndIdentity'],
      ...task('CreateComputeEnvironment'),
      ['PassStateEntered', 'StartWaitingForComputeEnvironmentValid'], // 8
      ['PassStateExited', 'StartWaitingForComputeEnvironmentValid'],
      ...pollTurn('ComputeEnvironmentValid'),
      ['WaitStateEntered', 'WaitForComputeEnvironmentValid'],
      ['WaitStateExited', 'WaitForComputeEnvironmentValid'],
      ['TaskStateEntered', 'CheckComputeEnvironmentValid'],
      ['TaskScheduled'],
      ['TaskStarted'],
    ]);

    // act
    const reading = readHistory('provision', newestFirst(events));

    // assess
    expect(reading).toEqual({
      kind: 'running',
      progress: { step: 'Waiting for the compute environment to become valid', startedAt: at(8) },
      needsOlder: false,
    });
  });

  it('reads the events in the order of their ids, whatever order they come in', () => {
    // prepare
    const events = history([['ExecutionStarted'], ...task('CreateComputeEnvironment'), ...task('CreateJobQueue').slice(0, 3)]);
    const shuffled = [events[4]!, events[7]!, events[0]!, events[6]!, events[2]!, events[1]!, events[8]!, events[5]!, events[3]!];

    // act
    const reading = readHistory('provision', shuffled);

    // assess
    expect(reading).toMatchObject({ kind: 'running', progress: { step: 'Creating the job queue', startedAt: at(6) } });
  });

  it("shows a Parallel as one step, from the Parallel's entry, whichever branch was entered last", () => {
    // prepare
    const events = history([
      ['ExecutionStarted'],
      ['ParallelStateEntered', 'DeleteIdentity'], // 1
      ['ParallelStateStarted'],
      ['TaskStateEntered', 'DeleteAccessRole'],
      ['TaskStateEntered', 'DeleteInstanceRole'],
      ['TaskScheduled'],
      ['TaskScheduled'],
      ['TaskStateEntered', 'DeleteJobRole'],
      ['TaskScheduled'],
    ]);

    // act
    const reading = readHistory('teardown', newestFirst(events));

    // assess
    expect(reading).toMatchObject({ kind: 'running', progress: { step: stepOf('teardown', 'DeleteIdentity')!.sentence, startedAt: at(1) } });
  });

  it('says that a rollback undoes a failed creation', () => {
    // prepare
    const events = history([['ExecutionStarted'], ...task('DisableJobQueue').slice(0, 2)]);

    // act
    const rollback = readHistory('rollback', newestFirst(events));
    const teardown = readHistory('teardown', newestFirst(events));

    // assess
    expect(rollback).toMatchObject({ progress: { step: 'Rolling back the failed creation: disabling the job queue', startedAt: at(1) } });
    expect(teardown).toMatchObject({ progress: { step: 'Disabling the job queue', startedAt: at(1) } });
  });

  it('asks for older events while those read do not reach back to where the step began', () => {
    // prepare: the newest page holds only turns of a long poll loop
    const events = history([
      ['ExecutionStarted'],
      ...task('CreateComputeEnvironment'),
      ['PassStateEntered', 'StartWaitingForComputeEnvironmentValid'],
      ['PassStateExited', 'StartWaitingForComputeEnvironmentValid'],
      ...pollTurn('ComputeEnvironmentValid'),
      ...pollTurn('ComputeEnvironmentValid'),
      ['WaitStateEntered', 'WaitForComputeEnvironmentValid'], // 26
    ]);
    const newestPage = newestFirst(events).slice(0, 12); // back to the Choice of the first turn, entered at 15

    // act
    const partial = readHistory('provision', newestPage);
    const whole = readHistory('provision', newestFirst(events));

    // assess: the oldest entry of the page is an upper bound on the start; the whole history gives the start
    expect(partial).toEqual({
      kind: 'running',
      progress: { step: 'Waiting for the compute environment to become valid', startedAt: at(15) },
      needsOlder: true,
    });
    expect(whole).toMatchObject({ progress: { startedAt: at(6) }, needsOlder: false });
  });

  it.each([
    ['succeeded', 'ExecutionSucceeded'],
    ['failed', 'ExecutionFailed'],
    ['was stopped', 'ExecutionAborted'],
    ['timed out', 'ExecutionTimedOut'],
  ] as const)('shows no progress for an execution that %s', (_case, end) => {
    // prepare
    const events = history([['ExecutionStarted'], ...task('MarkReady'), [end]]);

    // act
    const reading = readHistory('provision', newestFirst(events));

    // assess
    expect(reading).toEqual({ kind: 'ended' });
  });

  it('shows no progress for an execution in its Fail state, whose end is being recorded', () => {
    // prepare
    const events = history([['ExecutionStarted'], ...task('StartRollback'), ['FailStateEntered', 'ProvisioningFailed']]);

    // act
    const reading = readHistory('provision', newestFirst(events));

    // assess
    expect(reading).toEqual({ kind: 'ended' });
  });

  it('shows no progress before the first state is entered, and none for a state the table does not know', () => {
    // prepare
    const started = history([['ExecutionStarted']]);
    const unknown = history([['ExecutionStarted'], ...task('CreateComputeEnvironment'), ['PassStateEntered', 'A State']]);

    // act
    const justStarted = readHistory('provision', started);
    const elsewhere = readHistory('provision', newestFirst(unknown));

    // assess
    expect(justStarted).toEqual({ kind: 'running', needsOlder: false });
    expect(elsewhere).toEqual({ kind: 'running', unknownState: 'A State', needsOlder: false });
  });
});
