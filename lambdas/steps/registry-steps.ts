/**
 * Registry steps: record a workflow's outcome on the environment record, and start the rollback of a failed
 * create. Every status change is a conditional write at the workflow's generation (registry.transition), so
 * a workflow of an older generation changes nothing, and a step run twice finds its work already done.
 */
import { ExecutionAlreadyExists, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { sfnClient } from '../core/clients';
import type { EnvironmentStatus, Spec, WorkflowEnvironment } from '../core/environment';
import { EnvironmentStateConflictError, ValidationError, messageOf } from '../core/errors';
import { logger } from '../core/logger';
import { metaflowConfigFor } from '../core/metaflow-config';
import { type EnvironmentNames, executionName, namesFor, resourcesOf } from '../core/naming';
import * as registry from '../core/registry';
import { currentDeployment, settings } from '../core/settings';
import { hasErrorCode } from './aws-errors';
import { reasonOfCaughtError, trimSentence } from './caught-error';
import { type StepInput, type StepTable, stepHandler } from './step';
import { assertUpdateRecorded } from './teardown-guard';

const SECONDS_PER_DAY = 24 * 60 * 60;

/**
 * A transition that may already have happened: a retried step (Lambda answer lost, Step Functions retry)
 * finds the record at this generation in `alreadyDone` and succeeds without writing again.
 */
async function transitionOnce(
  environment: WorkflowEnvironment,
  change: registry.Transition,
  alreadyDone: readonly EnvironmentStatus[],
): Promise<{ changed: boolean; status: EnvironmentStatus }> {
  try {
    const record = await registry.transition(environment.name, { ...change, generation: environment.generation });
    return { changed: true, status: record.status };
  } catch (error) {
    if (!(error instanceof EnvironmentStateConflictError)) throw error;
    const current = await registry.getEnvironment(environment.name);
    if (current && current.generation === environment.generation && alreadyDone.includes(current.status)) {
      logger.info('registry already shows this outcome', { status: current.status });
      return { changed: false, status: current.status };
    }
    throw error;
  }
}

/** The reason a rollback carries; set by startRollback, read when the rollback ends. */
function rollbackReasonOf(environment: WorkflowEnvironment): string {
  return environment.reason ?? 'Creating failed.';
}

/** What a READY environment serves: its resources and the Metaflow payload, from its names and spec. */
function servedResourcesAndConfig(environment: WorkflowEnvironment, names: EnvironmentNames) {
  return {
    resources: resourcesOf(names, environment.spec.scheduling),
    config: metaflowConfigFor({
      environmentName: environment.name,
      names,
      scheduling: environment.spec.scheduling,
      s3EndpointUrl: settings.metaflowS3EndpointUrl(),
      containerRegistry: settings.batchContainerRegistry(),
    }),
  };
}

async function markReady({ environment }: StepInput) {
  const names = namesFor(currentDeployment(), environment.name);
  const result = await transitionOnce(
    environment,
    {
      from: ['CREATING'],
      to: 'READY',
      statusReason: null,
      set: {
        ...servedResourcesAndConfig(environment, names),
      },
    },
    ['READY'],
  );
  return { status: result.status };
}

async function startRollback({ environment, error }: StepInput) {
  const why = reasonOfCaughtError(error);
  const reason = `Creating failed: ${why}.`;
  const recorded = await transitionOnce(
    environment,
    { from: ['CREATING'], to: 'CREATING', statusReason: `Creating failed: ${why}. Rolling back.` },
    // The rollback this step started may already have finished when Step Functions retries the step.
    ['CREATE_FAILED'],
  );
  // Already CREATE_FAILED at this generation: the rollback ran (or could not start and said so). Nothing to add.
  if (!recorded.changed) return { status: recorded.status };

  const name = executionName('rollback', environment.name, environment.generation);
  try {
    await sfnClient().send(
      new StartExecutionCommand({
        stateMachineArn: settings.teardownStateMachineArn(),
        name,
        // A rollback never purges: a bucket adopted from an earlier DELETE keeps its data.
        input: JSON.stringify({ environment: { ...environment, purge: false, mode: 'rollback', reason } }),
      }),
    );
  } catch (startError) {
    if (startError instanceof ExecutionAlreadyExists || hasErrorCode(startError, 'ExecutionAlreadyExists')) {
      return { rollbackStarted: true, executionName: name };
    }
    // Nothing will clean up on its own: say so, and what to do, instead of leaving the record CREATING.
    logger.error('could not start the rollback', { error: startError as Error });
    await transitionOnce(
      environment,
      {
        from: ['CREATING'],
        to: 'CREATE_FAILED',
        statusReason:
          `${trimSentence(reason)}. The rollback could not be started (${trimSentence(messageOf(startError))}); ` +
          `send DELETE for this environment to remove what was created.`,
      },
      ['CREATE_FAILED'],
    );
    return { rollbackStarted: false };
  }
  return { rollbackStarted: true, executionName: name };
}

async function finishTeardown({ environment, bucket }: StepInput) {
  const bucketName = namesFor(currentDeployment(), environment.name).bucket;
  const retained = bucket?.retained === true;
  const objects = bucket?.objectCount ?? 0;
  const keptBucket =
    `The bucket ${bucketName} was kept because it still holds ${objects} object${objects === 1 ? '' : 's'}; ` +
    `DELETE /environments/${environment.name}?purge=true removes it with its data.`;

  if (environment.mode === 'rollback') {
    const statusReason = retained
      ? `${rollbackReasonOf(environment)} Everything it created has been removed. ${keptBucket}`
      : `${rollbackReasonOf(environment)} Everything it created has been removed.`;
    const result = await transitionOnce(
      environment,
      { from: ['CREATING'], to: 'CREATE_FAILED', statusReason, set: { retainedBucket: retained ? bucketName : null } },
      ['CREATE_FAILED'],
    );
    return { status: result.status };
  }

  const result = await transitionOnce(
    environment,
    {
      from: ['DELETING'],
      to: 'DELETED',
      statusReason: retained ? `Deleted. ${keptBucket}` : null,
      set: { retainedBucket: retained ? bucketName : null },
      // A DELETED record stays readable for a while, then DynamoDB's TTL removes it; a record that points at
      // a retained bucket stays until that bucket is adopted or purged.
      expiresAt: retained ? null : Math.floor(Date.now() / 1000) + settings.deletedRecordRetentionDays() * SECONDS_PER_DAY,
    },
    ['DELETED'],
  );
  return { status: result.status };
}

async function markTeardownFailed({ environment, error }: StepInput) {
  const why = reasonOfCaughtError(error);
  if (environment.mode === 'rollback') {
    const result = await transitionOnce(
      environment,
      {
        from: ['CREATING'],
        to: 'CREATE_FAILED',
        statusReason: `${trimSentence(rollbackReasonOf(environment))}. The rollback did not finish (${why}); send DELETE to clean up.`,
      },
      ['CREATE_FAILED'],
    );
    return { status: result.status };
  }
  const result = await transitionOnce(
    environment,
    { from: ['DELETING'], to: 'DELETE_FAILED', statusReason: `Deleting failed: ${why}. Send DELETE again to retry.` },
    ['DELETE_FAILED'],
  );
  return { status: result.status };
}

// ---- Update: PATCH /environments/{name} (statemachine/update.asl.json) ----

/** The spec as a teammate reads it in a statusReason. */
function describeSpec(spec: Spec): string {
  return `maxVcpus ${spec.maxVcpus}, gpu ${spec.gpu}, scheduling ${spec.scheduling ?? false}`;
}

/**
 * UPDATING → READY with the new spec: the payload is written again (scheduling adds or removes keys) and, when
 * the compute environment was re-created, the record names the replacement (`environment` is the workflow's
 * `inForce`, naming it). Only the update the record shows: UPDATING at this generation with this spec, and a
 * revision that is the record's or this update's own.
 */
async function markUpdated({ environment }: StepInput) {
  const record = await registry.getEnvironment(environment.name);
  if (record?.status === 'READY' && record.generation === environment.generation) return { status: record.status };
  await assertUpdateRecorded(environment, `The record of "${environment.name}"`);
  const revision = environment.computeEnvironmentRevision;
  if (revision !== undefined && revision !== record?.computeEnvironmentRevision && revision !== environment.generation) {
    throw new ValidationError(`The update of "${environment.name}" names compute environment revision ${revision}, which is neither the recorded one nor its own.`);
  }
  const names = namesFor(currentDeployment(), environment.name, revision);
  const result = await transitionOnce(
    environment,
    {
      from: ['UPDATING'],
      to: 'READY',
      statusReason: null,
      set: {
        spec: environment.spec,
        pendingSpec: null,
        ...(revision !== undefined ? { computeEnvironmentRevision: revision } : {}),
        ...servedResourcesAndConfig(environment, names),
      },
    },
    ['READY'],
  );
  return { status: result.status };
}

/**
 * UPDATING → READY with the spec that was in force: the update failed and was undone (the ASL ran the undo
 * first), or undoing it failed too (`rollbackError`), which the reason says, with what to do.
 */
async function markUpdateFailed({ environment, error, rollbackError }: StepInput) {
  const record = await registry.getEnvironment(environment.name);
  const previous = record?.spec;
  const why = reasonOfCaughtError(error);
  const kept = previous ? ` It keeps its previous settings (${describeSpec(previous)}).` : '';
  const statusReason = rollbackError
    ? `Resizing to ${describeSpec(environment.spec)} failed: ${why}. Undoing it did not finish either (${reasonOfCaughtError(rollbackError)}), ` +
      `so part of the change may remain.${kept} Send PATCH again to finish the change, or DELETE the environment.`
    : `Resizing to ${describeSpec(environment.spec)} failed: ${why}. Nothing was changed.${kept} Send PATCH again to retry.`;
  const result = await transitionOnce(
    environment,
    { from: ['UPDATING'], to: 'READY', statusReason, set: { pendingSpec: null } },
    ['READY'],
  );
  return { status: result.status };
}

export const steps: StepTable<'registry'> = { markReady, startRollback, finishTeardown, markTeardownFailed, markUpdated, markUpdateFailed };

export const handler = stepHandler('registry', steps);
