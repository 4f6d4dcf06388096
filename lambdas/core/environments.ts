/**
 * The environments service: what a caller may do with environments, and the one place that decides it.
 * The API's route handlers only translate HTTP to these calls and back; every rule of DESIGN §4 lives here:
 * ownership (a teammate sees and touches only their own environments, admins all of them), admission control
 * (name free, per-teammate and account quotas), the status rules of DELETE, and starting the workflows.
 *
 * Every write is a conditional write on the status and generation that were read (registry.ts), so two
 * requests racing on one environment cannot both win, and a workflow's execution name derives from the
 * generation (naming.executionName), so the same change can never start two workflows.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { type Caller, maySee, ownerIdOf, owns } from './access';
import { sfnClient } from './clients';
import {
  type CreateRequest,
  EnvironmentName,
  type EnvironmentRecord,
  type EnvironmentStatus,
  type MetaflowConfig,
  type WorkflowEnvironment,
  createRequestSchema,
} from './environment';
import {
  EnvironmentNotFoundError,
  EnvironmentStateConflictError,
  ForbiddenError,
  NameTakenError,
  QuotaExceededError,
  WorkflowUnavailableError,
  messageOf,
} from './errors';
import { logger } from './logger';
import { executionName, namesFor, resourcesOf } from './naming';
import * as registry from './registry';
import { currentDeployment, settings } from './settings';
import { parseOrThrow } from './validation';

const CREATE_FIELDS = ['name', 'maxVcpus', 'gpu', 'owner'] as const;

/** Validates an environment name from a path; 400 with the rule when it cannot be one. */
export function environmentNameOf(name: unknown): string {
  return parseOrThrow(EnvironmentName, name, { what: 'The environment name in the path', where: 'name' });
}

/** Validates the body of POST /environments (unknown fields, wrong types, the vCPU ceiling). */
export function parseCreateRequest(body: unknown): CreateRequest {
  return parseOrThrow(createRequestSchema(settings.maxVcpusCeiling()), body, {
    what: 'The environment request',
    where: 'body',
    allowed: CREATE_FIELDS,
  });
}

/** The record of `name` if the caller may see it; otherwise 404, whether or not it exists (never reveal it). */
async function visibleEnvironment(caller: Caller, name: string): Promise<EnvironmentRecord> {
  const record = await registry.getEnvironment(environmentNameOf(name));
  if (!record || !maySee(caller, record.owner)) {
    throw new EnvironmentNotFoundError(
      `You have no environment named "${name}". GET /environments lists yours; POST /environments creates one.`,
    );
  }
  return record;
}

/** A DELETED record still stands for data when teardown kept its bucket; otherwise it is history. */
function holdsRetainedData(record: EnvironmentRecord): boolean {
  return record.status === 'DELETED' && record.retainedBucket !== null;
}

/** GET /environments: the caller's environments (admins: everyone's, or one teammate's with `owner`). */
export async function listEnvironmentsFor(caller: Caller, filter: { owner?: string } = {}): Promise<EnvironmentRecord[]> {
  let owner: string | undefined = caller.id;
  if (filter.owner !== undefined) {
    const wanted = ownerIdOf(filter.owner);
    if (!caller.isAdmin && wanted !== caller.id) {
      throw new ForbiddenError("Only an admin may list another teammate's environments; leave out ?owner= to list yours.");
    }
    owner = wanted;
  } else if (caller.isAdmin) {
    owner = undefined;
  }
  const records = await registry.listEnvironments({ owner, includeDeleted: true });
  // DELETED records are left out, except those whose bucket was kept: that data is still there, and still yours.
  return records.filter((record) => record.status !== 'DELETED' || holdsRetainedData(record));
}

/** GET /environments/{name}. */
export async function getEnvironmentFor(caller: Caller, name: string): Promise<EnvironmentRecord> {
  return visibleEnvironment(caller, name);
}

/** What to do when the configuration is asked for in a status that has none. */
const CONFIG_ADVICE: Record<EnvironmentStatus, string> = {
  CREATING: 'it is still being created; ask again once its status is READY.',
  READY: 'its configuration is missing from the registry; ask the platform owner to look at the provisioning workflow.',
  CREATE_FAILED: 'creating it failed (see statusReason); DELETE it and create it again.',
  DELETING: 'it is being deleted; create it again once it is DELETED.',
  DELETED: 'it has been deleted; create it again to get a new configuration.',
  DELETE_FAILED: 'deleting it failed (see statusReason); send DELETE again.',
};

