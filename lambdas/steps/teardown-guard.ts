/**
 * Destructive steps act only on a teardown the registry shows. The record is written by the API (DELETE) and
 * by the registry steps, never by the steps that delete: so a workflow started with a wrong input (another
 * environment's name, an old generation, a purge nobody asked for) removes nothing, whatever its input says.
 *
 *   delete mode    the record is DELETING at the workflow's generation (purge: and purgeRequested is true)
 *   rollback mode  the record is CREATING at the workflow's generation (a failed create rolling back)
 */
import type { WorkflowEnvironment } from '../core/environment';
import { TeardownNotRecordedError } from '../core/errors';
import * as registry from '../core/registry';

export async function assertTeardownRecorded(environment: WorkflowEnvironment): Promise<void> {
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
