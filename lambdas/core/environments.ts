/**
 * The environments service: what a caller may do with environments, and the one place that decides it.
 * The API's route handlers only translate HTTP to these calls and back; every rule of DESIGN §4 lives here:
 * ownership (a teammate sees and touches only their own environments, admins all of them), admission control
 * (name free, per-teammate and account quotas), the status rules of DELETE, and starting the workflows.
 *
 * Every write is a conditional write on the status and generation that were read (registry.ts), so two
 * requests racing on one environment cannot both win, and a workflow's execution name derives from the
 * generation (naming.executionName), so the same change can never start two workflows.
 *
 * The same names let DELETE find the workflow a CREATING or DELETING record waits on: when none runs (its
 * outcome was never recorded: a step died, someone stopped it by hand, it never started), the record would
 * wait forever, so DELETE takes it over as it would a failed one. They also let a GET show how far that
 * workflow has got (progressOf), read from its execution's history only when someone asks.
 */
import { DescribeExecutionCommand, GetExecutionHistoryCommand, type HistoryEvent, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { type Caller, maySee, ownerIdOf, ownerUniqueIdOf, owns } from './access';
import { sfnClient } from './clients';
import {
  type CreateRequest,
  EnvironmentName,
  type EnvironmentRecord,
  type EnvironmentStatus,
  type MetaflowConfig,
  type Progress,
  type Spec,
  UPDATE_FIELDS,
  type UpdateRequest,
  WorkflowEnvironment,
  createRequestSchema,
  updateRequestSchema,
} from './environment';
import {
  BatchLimitReachedError,
  EnvironmentNotFoundError,
  EnvironmentStateConflictError,
  ForbiddenError,
  NameTakenError,
  QuotaExceededError,
  WorkflowUnavailableError,
  messageOf,
} from './errors';
import { logger } from './logger';
import { recordEnvironmentCreated } from './metrics';
import { executionName, namesFor, resourcesOf } from './naming';
import { judge, preflight, readFacts } from './preflight';
import { type HistoryReading, type WorkflowKind, readHistory } from './progress';
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
  if (!record || !maySee(caller, record)) {
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
  // A teammate's own list also leaves out what a deleted principal of the same name owned (see owns).
  return records.filter(
    (record) => (record.status !== 'DELETED' || holdsRetainedData(record)) && (caller.isAdmin || owns(caller, record)),
  );
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
  UPDATING: 'its configuration is missing from the registry; ask the platform owner to look at the update workflow.',
};

/** GET /environments/{name}/config: the Metaflow configuration file, only once READY. */
export async function getConfigFor(caller: Caller, name: string): Promise<MetaflowConfig> {
  const record = await visibleEnvironment(caller, name);
  // While UPDATING the queue and bucket stay: the configuration in force is still the one to use.
  if ((record.status !== 'READY' && record.status !== 'UPDATING') || !record.config) {
    throw new EnvironmentStateConflictError(
      `The environment "${name}" is ${record.status}, so it has no Metaflow configuration: ${CONFIG_ADVICE[record.status]}`,
    );
  }
  return record.config;
}

/**
 * The owner a create is for: the caller, or (admins only) the teammate named in the request. The unique id
 * is known for the caller only; an environment an admin creates for a teammate is owned by name.
 */
function ownerOfNewEnvironment(caller: Caller, request: CreateRequest): { owner: string; ownerUniqueId: string | null } {
  if (request.owner === undefined || ownerIdOf(request.owner) === caller.id) {
    return { owner: caller.id, ownerUniqueId: ownerUniqueIdOf(caller) };
  }
  const owner = ownerIdOf(request.owner);
  // Naming yourself is harmless; naming someone else is an admin's privilege.
  if (owner !== caller.id && !caller.isAdmin) {
    throw new ForbiddenError(
      'Only an admin may create an environment for another teammate: leave out "owner" to create one for yourself.',
    );
  }
  return { owner, ownerUniqueId: null };
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
  const yours = owns(caller, existing) || ownerIdOf(existing.owner) === owner;
  throw new NameTakenError(
    yours
      ? `The environment "${name}" already exists and is ${existing.status}: GET /environments/${name} shows it; DELETE it first to create it anew.`
      : `The name "${name}" is taken by another environment; choose another name.`,
  );
}

/** The quotas a create is admitted under (registry.putNewEnvironment checks them in the same write). */
function quotas(): registry.Quotas {
  return { perOwner: settings.maxEnvironmentsPerOwner(), account: settings.maxEnvironments() };
}

/** Says which quota refused a create, how many environments it counts, and what to do. */
function quotaAnswer(refusal: registry.QuotaReachedError, owner: string, caller: Caller): QuotaExceededError {
  const { held, limit } = refusal;
  if (refusal.quota === 'owner') {
    const who = owner === caller.id ? 'You already hold' : `${owner} already holds`;
    return new QuotaExceededError(
      `${who} ${held} environment${held === 1 ? '' : 's'}, the most one teammate may hold (quota per teammate: ${limit}). ` +
        'Delete one first, or ask the platform owner to raise the quota.',
    );
  }
  return new QuotaExceededError(
    `The team already has ${held} environment${held === 1 ? '' : 's'}, the most this deployment allows (account quota: ${limit}; ` +
      'AWS Batch allows 50 compute environments per region). Delete an unused one, or ask the platform owner.',
  );
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
  const { owner, ownerUniqueId } = ownerOfNewEnvironment(caller, request);
  // Read before anything is written: a deployment that lacks it answers 500 and leaves no record behind.
  const provisionStateMachineArn = settings.provisionStateMachineArn();
  const { name } = request;
  const existing = await registry.getEnvironment(name);
  assertNameFree(existing, name, owner, caller);
  // Read-only checks of the account and region (preflight.ts), before anything is written: a refusal
  // records nothing and moves no quota counter. What only limits the environment travels in `warnings`.
  const { warnings, gpuInstanceFamilies } = await preflight(request);

  const now = new Date().toISOString();
  const generation = (existing?.generation ?? 0) + 1;
  const adopted = existing && holdsRetainedData(existing) ? existing.retainedBucket : null;
  const record: EnvironmentRecord = {
    name,
    owner,
    ownerUniqueId,
    status: 'CREATING',
    statusReason: adopted ? `Creating; the bucket ${adopted} kept by the last DELETE is adopted with its data.` : null,
    region: settings.region(),
    spec: { maxVcpus: request.maxVcpus, gpu: request.gpu, ...(gpuInstanceFamilies ? { gpuInstanceFamilies } : {}), scheduling: request.scheduling },
    resources: resourcesOf(namesFor(currentDeployment(), name), request.scheduling),
    config: null,
    generation,
    retainedBucket: null,
    purgeRequested: false,
    warnings,
    createdAt: now,
    updatedAt: now,
  };
  // Admission in one transaction: the record is written only if the name is still free at the generation
  // read above (else NameTaken) and both quota counters are below their quota (else QuotaExceeded, saying which).
  try {
    await registry.putNewEnvironment(record, { replacingDeletedGeneration: existing?.generation, quotas: quotas() });
  } catch (error) {
    if (error instanceof registry.QuotaReachedError) throw quotaAnswer(error, owner, caller);
    throw error;
  }

  // The provisioning workflow needs no purge or mode: those are teardown's.
  const input = JSON.stringify({ environment: { name, owner, ownerUniqueId, spec: record.spec, generation } });
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
  recordEnvironmentCreated();
  return record;
}

export interface DeleteOutcome {
  record: EnvironmentRecord;
  /** Whether this request started a teardown (false: one is running already, or nothing is left to delete). */
  started: boolean;
}

/**
 * How long after a status change the request (or step) that made it may still be starting the workflow
 * that goes with it. Longer than the API function may run (25 s, infra/stack.ts) and than a step's
 * StartExecution with its retries: past it, an execution that does not exist never will.
 */
export const WORKFLOW_START_WINDOW_MS = 60_000;

/** One execution that may be driving a record: which workflow, the state machine it runs on and its deterministic name. */
interface ExpectedExecution {
  kind: WorkflowKind;
  stateMachineArn: string;
  executionName: string;
}

/**
 * The executions that drive a record in its transitional status, in the order they start. CREATING: the
 * provisioning, then (when it failed) the rollback it starts on the teardown state machine before it
 * ends, so checking in this order never misses a rollback whose provisioning has just ended. DELETING: the
 * teardown.
 */
function expectedExecutionsOf(record: EnvironmentRecord): ExpectedExecution[] {
  const expected = (kind: WorkflowKind, stateMachineArn: string): ExpectedExecution => ({
    kind,
    stateMachineArn,
    executionName: executionName(kind, record.name, record.generation),
  });
  if (record.status === 'CREATING') {
    return [expected('provision', settings.provisionStateMachineArn()), expected('rollback', settings.teardownStateMachineArn())];
  }
  if (record.status === 'UPDATING') return [expected('update', settings.updateStateMachineArn())];
  return [expected('teardown', settings.teardownStateMachineArn())];
}

/** `arn:…:stateMachine:<machine>` → `arn:…:execution:<machine>:<execution>`. */
function executionArnOf({ stateMachineArn, executionName: execution }: ExpectedExecution): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${execution}`;
}

/** What drives a CREATING or DELETING record now. */
type Driver =
  /** An execution is RUNNING; `input` is the one it was started with. */
  | { kind: 'running'; executionName: string; input: string | undefined }
  /** No execution exists yet, but the status changed so recently that its starter may still be at it. */
  | { kind: 'starting' }
  /** Nothing runs and nothing will: the record is orphaned. `stopped` lists the executions that ended. */
  | { kind: 'none'; stopped: string[] };

async function driverOf(record: EnvironmentRecord): Promise<Driver> {
  const stopped: string[] = [];
  for (const expected of expectedExecutionsOf(record)) {
    try {
      const execution = await sfnClient().send(new DescribeExecutionCommand({ executionArn: executionArnOf(expected) }));
      if (execution.status === 'RUNNING') return { kind: 'running', executionName: expected.executionName, input: execution.input };
      stopped.push(`${expected.executionName} (${execution.status})`);
    } catch (error) {
      if ((error as { name?: string })?.name === 'ExecutionDoesNotExist') continue;
      logger.error('could not look up the workflow of an environment', { error: error as Error, executionName: expected.executionName });
      throw new WorkflowUnavailableError(
        `Could not check whether the workflow of "${record.name}" is still running (${messageOf(error)}); nothing was changed. ` +
          'Send DELETE again in a minute.',
        { cause: error },
      );
    }
  }
  // An execution that ended shows its starter is done; with none at all, the starter may still be on its way.
  const changedAgo = Date.now() - Date.parse(record.updatedAt);
  if (stopped.length === 0 && changedAgo < WORKFLOW_START_WINDOW_MS) return { kind: 'starting' };
  return { kind: 'none', stopped };
}

/**
 * How many history events one read asks for, and how many reads at most. The newest page nearly always
 * holds the state entered last and the entry of the step before (a Task is five events, one turn of a poll
 * loop nine); further pages are read only to date the start of a long poll loop, and no further than this.
 */
export const PROGRESS_PAGE_SIZE = 25;
const PROGRESS_MAX_PAGES = 4;
/** However slow Step Functions is, a GET waits no longer than this for the progress, then answers without it. */
const PROGRESS_TIMEOUT_MS = 3_000;

/**
 * Reads the newest events of one execution's history into the step it is in, paging back only while the
 * events read do not show where that step began. Undefined when the execution does not exist (yet).
 */
async function readExecutionHistory(expected: ExpectedExecution, abortSignal: AbortSignal): Promise<HistoryReading | undefined> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  for (let page = 1; ; page++) {
    let answer;
    try {
      answer = await sfnClient().send(
        new GetExecutionHistoryCommand({
          executionArn: executionArnOf(expected),
          reverseOrder: true,
          maxResults: PROGRESS_PAGE_SIZE,
          // Only the event types, names and times are read: leave out every state's input and output.
          includeExecutionData: false,
          nextToken,
        }),
        { abortSignal },
      );
    } catch (error) {
      if ((error as { name?: string })?.name === 'ExecutionDoesNotExist') return undefined;
      throw error;
    }
    events.push(...(answer.events ?? []));
    const reading = readHistory(expected.kind, events);
    nextToken = answer.nextToken;
    if (reading.kind === 'ended' || !reading.needsOlder || !nextToken || page === PROGRESS_MAX_PAGES) return reading;
  }
}

/**
 * The progress of the workflow driving a CREATING or DELETING environment: the step its running execution is
 * in, from that execution's history (DESIGN §4). Nothing is read for any other status, so environments at rest
 * cost no call. The executions are checked in the order of expectedExecutionsOf, so a failed create shows its
 * rollback once the provisioning has ended. Showing progress is a courtesy: when it cannot be read (Step
 * Functions slow or refusing, a state this code does not know) the environment is answered without it.
 */
export async function progressOf(record: EnvironmentRecord): Promise<Progress | undefined> {
  if (record.status !== 'CREATING' && record.status !== 'DELETING' && record.status !== 'UPDATING') return undefined;
  const abortSignal = AbortSignal.timeout(PROGRESS_TIMEOUT_MS);
  try {
    for (const expected of expectedExecutionsOf(record)) {
      const reading = await readExecutionHistory(expected, abortSignal);
      if (reading === undefined || reading.kind === 'ended') continue;
      if (reading.unknownState !== undefined) {
        logger.warn('the workflow is in a state that has no progress sentence', {
          environment: record.name,
          executionName: expected.executionName,
          state: reading.unknownState,
        });
      }
      return reading.progress;
    }
    return undefined;
  } catch (error) {
    logger.warn('could not read the progress of the workflow of an environment; answering without it', {
      error: error as Error,
      environment: record.name,
    });
    return undefined;
  }
}

/** Whether the running teardown was started with purge (its input says so; unreadable input: no). */
function teardownPurges(input: string | undefined): boolean {
  try {
    return WorkflowEnvironment.safeParse(JSON.parse(input ?? 'null')?.environment).data?.purge === true;
  } catch {
    return false;
  }
}

/** Why an orphaned record is taken over, kept as the statusReason of the new teardown. */
function orphanedReason(record: EnvironmentRecord, stopped: readonly string[]): string {
  const workflow =
    record.status === 'CREATING' ? 'The workflow creating it' : record.status === 'UPDATING' ? 'The workflow resizing it' : 'The previous teardown';
  const which = stopped.length > 0 ? ` (${stopped.join(', ')})` : ' (no execution of it exists)';
  const before = record.statusReason ? ` It last said: ${record.statusReason}` : '';
  return `${workflow} had stopped${which} without recording an outcome; deleting whatever it left.${before}`;
}

/**
 * DELETE /environments/{name}: READY, CREATE_FAILED, DELETE_FAILED → DELETING and a teardown at the next
 * generation; DELETED → nothing to do, unless the bucket was kept and `purge` asks to remove it with its
 * data. CREATING and DELETING depend on their workflow: while it runs, 409 while CREATING, and the same
 * answer again while DELETING (nothing new starts; 409 when `purge` asks for more than the running
 * teardown does); when it has stopped without recording an outcome, as from DELETE_FAILED.
 */
export async function deleteEnvironment(caller: Caller, name: string, options: { purge: boolean }): Promise<DeleteOutcome> {
  const record = await visibleEnvironment(caller, name);
  switch (record.status) {
    case 'CREATING':
    case 'UPDATING':
    case 'DELETING': {
      const driver = await driverOf(record);
      if (driver.kind === 'none') {
        logger.warn('environment orphaned by its workflow; tearing it down', { environment: name, status: record.status, stopped: driver.stopped });
        return startTeardown(record, options.purge, orphanedReason(record, driver.stopped));
      }
      if (record.status === 'CREATING') {
        throw new EnvironmentStateConflictError(
          `The environment "${name}" is still being created and cannot be deleted yet: ` +
            `GET /environments/${name} until it is READY or CREATE_FAILED, then DELETE it.`,
        );
      }
      if (record.status === 'UPDATING') {
        throw new EnvironmentStateConflictError(
          `The environment "${name}" is being resized and cannot be deleted yet: ` +
            `GET /environments/${name} until it is READY again (usually a few minutes), then DELETE it.`,
        );
      }
      const purging = driver.kind === 'running' && teardownPurges(driver.input);
      if (options.purge && !purging) {
        throw new EnvironmentStateConflictError(
          `The environment "${name}" is already being deleted without purge, so a bucket that still holds data will be kept. ` +
            `GET /environments/${name} until it is DELETED, then send DELETE /environments/${name}?purge=true again: that removes the kept bucket with its data.`,
        );
      }
      return { record, started: false };
    }
    case 'DELETED':
      if (!(options.purge && holdsRetainedData(record))) return { record, started: false };
      break;
    default:
      break;
  }
  return startTeardown(record, options.purge);
}

/**
 * The `$.environment` a teardown or update workflow of a recorded environment receives: who owns it, and the
 * compute environment in force, which a resize may have replaced (naming.namesFor).
 */
function workflowEnvironmentOf(
  record: EnvironmentRecord,
  run: Pick<WorkflowEnvironment, 'spec' | 'generation' | 'purge' | 'mode'>,
): WorkflowEnvironment {
  return {
    name: record.name,
    owner: record.owner,
    ownerUniqueId: record.ownerUniqueId,
    ...run,
    ...(record.computeEnvironmentRevision !== undefined ? { computeEnvironmentRevision: record.computeEnvironmentRevision } : {}),
  };
}

/**
 * Starts the teardown of `record` as DELETE does: DELETING at the next generation, then the workflow.
 * `takeOverReason` leads the statusReason (a take-over, an idle expiry); `where` adds conditions on the record the
 * write must still meet (idle expiry: not exempt, still announced), so a change made since the read wins.
 * Exported for the idle-expiry check (idle-expiry.ts), the one caller that is not a request.
 */
export async function startTeardown(
  record: EnvironmentRecord,
  purge: boolean,
  takeOverReason?: string,
  where?: readonly registry.RecordCondition[],
): Promise<DeleteOutcome> {
  const { name } = record;
  const generation = record.generation + 1;
  const teardownStateMachineArn = settings.teardownStateMachineArn();
  const purgeReason = purge ? 'Deleting everything, the bucket and its data included (purge).' : null;
  let deleting: EnvironmentRecord;
  try {
    deleting = await registry.transition(name, {
      from: [record.status],
      generation: record.generation,
      to: 'DELETING',
      statusReason: [takeOverReason, purgeReason].filter((reason) => reason).join(' ') || null,
      // The bucket step deletes data only when the record says a purge was asked for (teardown-guard.ts).
      set: { generation, purgeRequested: purge },
      // A record being torn down must not expire under the workflow.
      expiresAt: null,
      where,
    });
  } catch (error) {
    if (!(error instanceof EnvironmentStateConflictError)) throw error;
    // Another request changed it since the read: a DELETE that got there first is this DELETE's answer too.
    const current = await registry.getEnvironment(name);
    if (current?.status === 'DELETING') return { record: current, started: false };
    throw error;
  }

  const environment = workflowEnvironmentOf(record, { spec: record.spec, generation, purge, mode: 'delete' });
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

// ---- PATCH /environments/{name}: resize (DESIGN §4) ----

/** Validates the body of PATCH /environments/{name} (unknown fields, wrong types, the vCPU ceiling, at least one field). */
export function parseUpdateRequest(body: unknown): UpdateRequest {
  return parseOrThrow(updateRequestSchema(settings.maxVcpusCeiling()), body, {
    what: 'The update request',
    where: 'body',
    allowed: UPDATE_FIELDS,
  });
}

/** Why a PATCH cannot change an environment in this status, and when to try again. */
const UPDATE_ADVICE: Record<Exclude<EnvironmentStatus, 'READY'>, (name: string) => string> = {
  CREATING: (name) => `it is still being created: GET /environments/${name} until it is READY, then send PATCH again.`,
  UPDATING: (name) =>
    `an earlier change is still being applied: GET /environments/${name} until it is READY again (minutes; longer when instance types change), then send PATCH again.`,
  CREATE_FAILED: () => 'creating it failed (see statusReason): DELETE it, then create it again with the settings you want.',
  DELETING: () => 'it is being deleted: create it again with the settings you want once it is DELETED.',
  DELETED: () => 'it has been deleted: create it again with the settings you want.',
  DELETE_FAILED: () => 'deleting it failed (see statusReason): send DELETE again.',
};

/** The spec a PATCH asks for: the record's, with the fields it names (GPU families chosen later, by preflight). */
function requestedSpec(current: Spec, request: UpdateRequest): Spec {
  const gpu = request.gpu ?? current.gpu;
  const { gpuInstanceFamilies: _families, ...rest } = current;
  return {
    ...rest,
    maxVcpus: request.maxVcpus ?? current.maxVcpus,
    gpu,
    // Unchanged GPUs keep the families recorded at create; GPUs turned on get them from preflight below.
    ...(gpu && current.gpu && current.gpuInstanceFamilies ? { gpuInstanceFamilies: current.gpuInstanceFamilies } : {}),
    scheduling: request.scheduling ?? current.scheduling ?? false,
  };
}

const specChanged = (current: Spec, wanted: Spec) =>
  current.maxVcpus !== wanted.maxVcpus || current.gpu !== wanted.gpu || (current.scheduling ?? false) !== (wanted.scheduling ?? false);

/** "maxVcpus 16 → 32, gpu false → true": what a resize changes, for its statusReason. */
function changesOf(current: Spec, wanted: Spec): string {
  const fields: [string, unknown, unknown][] = [
    ['maxVcpus', current.maxVcpus, wanted.maxVcpus],
    ['gpu', current.gpu, wanted.gpu],
    ['scheduling', current.scheduling ?? false, wanted.scheduling ?? false],
  ];
  return fields
    .filter(([, before, after]) => before !== after)
    .map(([field, before, after]) => `${field} ${String(before)} → ${String(after)}`)
    .join(', ');
}

/**
 * Preflight of a resize that buys more (a larger maxVcpus, or GPUs turned on), with the same refusals and
 * warnings as a create. Not AWS Batch's limit of compute environments per region: an in-place change makes
 * none, and a re-create that meets the limit fails in the workflow, which undoes it and says why.
 */
async function updatePreflight(current: Spec, wanted: Spec): Promise<{ warnings?: string[]; gpuInstanceFamilies?: string[] }> {
  if (wanted.maxVcpus <= current.maxVcpus && !(wanted.gpu && !current.gpu)) return {};
  const { refusal, warnings, gpuInstanceFamilies } = judge(await readFacts(wanted));
  if (refusal && !(refusal instanceof BatchLimitReachedError)) throw refusal;
  return { warnings, ...(gpuInstanceFamilies ? { gpuInstanceFamilies } : {}) };
}

export interface UpdateOutcome {
  record: EnvironmentRecord;
  /** Whether this request started an update workflow (false: nothing to change, or a record-only change). */
  started: boolean;
}

/**
 * PATCH /environments/{name}: owner or admin; READY only. A change of maxVcpus, gpu or scheduling records
 * UPDATING at the next generation with the spec asked for (`pendingSpec`; `spec` stays the one in force) and
 * starts the update workflow, which ends READY with the new spec, or READY with the old one and a reason.
 * `idleExpiryExempt` (admins only) is written on the record and starts nothing. Nothing to change: the
 * environment as it is, nothing written or started.
 */
export async function updateEnvironment(caller: Caller, name: string, body: unknown): Promise<UpdateOutcome> {
  const request = parseUpdateRequest(body);
  const record = await visibleEnvironment(caller, name);
  if (request.idleExpiryExempt !== undefined && !caller.isAdmin) {
    throw new ForbiddenError(
      'Only an admin may exempt an environment from idle expiry: leave out "idleExpiryExempt", or ask an admin to set it.',
    );
  }
  if (record.status !== 'READY') {
    throw new EnvironmentStateConflictError(
      `The environment "${name}" is ${record.status}, so it cannot be changed now: ${UPDATE_ADVICE[record.status](name)}`,
    );
  }
  const wanted = requestedSpec(record.spec, request);
  const exemptChange =
    request.idleExpiryExempt !== undefined && request.idleExpiryExempt !== (record.idleExpiryExempt ?? false)
      ? { idleExpiryExempt: request.idleExpiryExempt }
      : {};
  if (!specChanged(record.spec, wanted)) {
    if (!('idleExpiryExempt' in exemptChange)) return { record, started: false };
    // A record-only change: still READY, at the same generation (no workflow's name derives from it).
    const changed = await registry.transition(name, {
      from: ['READY'],
      generation: record.generation,
      to: 'READY',
      statusReason: record.statusReason,
      set: exemptChange,
    });
    logger.info('idle expiry exemption changed', { environment: name, idleExpiryExempt: request.idleExpiryExempt });
    return { record: changed, started: false };
  }

  // Read before anything is written: a deployment that lacks it answers 500 and changes nothing.
  const updateStateMachineArn = settings.updateStateMachineArn();
  const { warnings, gpuInstanceFamilies } = await updatePreflight(record.spec, wanted);
  const pendingSpec: Spec = { ...wanted, ...(wanted.gpu && gpuInstanceFamilies ? { gpuInstanceFamilies } : {}) };
  const generation = record.generation + 1;
  let updating: EnvironmentRecord;
  try {
    updating = await registry.transition(name, {
      from: ['READY'],
      generation: record.generation,
      to: 'UPDATING',
      statusReason: `Resizing: ${changesOf(record.spec, wanted)}.`,
      set: { generation, pendingSpec, ...exemptChange, ...(warnings ? { warnings } : {}) },
    });
  } catch (error) {
    if (!(error instanceof EnvironmentStateConflictError)) throw error;
    // Another request changed it since the read (a resize or a delete that got there first): say what it is now.
    const current = await registry.getEnvironment(name);
    if (current && current.status !== 'READY') {
      throw new EnvironmentStateConflictError(
        `The environment "${name}" is ${current.status}, so it cannot be changed now: ${UPDATE_ADVICE[current.status](name)}`,
      );
    }
    throw new EnvironmentStateConflictError(`The environment "${name}" changed while this request was read; send PATCH again.`);
  }

  const environment = workflowEnvironmentOf(record, { spec: pendingSpec, generation, purge: false, mode: 'update' });
  try {
    await startWorkflow(updateStateMachineArn, executionName('update', name, generation), JSON.stringify({ environment }));
  } catch (error) {
    logger.error('could not start the update workflow', { error: error as Error });
    await registry.transition(name, {
      from: ['UPDATING'],
      generation,
      to: 'READY',
      statusReason: `Resizing could not be started (${messageOf(error)}); nothing was changed. Send PATCH again.`,
      set: { pendingSpec: null },
    });
    throw new WorkflowUnavailableError(
      `The environment "${name}" could not be resized because its workflow did not start; nothing was changed. Send PATCH again in a minute.`,
    );
  }
  logger.info('environment update started', { environment: name, generation, changes: changesOf(record.spec, wanted) });
  return { record: updating, started: true };
}