/** GET /environments/{name}/config: the Metaflow configuration file, only once READY. */
export async function getConfigFor(caller: Caller, name: string): Promise<MetaflowConfig> {
  const record = await visibleEnvironment(caller, name);
  if (record.status !== 'READY' || !record.config) {
    throw new EnvironmentStateConflictError(
      `The environment "${name}" is ${record.status}, so it has no Metaflow configuration: ${CONFIG_ADVICE[record.status]}`,
    );
  }
  return record.config;
}

/** The owner a create is for: the caller, or (admins only) the teammate named in the request. */
function ownerOfNewEnvironment(caller: Caller, request: CreateRequest): string {
  if (request.owner === undefined) return caller.id;
  const owner = ownerIdOf(request.owner);
  // Naming yourself is harmless; naming someone else is an admin's privilege.
  if (owner !== caller.id && !caller.isAdmin) {
    throw new ForbiddenError(
      'Only an admin may create an environment for another teammate: leave out "owner" to create one for yourself.',
    );
  }
  return owner;
}

/** Name rules: a live environment holds its name; a DELETED one that kept data holds it for its owner only. */
function assertNameFree(existing: EnvironmentRecord | undefined, name: string, owner: string, caller: Caller): void {
  if (!existing || existing.status === 'DELETED') {
    if (existing && holdsRetainedData(existing) && ownerIdOf(existing.owner) !== owner) {
      throw new NameTakenError(
        `The name "${name}" holds another teammate's retained data (the bucket ${existing.retainedBucket}); choose another name.`,
      );
    }
    return;
  }
  const yours = owns(caller, existing.owner) || ownerIdOf(existing.owner) === owner;
  throw new NameTakenError(
    yours
      ? `The environment "${name}" already exists and is ${existing.status}: GET /environments/${name} shows it; DELETE it first to create it anew.`
      : `The name "${name}" is taken by another environment; choose another name.`,
  );
}

/** Admission control: the per-teammate quota, then the account's (which protects AWS Batch's 50 per region). */
async function assertQuotas(owner: string, caller: Caller): Promise<void> {
  const perOwner = settings.maxEnvironmentsPerOwner();
  const held = await registry.countLiveEnvironments(owner);
  if (held >= perOwner) {
    const who = owner === caller.id ? 'You already hold' : `${owner} already holds`;
    throw new QuotaExceededError(
      `${who} ${held} environment${held === 1 ? '' : 's'}, the most one teammate may hold (quota per teammate: ${perOwner}). ` +
        'Delete one first, or ask the platform owner to raise the quota.',
    );
  }
  const accountQuota = settings.maxEnvironments();
  const live = await registry.countLiveEnvironments();
  if (live >= accountQuota) {
    throw new QuotaExceededError(
      `The team already has ${live} environments, the most this deployment allows (account quota: ${accountQuota}; ` +
        'AWS Batch allows 50 compute environments per region). Delete an unused one, or ask the platform owner.',
    );
  }
}

/**
 * Starts a workflow execution. An execution of that name already existing means this very change was
 * started before (a retried request): success.
 */
async function startWorkflow(stateMachineArn: string, name: string, input: string): Promise<void> {
  try {
    await sfnClient().send(new StartExecutionCommand({ stateMachineArn, name, input }));
  } catch (error) {
    if ((error as { name?: string })?.name === 'ExecutionAlreadyExists') {
      logger.info('workflow execution already started', { executionName: name });
      return;
    }
    throw error;
  }
}

