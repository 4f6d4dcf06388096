/**
 * What a typical lifecycle costs in Step Functions state transitions (DESIGN §10), from the ASL files and the
 * poll schedule (lambdas/steps/step.ts), for the waits AWS typically takes. A calculation, not a test: each
 * execution is walked along its success path, every state entered counting one transition (Parallel branches
 * included, as Step Functions bills them), every poll loop going round until its check first sees the
 * resource settled. Lambda and transition latency is left out. Run with `npm run bench:lifecycle`.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { STATE_MACHINES, type StateMachineId } from '../../lambdas/steps/catalogue';
import { allowRequireOfImportOnlyPackages } from '../../infra/local/module-hooks';
import { PROJECT_ROOT } from '../../infra/local/emulator';

// step.ts pulls in @middy/core, an import-only package, which this CommonJS script can require only once the
// hook is in; hence a require after it, not an import (imports run first).
allowRequireOfImportOnlyPackages();
const { nextPoll } = require('../../lambdas/steps/step') as typeof import('../../lambdas/steps/step');

const DOLLARS_PER_TRANSITION = 0.025 / 1000;

type State = { Type: string; Next?: string; Default?: string; Branches?: Machine[]; Result?: { waitSeconds?: number } };
type Machine = { StartAt: string; States: Record<string, State> };

/** The typical waits, from the moment a loop starts to AWS reporting the resource settled, by Choice state. */
const TYPICAL_SECONDS: Partial<Record<StateMachineId, Record<string, number>>> = {
  provision: { IsInstanceProfileVisible: 0, IsComputeEnvironmentValid: 60, IsJobQueueValid: 10 },
  teardown: { IsJobQueueDisabled: 10, IsJobQueueDeleted: 30, IsComputeEnvironmentDisabled: 30, IsComputeEnvironmentDeleted: 180 },
};

/**
 * Loops that are done only after several checks in a row see the resource settled (iam-steps.ts,
 * INSTANCE_PROFILE_SIGHTINGS): the first sighting as `pollLoop` says, then one more round per further sighting.
 */
const CONSECUTIVE_SIGHTINGS: Record<string, number> = { IsInstanceProfileVisible: 3 };

/** Choices on an option of the environment, and whether a typical environment has it: scheduled flows are opt-in. */
const OPTIONS: Record<string, boolean> = { IsSchedulingOn: false };

/** A poll schedule: the wait after the n-th check, given the previous wait. */
type Schedule = (attempt: number, previousWait: number) => number;
const CURRENT: Schedule = (attempt, previousWait) => nextPoll({ attempt: attempt - 1, waitSeconds: previousWait }, true, 'x').waitSeconds;
/** The schedule before this one: the wait grew by half from the Pass state's, up to 30 s. */
const BEFORE: Schedule = (_, previousWait) => Math.min(Math.ceil(previousWait * 1.5), 30);

/** How many checks a loop makes, and how late the last one sees the resource, for one that settles at `readyAt`. */
function pollLoop(firstWait: number, readyAt: number, schedule: Schedule): { checks: number; lag: number } {
  let time = firstWait;
  let wait = firstWait;
  let checks = 1;
  while (time < readyAt) {
    wait = schedule(checks, wait);
    time += wait;
    checks += 1;
  }
  return { checks, lag: time - readyAt };
}

interface Walk {
  transitions: number;
  invocations: number;
  lags: Record<string, number>;
}

/** Walks a machine's success path from StartAt, going round each poll loop as `pollLoop` says. */
function walk(machine: Machine, readyAt: Record<string, number>, schedule: Schedule, totals: Walk): void {
  let name: string | undefined = machine.StartAt;
  let firstWait = 0;
  while (name) {
    const state: State = machine.States[name]!;
    totals.transitions += 1;
    if (state.Type === 'Task') totals.invocations += 1;
    if (state.Type === 'Pass' && state.Result?.waitSeconds !== undefined) firstWait = state.Result.waitSeconds;
    if (state.Type === 'Parallel') for (const branch of state.Branches ?? []) walk(branch, readyAt, schedule, totals);
    if (state.Type === 'Choice' && OPTIONS[name] !== undefined) {
      // An option of the environment, not a poll loop: the typical environment takes the path OPTIONS says.
      name = OPTIONS[name] ? (state as unknown as { Choices: { Next: string }[] }).Choices[0]!.Next : state.Default;
      continue;
    }
    if (state.Type === 'Choice') {
      // The loop so far counted one round (Wait, Task, this Choice); every further check is one more round.
      const { checks: firstSighting, lag } = pollLoop(firstWait, readyAt[name] ?? 0, schedule);
      const checks = firstSighting + (CONSECUTIVE_SIGHTINGS[name] ?? 1) - 1;
      totals.transitions += 3 * (checks - 1);
      totals.invocations += checks - 1;
      totals.lags[name] = lag;
      // Every Choice of these machines is a poll loop's: its Default goes round, its one choice goes on.
      if (machine.States[state.Default!]?.Type !== 'Wait') throw new Error(`${name}: a Choice that is not a poll loop`);
      name = (state as unknown as { Choices: { Next: string }[] }).Choices[0]!.Next;
      continue;
    }
    name = state.Next;
  }
}

function figures(id: StateMachineId, schedule: Schedule): Walk {
  const machine = JSON.parse(readFileSync(path.join(PROJECT_ROOT, STATE_MACHINES[id].file), 'utf8')) as Machine;
  const totals: Walk = { transitions: 0, invocations: 0, lags: {} };
  walk(machine, TYPICAL_SECONDS[id] ?? {}, schedule, totals);
  return totals;
}

function main(): void {
  const rows: string[] = ['| schedule | workflow | state transitions | step invocations | cost | notice lag per poll loop (s) |', '|---|---|---|---|---|---|'];
  for (const [label, schedule] of [
    ['3 s for 3 min, then ×1.5 to 30 s', CURRENT],
    ['before: ×1.5 from 2–3 s to 30 s', BEFORE],
  ] as const) {
    let lifecycle = 0;
    for (const id of ['provision', 'teardown'] as const) {
      const { transitions, invocations, lags } = figures(id, schedule);
      lifecycle += transitions;
      const lagText = Object.entries(lags)
        .map(([choice, lag]) => `${choice.replace(/^Is/, '')} ${lag}`)
        .join(', ');
      rows.push(`| ${label} | ${id} | ${transitions} | ${invocations} | $${(transitions * DOLLARS_PER_TRANSITION).toFixed(5)} | ${lagText} |`);
    }
    rows.push(`| ${label} | lifecycle | ${lifecycle} | | $${(lifecycle * DOLLARS_PER_TRANSITION).toFixed(5)} | |`);
  }
  const waits = Object.entries(TYPICAL_SECONDS)
    .map(([id, loops]) => `${id}: ${Object.entries(loops).map(([choice, seconds]) => `${choice.replace(/^Is/, '')} at ${seconds} s`).join(', ')}`)
    .join('; ');
  console.log(`Typical AWS waits — ${waits}. $0.025 per 1,000 transitions.\n`);
  console.log(rows.join('\n'));
}

main();
