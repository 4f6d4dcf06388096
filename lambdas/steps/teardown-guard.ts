/**
 * Destructive steps act only on a teardown the registry shows. The record is written by the API (DELETE) and
 * by the registry steps, never by the steps that delete: so a workflow started with a wrong input (another
 * environment's name, an old generation, a purge nobody asked for) removes nothing, whatever its input says.
 *
 *   delete mode    the record is DELETING at the workflow's generation (purge: and purgeRequested is true)
 *   rollback mode  the record is CREATING at the workflow's generation (a failed create rolling back)
 *   update mode    the record is UPDATING at the workflow's generation with `pendingSpec` equal to the input's
 *                  spec (the very resize the PATCH recorded), and the step is one of UPDATE_DESTRUCTIVE_STEPS:
 *                  a resize may retire a compute environment or turn scheduling off, never delete a bucket or role
 */
import type { EnvironmentRecord, Spec, WorkflowEnvironment } from '../core/environment';
import { TeardownNotRecordedError } from '../core/errors';
import * as registry from '../core/registry';
import { UPDATE_DESTRUCTIVE_STEPS } from './catalogue';

/** Two specs are the same resize when every field matches, whatever the order of keys (or families). */
export function sameSpec(a: Spec | null | undefined, b: Spec | null | undefined): boolean {
  if (!a || !b) return false;
  const families = (spec: Spec) => [...(spec.gpuInstanceFamilies ?? [])].sort().join(',');
  return a.maxVcpus === b.maxVcpus && a.gpu === b.gpu && (a.scheduling ?? false) === (b.scheduling ?? false) && families(a) === families(b);
}

/** The update workflow's guard: the record shows this resize (UPDATING at its generation, asking for its spec). */
export async function assertUpdateRecorded(environment: WorkflowEnvironment, what: string): Promise<EnvironmentRecord> {
  const record = await registry.getEnvironment(environment.name);
  const refuse = (why: string) =>
    new TeardownNotRecordedError(`${what} was left as it is: ${why}. Only the update a PATCH recorded may change it.`);
  if (!record) throw refuse(`the registry has no environment "${environment.name}"`);
  if (record.status !== 'UPDATING' || record.generation !== environment.generation) {
    throw refuse(`the registry shows "${environment.name}" ${record.status} at generation ${record.generation}, not UPDATING at generation ${environment.generation}`);
  }
  if (!sameSpec(record.pendingSpec, environment.spec)) throw refuse(`the update recorded for "${environment.name}" asks for another spec`);
  return record;
}

export async function assertTeardownRecorded(environment: WorkflowEnvironment, step?: string): Promise<void> {
  if (environment.mode === 'update') {
    if (step === undefined || !UPDATE_DESTRUCTIVE_STEPS.includes(step)) {
      throw new TeardownNotRecordedError(
        `Nothing of "${environment.name}" was deleted: an update may not run ${step ?? 'this step'}. Send DELETE /environments/${environment.name} to start a teardown.`,
      );
    }
    await assertUpdateRecorded(environment, `"${environment.name}"`);
    return;
  }
  const record = await registry.getEnvironment(environment.name);
  const expected = environment.mode === 'rollback' ? 'CREATING' : 'DELETING';
  const refuse = (why: string) =>
    new TeardownNotRecordedError(
      `Nothing of "${environment.name}" was deleted: ${why}. Send DELETE /environments/${environment.name} to start a teardown.`,
    );
  if (!record) throw refuse('the registry has no such environment');
  if (record.generation !== environment.generation || record.status !== expected) {
    throw refuse(
      `the registry shows it ${record.status} at generation ${record.generation}, not ${expected} at generation ${environment.generation}`,
    );
  }
  if (environment.purge && !record.purgeRequested) throw refuse('no DELETE asked for its data to be purged');
}