/** POST /environments: validates, admits, records CREATING and starts the provisioning workflow. */
export async function createEnvironment(caller: Caller, body: unknown): Promise<EnvironmentRecord> {
  const request = parseCreateRequest(body);
  const owner = ownerOfNewEnvironment(caller, request);
  // Read before anything is written: a deployment that lacks it answers 500 and leaves no record behind.
  const provisionStateMachineArn = settings.provisionStateMachineArn();
  const { name } = request;
  const existing = await registry.getEnvironment(name);
  assertNameFree(existing, name, owner, caller);
  await assertQuotas(owner, caller);

  const now = new Date().toISOString();
  const generation = (existing?.generation ?? 0) + 1;
  const adopted = existing && holdsRetainedData(existing) ? existing.retainedBucket : null;
  const record: EnvironmentRecord = {
    name,
    owner,
    status: 'CREATING',
    statusReason: adopted ? `Creating; the bucket ${adopted} kept by the last DELETE is adopted with its data.` : null,
    region: settings.region(),
    spec: { maxVcpus: request.maxVcpus, gpu: request.gpu },
    resources: resourcesOf(namesFor(currentDeployment(), name)),
    config: null,
    generation,
    retainedBucket: null,
    createdAt: now,
    updatedAt: now,
  };
  // Conditional: fails with NameTaken if someone else took the name (or the freed record) since the read above.
  await registry.putNewEnvironment(record, existing?.generation);

  // The provisioning workflow needs no purge or mode: those are teardown's.
  const input = JSON.stringify({ environment: { name, owner, spec: record.spec, generation } });
  try {
    await startWorkflow(provisionStateMachineArn, executionName('provision', name, generation), input);
  } catch (error) {
    logger.error('could not start the provisioning workflow', { error: error as Error });
    await registry.transition(name, {
      from: ['CREATING'],
      generation,
      to: 'CREATE_FAILED',
      statusReason:
        `Provisioning could not be started (${messageOf(error)}); nothing was created. ` +
        `DELETE /environments/${name} and create it again.`,
      // The adopted bucket was never touched: it is still retained data.
      set: { retainedBucket: adopted },
    });
    throw new WorkflowUnavailableError(
      `The environment "${name}" could not be provisioned because its workflow did not start; it is recorded as CREATE_FAILED. ` +
        `Try again in a minute: DELETE /environments/${name}, then POST again.`,
    );
  }
  logger.info('environment creation started', { environment: name, owner, generation });
  return record;
}

export interface DeleteOutcome {
  record: EnvironmentRecord;
  /** Whether this request started a teardown (false: one is running already, or nothing is left to delete). */
  started: boolean;
}

/**
 * DELETE /environments/{name}: 409 while CREATING; already DELETING → the same answer again (nothing new
 * starts); READY, CREATE_FAILED, DELETE_FAILED → DELETING and a teardown; DELETED → nothing to do, unless
 * the bucket was kept and `purge` asks to remove it with its data.
 */
export async function deleteEnvironment(caller: Caller, name: string, options: { purge: boolean }): Promise<DeleteOutcome> {
  const record = await visibleEnvironment(caller, name);
  switch (record.status) {
    case 'CREATING':
      throw new EnvironmentStateConflictError(
        `The environment "${name}" is still being created and cannot be deleted yet: ` +
          `GET /environments/${name} until it is READY or CREATE_FAILED, then DELETE it.`,
      );
    case 'DELETING':
      return { record, started: false };
    case 'DELETED':
      if (!(options.purge && holdsRetainedData(record))) return { record, started: false };
      break;
    default:
      break;
  }
  return startTeardown(record, options.purge);
}

async function startTeardown(record: EnvironmentRecord, purge: boolean): Promise<DeleteOutcome> {
  const { name } = record;
  const generation = record.generation + 1;
  const teardownStateMachineArn = settings.teardownStateMachineArn();
  let deleting: EnvironmentRecord;
  try {
    deleting = await registry.transition(name, {
      from: [record.status],
      generation: record.generation,
      to: 'DELETING',
      statusReason: purge ? 'Deleting everything, the bucket and its data included (purge).' : null,
      set: { generation },
      // A record being torn down must not expire under the workflow.
      expiresAt: null,
    });
  } catch (error) {
    if (!(error instanceof EnvironmentStateConflictError)) throw error;
    // Another request changed it since the read: a DELETE that got there first is this DELETE's answer too.
    const current = await registry.getEnvironment(name);
    if (current?.status === 'DELETING') return { record: current, started: false };
    throw error;
  }

  const environment: WorkflowEnvironment = { name, owner: record.owner, spec: record.spec, generation, purge, mode: 'delete' };
  try {
    await startWorkflow(teardownStateMachineArn, executionName('teardown', name, generation), JSON.stringify({ environment }));
  } catch (error) {
    logger.error('could not start the teardown workflow', { error: error as Error });
    await registry.transition(name, {
      from: ['DELETING'],
      generation,
      to: 'DELETE_FAILED',
      statusReason: `Deleting could not be started (${messageOf(error)}); nothing was removed. Send DELETE again to retry.`,
    });
    throw new WorkflowUnavailableError(
      `The environment "${name}" could not be deleted because its workflow did not start; nothing was removed. Send DELETE again in a minute.`,
    );
  }
  logger.info('environment deletion started', { environment: name, generation, purge });
  return { record: deleting, started: true };
}
