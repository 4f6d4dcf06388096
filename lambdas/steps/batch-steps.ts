/**
 * Batch steps: the Spot compute environment and the job queue of one environment — create, poll, disable,
 * delete. Written for AWS's rules even where the emulator is lax: a queue or compute environment is deleted
 * only once DISABLED, a compute environment only once no queue uses it (the teardown ASL keeps that order),
 * and every change is followed by a poll until AWS reports the resource settled. A compute environment that
 * goes INVALID because Batch could not use a fresh role or instance profile is re-created once
 * (pollComputeEnvironment).
 */
import {
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  DeleteComputeEnvironmentCommand,
  DeleteJobQueueCommand,
  DescribeComputeEnvironmentsCommand,
  DescribeJobQueuesCommand,
  type Ec2Configuration,
  UpdateComputeEnvironmentCommand,
  UpdateJobQueueCommand,
} from '@aws-sdk/client-batch';
import { batchClient } from '../core/clients';
import type { Spec, WorkflowEnvironment } from '../core/environment';
import { ResourceFailedError, TransientError, ValidationError, messageOf } from '../core/errors';
import { logger } from '../core/logger';
import { type EnvironmentNames, namesFor, tagsFor } from '../core/naming';
import * as registry from '../core/registry';
import { currentDeployment, settings } from '../core/settings';
import { hasErrorCode, isClientErrorSaying } from './aws-errors';
import { trimSentence } from './caught-error';
import { assertOurs, isOurs } from './ownership';
import { type StepInput, type StepTable, nextPoll, stepHandler } from './step';
import { assertUpdateRecorded } from './teardown-guard';
import { environmentSubnets } from './subnets';

/**
 * What the compute environment may launch: `optimal` (m6i/c6i/r6i/c7i), plus GPU families and the NVIDIA
 * AL2023 image when the spec asks for GPUs. Batch picks the NVIDIA image for GPU instances by itself. The
 * families are those preflight recorded in the spec (the deployment's that the region offers: Batch refuses
 * a type the region does not know); a record made before preflight has none, and gets the deployment's.
 * None offered: CPU only, without the NVIDIA image.
 */
export function instanceSelectionFor(spec: Pick<Spec, 'gpu' | 'gpuInstanceFamilies'>): {
  instanceTypes: string[];
  ec2Configuration: Ec2Configuration[];
} {
  const gpuFamilies = spec.gpu ? (spec.gpuInstanceFamilies ?? settings.gpuInstanceFamilies()) : [];
  return {
    instanceTypes: ['optimal', ...gpuFamilies],
    ec2Configuration: [{ imageType: 'ECS_AL2023' }, ...(gpuFamilies.length > 0 ? [{ imageType: 'ECS_AL2023_NVIDIA' }] : [])],
  };
}

/** "Already exists": the emulator says InvalidParameterValue "...already exists...", AWS a ClientException "Object already exists". */
const ALREADY_EXISTS = /already exists/i;
/** "Not there": both say "... does not exist" (AWS sometimes "not found"). */
const DOES_NOT_EXIST = /does not exist|not found|could not find/i;

/**
 * How AWS words "that role or instance profile is unknown or unusable", in a refused CreateComputeEnvironment
 * and in the statusReason of a compute environment gone INVALID. On a fresh role or profile that is IAM's
 * eventual consistency (DESIGN §6); the texts are quoted in test/unit/steps/iam-propagation.test.ts with
 * their sources. Nothing here names subnets, security groups or launch templates: those are not IAM's.
 */
const IAM_PROPAGATION_REASONS = [
  // "CLIENT_ERROR - Invalid IamInstanceProfile: ecsInstanceRole"; "Invalid instance profile".
  /\binvalid\s+(iam\s*)?instance\s*profile/i,
  // EC2's "Value (x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name".
  /\biamInstanceProfile\.(name|arn)\b[^.]*\bis invalid/i,
  // "Instance profile arn:... does not exist", "The role with name x cannot be found", "... is not valid".
  /\b(instance[ -]?profile|instance ?role|service ?role|role)\b[^.]*\b(not found|could not be found|cannot be found|could not find|does not exist|is not valid|invalid|not authorized)\b/i,
  // The emulator's "could not find instanceRole arn:..."; "Unable to assume role".
  /\b(could not find|unable to assume|cannot assume|invalid)\b[^.]*\b(instance[ -]?profile|instance ?role|service ?role|role)\b/i,
  // "User: batch.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: arn:...:role/x";
  // "... is not authorized to perform: iam:PassRole on resource: ...".
  /\bnot authorized to perform:?\s*(iam:PassRole|sts:AssumeRole)\b/i,
];

/** True when an AWS Batch text (an error message or a statusReason) says a role or instance profile is not usable. */
export function isIamPropagationReason(text: string | undefined): boolean {
  return text !== undefined && IAM_PROPAGATION_REASONS.some((pattern) => pattern.test(text));
}

/**
 * On AWS a role or instance profile made a moment ago may not be visible to Batch yet: that is worth a
 * retry (the ASL retries TransientError), not a rollback.
 */
export function isIamPropagationDelay(error: unknown): boolean {
  if (!hasErrorCode(error, 'ClientException', 'InvalidParameterValue')) return false;
  return isIamPropagationReason(messageOf(error));
}

/**
 * Where the compute environment's instances go: the environment's own subnets (network isolation, made by
 * createSubnets), else the shared ones.
 */
async function subnetsOf(environmentName: string): Promise<string[]> {
  if (!settings.networkIsolation()) return settings.subnetIds();
  const own = (await environmentSubnets(environmentName)).map((subnet) => subnet.SubnetId!).filter(Boolean);
  if (own.length === 0) throw new TransientError(`The subnets of "${environmentName}" are not visible yet.`);
  return own.sort();
}

function context(environment: WorkflowEnvironment) {
  const deployment = currentDeployment();
  // The compute environment in force may be one an update made in place of the first (naming.namesFor).
  return { names: namesFor(deployment, environment.name, environment.computeEnvironmentRevision), tags: tagsFor(deployment, environment.name, environment.owner) };
}

/** What a step needs to know of a compute environment or a job queue, whose rules on AWS are the same. */
interface BatchResourceDetail {
  status?: string;
  state?: string;
  statusReason?: string;
  tags?: Record<string, string>;
}

/**
 * The two Batch resources of an environment, by kind: how each is named, described, switched on or off and
 * deleted. Disabling, deleting, polling and reusing an existing one then follow the same rules for both.
 */
interface BatchResourceKind {
  /** For log lines: "compute environment" or "job queue". */
  noun: string;
  nameOf(names: EnvironmentNames): string;
  describe(name: string): Promise<BatchResourceDetail | undefined>;
  sendState(name: string, state: 'ENABLED' | 'DISABLED'): Promise<unknown>;
  sendDelete(name: string): Promise<unknown>;
}

const COMPUTE_ENVIRONMENT: BatchResourceKind = {
  noun: 'compute environment',
  nameOf: (names) => names.computeEnvironmentName,
  describe: async (name) => {
    const { computeEnvironments = [] } = await batchClient().send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [name] }));
    return computeEnvironments.find((candidate) => candidate.computeEnvironmentName === name && candidate.status !== 'DELETED');
  },
  sendState: (name, state) => batchClient().send(new UpdateComputeEnvironmentCommand({ computeEnvironment: name, state })),
  sendDelete: (name) => batchClient().send(new DeleteComputeEnvironmentCommand({ computeEnvironment: name })),
};

const JOB_QUEUE: BatchResourceKind = {
  noun: 'job queue',
  nameOf: (names) => names.jobQueueName,
  describe: async (name) => {
    const { jobQueues = [] } = await batchClient().send(new DescribeJobQueuesCommand({ jobQueues: [name] }));
    return jobQueues.find((candidate) => candidate.jobQueueName === name && candidate.status !== 'DELETED');
  },
  sendState: (name, state) => batchClient().send(new UpdateJobQueueCommand({ jobQueue: name, state })),
  sendDelete: (name) => batchClient().send(new DeleteJobQueueCommand({ jobQueue: name })),
};

/** `The compute environment "mfenv-alice"`: the subject of every message about one resource. */
const describedAs = (kind: BatchResourceKind, name: string) => `The ${kind.noun} "${name}"`;

/** AWS refuses to change a compute environment or queue while an earlier change is in progress. */
function assertNotChanging(what: string, detail: BatchResourceDetail): void {
  if (detail.status === 'CREATING' || detail.status === 'UPDATING') {
    throw new TransientError(`${what} is ${detail.status} right now; trying again once it has settled.`);
  }
}

/** Switches a resource on or off; false when it no longer exists. */
async function setState(kind: BatchResourceKind, name: string, state: 'ENABLED' | 'DISABLED'): Promise<boolean> {
  try {
    await kind.sendState(name, state);
    return true;
  } catch (error) {
    if (isClientErrorSaying(error, DOES_NOT_EXIST)) return false;
    throw error;
  }
}

/**
 * After "already exists": the existing resource must be ours and not being deleted; a DISABLED one (left
 * by an interrupted teardown) is brought back to ENABLED.
 */
async function reuseExisting(kind: BatchResourceKind, environment: WorkflowEnvironment): Promise<void> {
  const name = kind.nameOf(context(environment).names);
  const what = describedAs(kind, name);
  const existing = await kind.describe(name);
  if (!existing) throw new TransientError(`${what} is being created or deleted right now.`);
  assertOurs(what, existing.tags, environment.name);
  if (existing.status === 'DELETING') {
    throw new TransientError(`${what} is still being deleted by an earlier teardown; creating it again once it is gone.`);
  }
  if (existing.state === 'DISABLED') {
    assertNotChanging(what, existing);
    await setState(kind, name, 'ENABLED');
  }
}

function untilOf(input: StepInput): NonNullable<StepInput['until']> {
  if (!input.until) throw new ValidationError(`The step "${input.step}" needs "until" (VALID, DISABLED or GONE).`);
  return input.until;
}

/**
 * One check of the state a provision or teardown waits for, shared by compute environments and queues:
 * VALID = usable (INVALID fails at once with AWS's reason); DISABLED = disabled and no change in progress;
 * GONE = no longer described. A resource that is not ours is nothing to wait for while tearing down.
 */
export function hasSettled(
  until: NonNullable<StepInput['until']>,
  what: string,
  detail: BatchResourceDetail | undefined,
  environmentName: string,
): boolean {
  if (until === 'VALID') {
    if (!detail) throw new ResourceFailedError(`${what} disappeared while it was being created.`);
    assertOurs(what, detail.tags, environmentName);
    if (detail.status === 'INVALID') {
      throw new ResourceFailedError(
        `${what} is INVALID according to AWS Batch: ${trimSentence(detail.statusReason ?? 'no reason given')}. ` +
          `Check the deployment's subnets, security group and service role, then DELETE the environment and create it again.`,
      );
    }
    return detail.status === 'VALID' && detail.state === 'ENABLED';
  }
  // A resource that is gone, or not ours, is nothing this environment has to wait for.
  if (!detail || !isOurs(detail.tags, environmentName)) return true;
  if (until === 'DISABLED') return detail.state === 'DISABLED' && detail.status !== 'UPDATING' && detail.status !== 'CREATING';
  return false;
}

/**
 * The compute environment's poll. Waiting for VALID, an INVALID one whose reason reads like IAM's eventual
 * consistency (isIamPropagationReason: the instance profile or a role not usable yet) answers `recreate`,
 * which the provision ASL routes to disabling, deleting and creating it again, once: Batch does not
 * re-validate an INVALID compute environment by itself, and by then IAM has caught up. The second wait is
 * told so (`computeEnvironmentRecreated`), and an INVALID then fails the create, saying it was re-created.
 * Any other INVALID fails at once (hasSettled). Every answer carries `recreate`, which the ASL selects.
 */
async function pollComputeEnvironment(input: StepInput) {
  const until = untilOf(input);
  const name = COMPUTE_ENVIRONMENT.nameOf(context(input.environment).names);
  const what = describedAs(COMPUTE_ENVIRONMENT, name);
  if (input.everyComputeEnvironment && until !== 'VALID') {
    // The teardown's waits: for every compute environment its disable and delete steps act on.
    const found = await computeEnvironmentsToRemove(input.environment);
    const done = found.every((ce) => hasSettled(until, describedAs(COMPUTE_ENVIRONMENT, ce.name), ce.detail, input.environment.name));
    logger.info('compute environments checked', { until, done, names: found.map((ce) => ce.name) });
    return { ...nextPoll(input.poll, done, what), recreate: false };
  }
  const detail = await COMPUTE_ENVIRONMENT.describe(name);
  if (until === 'VALID' && detail?.status === 'INVALID' && isOurs(detail.tags, input.environment.name)) {
    const reason = trimSentence(detail.statusReason ?? 'no reason given');
    if (input.computeEnvironmentRecreated) {
      throw new ResourceFailedError(
        `${what} went INVALID again after it was deleted and re-created once: ${reason}. ` +
          `Check the deployment's instance role permissions, subnets, security group and service role, then DELETE the environment and create it again.`,
      );
    }
    if (isIamPropagationReason(detail.statusReason)) {
      logger.warn('compute environment INVALID for a role or instance profile; re-creating it once', { statusReason: detail.statusReason });
      return { ...nextPoll(input.poll, false, what), recreate: true };
    }
  }
  const done = hasSettled(until, what, detail, input.environment.name);
  logger.info('compute environment checked', { until, done, status: detail?.status, state: detail?.state });
  return { ...nextPoll(input.poll, done, what), recreate: false };
}

/**
 * The record must show the create this workflow runs (CREATING at its generation): the steps that reset an
 * INVALID compute environment are not DESTRUCTIVE_STEPS (there is no teardown to show), so they check this
 * instead, and a provision started with a wrong input resets nothing.
 */
async function assertCreateRecorded(environment: WorkflowEnvironment, what: string): Promise<void> {
  const record = await registry.getEnvironment(environment.name);
  if (record?.status === 'CREATING' && record.generation === environment.generation) return;
  throw new ValidationError(
    `${what} was left as it is: the registry shows "${environment.name}" ` +
      `${record ? `${record.status} at generation ${record.generation}` : 'nowhere'}, not CREATING at generation ${environment.generation}.`,
  );
}

/**
 * The compute environment a reset may touch: ours, and INVALID. Undefined when it is gone or not ours
 * (nothing to do). A VALID one is never disabled or deleted here: it fails the step instead, and the
 * rollback, a teardown the registry records, removes it if need be.
 */
async function invalidComputeEnvironmentOf(environment: WorkflowEnvironment): Promise<{ name: string; detail: BatchResourceDetail } | undefined> {
  const name = COMPUTE_ENVIRONMENT.nameOf(context(environment).names);
  const what = describedAs(COMPUTE_ENVIRONMENT, name);
  await assertCreateRecorded(environment, what);
  const detail = await COMPUTE_ENVIRONMENT.describe(name);
  if (!detail || !isOurs(detail.tags, environment.name)) return undefined;
  if (detail.status === 'DELETING') return { name, detail };
  assertNotChanging(what, detail);
  if (detail.status !== 'INVALID') {
    throw new ResourceFailedError(
      `${what} is ${detail.status ?? 'in an unknown status'}, not INVALID, so it was not reset; DELETE the environment and create it again.`,
    );
  }
  return { name, detail };
}

/** Re-create path, first step: disables our INVALID compute environment (AWS deletes only DISABLED ones). */
async function disableInvalidComputeEnvironment({ environment }: StepInput) {
  const found = await invalidComputeEnvironmentOf(environment);
  if (!found) return { disabled: false };
  if (found.detail.state === 'DISABLED' || found.detail.status === 'DELETING') return { disabled: true };
  return { disabled: await setState(COMPUTE_ENVIRONMENT, found.name, 'DISABLED') };
}

/** Re-create path, once it is DISABLED: deletes our INVALID compute environment, so it can be created anew. */
async function deleteInvalidComputeEnvironment({ environment }: StepInput) {
  const found = await invalidComputeEnvironmentOf(environment);
  if (!found) return { deleted: false };
  if (found.detail.status === 'DELETING') return { deleted: true };
  try {
    await COMPUTE_ENVIRONMENT.sendDelete(found.name);
  } catch (error) {
    if (isClientErrorSaying(error, DOES_NOT_EXIST)) return { deleted: false };
    throw error;
  }
  return { deleted: true };
}

/** A compute environment found by the teardown: its name and what Batch says of it. */
interface FoundComputeEnvironment {
  name: string;
  detail: BatchResourceDetail;
}

/**
 * Every compute environment a teardown removes: the one in force and any other of the environment's that is
 * still there and ours (`<name>` or `<name>_r<generation>`, naming.namesFor). An update whose workflow stopped
 * half-way (stopped by hand, timed out) can leave its replacement, or the one it was retiring, beside the one in
 * force; the DELETE that takes the environment over removes them too. The one in force is described by name, as
 * a listing may not show one created a moment ago (a rollback); the others come from one listing of the
 * region's compute environments (Batch allows 50, a page holds 100).
 */
async function computeEnvironmentsToRemove(environment: WorkflowEnvironment): Promise<FoundComputeEnvironment[]> {
  const inForce = COMPUTE_ENVIRONMENT.nameOf(context(environment).names);
  const base = namesFor(currentDeployment(), environment.name).computeEnvironmentName;
  const isIncarnation = (name: string) => name === base || (name.startsWith(`${base}_r`) && /^\d+$/.test(name.slice(base.length + 2)));
  const found: FoundComputeEnvironment[] = [];
  const inForceDetail = await COMPUTE_ENVIRONMENT.describe(inForce);
  if (inForceDetail && isOurs(inForceDetail.tags, environment.name)) found.push({ name: inForce, detail: inForceDetail });
  let nextToken: string | undefined;
  do {
    const page = await batchClient().send(new DescribeComputeEnvironmentsCommand({ maxResults: 100, nextToken }));
    for (const candidate of page.computeEnvironments ?? []) {
      const name = candidate.computeEnvironmentName;
      if (!name || name === inForce || !isIncarnation(name) || candidate.status === 'DELETED') continue;
      if (isOurs(candidate.tags, environment.name)) found.push({ name, detail: candidate });
    }
    nextToken = page.nextToken;
  } while (nextToken);
  if (found.length > 1) logger.warn('compute environments besides the one in force, left by an interrupted update', { names: found.map((ce) => ce.name) });
  return found;
}

/** Teardown: disables every compute environment of the environment (AWS deletes only DISABLED ones). */
async function disableComputeEnvironment({ environment }: StepInput) {
  const found = await computeEnvironmentsToRemove(environment);
  let disabled = false;
  for (const { name, detail } of found) {
    if (detail.state === 'DISABLED' || detail.status === 'DELETING') {
      disabled = true;
      continue;
    }
    assertNotChanging(describedAs(COMPUTE_ENVIRONMENT, name), detail);
    disabled = (await setState(COMPUTE_ENVIRONMENT, name, 'DISABLED')) || disabled;
  }
  return { disabled };
}

/** Teardown, once they are DISABLED: deletes every compute environment of the environment. */
async function deleteComputeEnvironment({ environment }: StepInput) {
  const found = await computeEnvironmentsToRemove(environment);
  let deleted = false;
  for (const { name, detail } of found) {
    if (detail.status === 'DELETING') {
      deleted = true;
      continue;
    }
    assertNotChanging(describedAs(COMPUTE_ENVIRONMENT, name), detail);
    try {
      await COMPUTE_ENVIRONMENT.sendDelete(name);
      deleted = true;
    } catch (error) {
      if (!isClientErrorSaying(error, DOES_NOT_EXIST)) throw error;
    }
  }
  return { deleted };
}

async function poll(kind: BatchResourceKind, input: StepInput) {
  const until = untilOf(input);
  const name = kind.nameOf(context(input.environment).names);
  const what = describedAs(kind, name);
  const detail = await kind.describe(name);
  const done = hasSettled(until, what, detail, input.environment.name);
  logger.info(`${kind.noun} checked`, { until, done, status: detail?.status, state: detail?.state });
  return nextPoll(input.poll, done, what);
}

/** Disables a resource of ours (AWS deletes only DISABLED ones); one that is gone or not ours is left alone. */
async function disable(kind: BatchResourceKind, environment: WorkflowEnvironment) {
  const name = kind.nameOf(context(environment).names);
  const existing = await kind.describe(name);
  if (!existing || !isOurs(existing.tags, environment.name)) return { disabled: false };
  if (existing.state === 'DISABLED') return { disabled: true };
  assertNotChanging(describedAs(kind, name), existing);
  return { disabled: await setState(kind, name, 'DISABLED') };
}

/** Deletes a resource of ours; one that is gone, already being deleted, or not ours is left alone. */
async function remove(kind: BatchResourceKind, environment: WorkflowEnvironment) {
  const name = kind.nameOf(context(environment).names);
  const existing = await kind.describe(name);
  if (!existing || !isOurs(existing.tags, environment.name)) return { deleted: false };
  if (existing.status === 'DELETING') return { deleted: true };
  assertNotChanging(describedAs(kind, name), existing);
  try {
    await kind.sendDelete(name);
  } catch (error) {
    if (isClientErrorSaying(error, DOES_NOT_EXIST)) return { deleted: false };
    throw error;
  }
  return { deleted: true };
}

// ---- Compute environment ----

async function createComputeEnvironment({ environment }: StepInput) {
  const { names, tags } = context(environment);
  // The API checked the ceiling; a workflow input that went past it (a bug, a hand-started execution) must
  // not buy more capacity than the deployment allows.
  const ceiling = settings.maxVcpusCeiling();
  if (environment.spec.maxVcpus > ceiling) {
    throw new ValidationError(
      `The environment "${environment.name}" asks for ${environment.spec.maxVcpus} vCPUs, over this deployment's ceiling of ${ceiling}; nothing was created.`,
    );
  }
  const { instanceTypes, ec2Configuration } = instanceSelectionFor(environment.spec);
  const subnets = await subnetsOf(environment.name);
  const launchTemplateId = settings.launchTemplateId();
  try {
    await batchClient().send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: names.computeEnvironmentName,
        type: 'MANAGED',
        state: 'ENABLED',
        // Left out when not configured (the SDK sends no undefined member): Batch then uses its service-linked
        // role, creating it on first use, whereas naming that role fails while it does not exist yet.
        serviceRole: settings.batchServiceRoleArn(),
        computeResources: {
          type: 'SPOT',
          allocationStrategy: settings.spotAllocationStrategy(),
          // Nothing runs, and nothing is billed, while no job is queued.
          minvCpus: 0,
          maxvCpus: environment.spec.maxVcpus,
          instanceTypes,
          subnets,
          securityGroupIds: [settings.securityGroupId()],
          instanceRole: names.instanceProfileArn,
          ec2Configuration,
          // IMDSv2 only (the bootstrap stack's launch template); its default version, so the stack can update it.
          ...(launchTemplateId ? { launchTemplate: { launchTemplateId, version: '$Default' } } : {}),
          // Tags of the EC2 instances Batch launches: their cost lands on this environment.
          tags,
        },
        tags,
      }),
    );
    return { computeEnvironmentArn: names.computeEnvironmentArn, created: true };
  } catch (error) {
    if (isIamPropagationDelay(error)) {
      throw new TransientError(`Batch cannot see the new roles of "${environment.name}" yet: ${messageOf(error)}`, { cause: error });
    }
    if (!isClientErrorSaying(error, ALREADY_EXISTS)) throw error;
  }
  await reuseExisting(COMPUTE_ENVIRONMENT, environment);
  return { computeEnvironmentArn: names.computeEnvironmentArn, created: false };
}

// ---- Job queue ----

/**
 * A job AWS Batch reports blocked at the head of the queue is cancelled instead of holding every job behind it
 * RUNNABLE forever; Metaflow then shows the job's statusReason, "Canceled by JobStateTimeLimit action due to
 * reason: <reason>". `reason` must be one of the blocked reasons Batch infers (it is matched against the job's
 * statusReason). A job that asks for more than any instance or the compute environment's maxvCpus never
 * starts, so it goes at Batch's minimum, 10 minutes; missing Spot capacity may come back, so it gets 30.
 */
export const JOB_STATE_TIME_LIMIT_ACTIONS = [
  { reason: 'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT', maxTimeSeconds: 600 },
  { reason: 'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE', maxTimeSeconds: 600 },
  { reason: 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY', maxTimeSeconds: 1800 },
].map((limit) => ({ ...limit, state: 'RUNNABLE' as const, action: 'CANCEL' as const }));

/** Batch refusing to change a queue while an earlier change is still being applied. */
const QUEUE_BUSY = /UPDATING|being updated|in progress/i;

async function createJobQueue({ environment }: StepInput) {
  const { names, tags } = context(environment);
  try {
    await batchClient().send(
      new CreateJobQueueCommand({
        jobQueueName: names.jobQueueName,
        state: 'ENABLED',
        priority: 1,
        // By ARN: the emulator accepts nothing else, AWS accepts both.
        computeEnvironmentOrder: [{ order: 1, computeEnvironment: names.computeEnvironmentArn }],
        jobStateTimeLimitActions: JOB_STATE_TIME_LIMIT_ACTIONS,
        tags,
      }),
    );
    return { jobQueueArn: names.jobQueueArn, created: true };
  } catch (error) {
    if (!isClientErrorSaying(error, ALREADY_EXISTS)) throw error;
  }
  await reuseExisting(JOB_QUEUE, environment);
  // A queue of ours made before these limits existed (or by an interrupted run) gets them too.
  try {
    await batchClient().send(new UpdateJobQueueCommand({ jobQueue: names.jobQueueName, jobStateTimeLimitActions: JOB_STATE_TIME_LIMIT_ACTIONS }));
  } catch (error) {
    if (isClientErrorSaying(error, QUEUE_BUSY)) {
      throw new TransientError(`The job queue "${names.jobQueueName}" is still applying an earlier change: ${messageOf(error)}`, { cause: error });
    }
    throw error;
  }
  return { jobQueueArn: names.jobQueueArn, created: false };
}

export const steps: StepTable<'batch'> = {
  createComputeEnvironment,
  pollComputeEnvironment,
  disableComputeEnvironment,
  deleteComputeEnvironment,
  disableInvalidComputeEnvironment,
  deleteInvalidComputeEnvironment,
  createJobQueue,
  pollJobQueue: (input) => poll(JOB_QUEUE, input),
  disableJobQueue: ({ environment }) => disable(JOB_QUEUE, environment),
  deleteJobQueue: ({ environment }) => remove(JOB_QUEUE, environment),
  planUpdate,
  updateComputeEnvironment,
  pollComputeEnvironmentSettled,
  restoreComputeEnvironment,
  switchJobQueue,
  restoreJobQueue,
  disableRetiredComputeEnvironment,
  deleteRetiredComputeEnvironment,
};

export const handler = stepHandler('batch', steps);

// ---- Update: PATCH /environments/{name} (statemachine/update.asl.json, DESIGN §6) ----

/**
 * Allocation strategies under which AWS Batch changes instance types in place (an "infrastructure update");
 * it also needs the compute environment to use Batch's service-linked role. Otherwise a change of instance
 * types is a blue/green one: a replacement compute environment, the queue moved to it, the old one deleted.
 * https://docs.aws.amazon.com/batch/latest/userguide/infrastructure-updates.html
 */
export const IN_PLACE_ALLOCATION_STRATEGIES: readonly string[] = ['BEST_FIT_PROGRESSIVE', 'SPOT_CAPACITY_OPTIMIZED', 'SPOT_PRICE_CAPACITY_OPTIMIZED'];
/** The service-linked role, as a compute environment that names no service role reports it. */
const SERVICE_LINKED_ROLE = /:role\/aws-service-role\/batch\.amazonaws\.com\//;

/** What a compute environment of ours holds that an update compares or changes. */
interface ComputeEnvironmentState {
  name: string;
  arn: string | undefined;
  status?: string;
  state?: string;
  serviceRole?: string;
  allocationStrategy?: string;
  maxvCpus?: number;
  instanceTypes: string[];
  tags?: Record<string, string>;
}

async function computeEnvironmentState(name: string): Promise<ComputeEnvironmentState | undefined> {
  const { computeEnvironments = [] } = await batchClient().send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [name] }));
  const found = computeEnvironments.find((candidate) => candidate.computeEnvironmentName === name && candidate.status !== 'DELETED');
  if (!found) return undefined;
  return {
    name,
    arn: found.computeEnvironmentArn,
    status: found.status,
    state: found.state,
    serviceRole: found.serviceRole,
    allocationStrategy: found.computeResources?.allocationStrategy,
    maxvCpus: found.computeResources?.maxvCpus,
    instanceTypes: found.computeResources?.instanceTypes ?? [],
    tags: found.tags,
  };
}

const sameTypes = (a: readonly string[], b: readonly string[]) => [...a].sort().join(',') === [...b].sort().join(',');

/** The names of the update's two compute environments: the one in force when it began, and its replacement. */
function updateNames(environment: WorkflowEnvironment, previousRevision: number | undefined) {
  const deployment = currentDeployment();
  return {
    previous: namesFor(deployment, environment.name, previousRevision),
    // The replacement is named after the update's generation: a retried step finds the same one.
    replacement: namesFor(deployment, environment.name, environment.generation),
  };
}

/** The compute environment in force (the record's), which must exist and be ours. */
async function computeEnvironmentInForce(environment: WorkflowEnvironment, revision: number | undefined): Promise<ComputeEnvironmentState> {
  const { previous } = updateNames(environment, revision);
  const what = describedAs(COMPUTE_ENVIRONMENT, previous.computeEnvironmentName);
  const current = await computeEnvironmentState(previous.computeEnvironmentName);
  if (!current) {
    throw new ResourceFailedError(`${what} no longer exists, so it cannot be resized; DELETE the environment and create it again.`);
  }
  assertOurs(what, current.tags, environment.name);
  return current;
}

/** The ceiling is checked again where capacity is bought, whatever the workflow's input says. */
function assertUnderCeiling(environment: WorkflowEnvironment): void {
  const ceiling = settings.maxVcpusCeiling();
  if (environment.spec.maxVcpus > ceiling) {
    throw new ValidationError(
      `The environment "${environment.name}" asks for ${environment.spec.maxVcpus} vCPUs, over this deployment's ceiling of ${ceiling}; nothing was changed.`,
    );
  }
}

/**
 * First step of an update: checks the record shows it (UPDATING at its generation, with its spec) and decides
 * what it takes. `compute`: "none" (maxVcpus and instance types unchanged), "inPlace" (UpdateComputeEnvironment:
 * maxvCpus always; instance types where AWS allows, see IN_PLACE_ALLOCATION_STRATEGIES) or "recreate".
 * `scheduling`: "add", "remove" or "none". `previous` and `replacement` are the workflow's environment naming
 * each compute environment, and `inForce` the one that will be the environment's when the update succeeds.
 */
async function planUpdate({ environment }: StepInput) {
  const record = await assertUpdateRecorded(environment, `The compute environment of "${environment.name}"`);
  assertUnderCeiling(environment);
  const previousSpec = record.spec;
  const current = await computeEnvironmentInForce(environment, record.computeEnvironmentRevision);
  const wanted = instanceSelectionFor(environment.spec);
  const typesChange = !sameTypes(current.instanceTypes, wanted.instanceTypes) || previousSpec.gpu !== environment.spec.gpu;
  const vcpusChange = current.maxvCpus !== environment.spec.maxVcpus || previousSpec.maxVcpus !== environment.spec.maxVcpus;
  const inPlaceAllowed =
    (!current.serviceRole || SERVICE_LINKED_ROLE.test(current.serviceRole)) &&
    IN_PLACE_ALLOCATION_STRATEGIES.includes(current.allocationStrategy ?? '');
  const compute = typesChange ? (inPlaceAllowed ? 'inPlace' : 'recreate') : vcpusChange ? 'inPlace' : 'none';
  const before = previousSpec.scheduling ?? false;
  const after = environment.spec.scheduling ?? false;
  const scheduling = before === after ? 'none' : after ? 'add' : 'remove';
  const previous = { ...environment, computeEnvironmentRevision: record.computeEnvironmentRevision };
  const replacement = { ...environment, computeEnvironmentRevision: environment.generation };
  logger.info('update planned', { compute, scheduling, serviceRole: current.serviceRole, allocationStrategy: current.allocationStrategy });
  return { compute, scheduling, previous, replacement, inForce: compute === 'recreate' ? replacement : previous };
}

/** Batch refusing to change a compute environment or queue while an earlier change is still being applied. */
const BUSY = /UPDATING|being updated|in progress|not in a valid state/i;

async function sendComputeUpdate(name: string, spec: Spec, withTypes: boolean): Promise<void> {
  const { instanceTypes, ec2Configuration } = instanceSelectionFor(spec);
  try {
    await batchClient().send(
      new UpdateComputeEnvironmentCommand({
        computeEnvironment: name,
        computeResources: { maxvCpus: spec.maxVcpus, ...(withTypes ? { instanceTypes, ec2Configuration } : {}) },
      }),
    );
  } catch (error) {
    if (isClientErrorSaying(error, BUSY)) {
      throw new TransientError(`The compute environment "${name}" is still applying an earlier change: ${messageOf(error)}`, { cause: error });
    }
    throw error;
  }
}

/** In place: maxvCpus, and the instance types when they change (only where planUpdate found AWS allows it). */
async function updateComputeEnvironment({ environment }: StepInput) {
  const record = await assertUpdateRecorded(environment, `The compute environment of "${environment.name}"`);
  assertUnderCeiling(environment);
  const current = await computeEnvironmentInForce(environment, record.computeEnvironmentRevision);
  assertNotChanging(describedAs(COMPUTE_ENVIRONMENT, current.name), current);
  const withTypes = !sameTypes(current.instanceTypes, instanceSelectionFor(environment.spec).instanceTypes);
  if (!withTypes && current.maxvCpus === environment.spec.maxVcpus) return { updated: false };
  await sendComputeUpdate(current.name, environment.spec, withTypes);
  return { updated: true, instanceTypesChanged: withTypes };
}

/** Undoing an in-place update: the compute environment in force gets the recorded spec back. */
async function restoreComputeEnvironment({ environment }: StepInput) {
  const record = await assertUpdateRecorded(environment, `The compute environment of "${environment.name}"`);
  const current = await computeEnvironmentInForce(environment, record.computeEnvironmentRevision);
  assertNotChanging(describedAs(COMPUTE_ENVIRONMENT, current.name), current);
  const withTypes = !sameTypes(current.instanceTypes, instanceSelectionFor(record.spec).instanceTypes);
  if (!withTypes && current.maxvCpus === record.spec.maxVcpus) return { restored: false };
  await sendComputeUpdate(current.name, record.spec, withTypes);
  return { restored: true };
}

/**
 * One check of an in-place change that may have failed: settled once AWS is no longer applying a change,
 * VALID or INVALID (an INVALID one can still be given its old settings back).
 */
async function pollComputeEnvironmentSettled(input: StepInput) {
  const name = COMPUTE_ENVIRONMENT.nameOf(context(input.environment).names);
  const detail = await COMPUTE_ENVIRONMENT.describe(name);
  const done = !detail || (detail.status !== 'CREATING' && detail.status !== 'UPDATING');
  return nextPoll(input.poll, done, describedAs(COMPUTE_ENVIRONMENT, name));
}

/** The environment's queue, which must exist and be ours; with the compute environments it sends jobs to. */
async function queueOf(environment: WorkflowEnvironment) {
  const name = JOB_QUEUE.nameOf(context(environment).names);
  const what = describedAs(JOB_QUEUE, name);
  const { jobQueues = [] } = await batchClient().send(new DescribeJobQueuesCommand({ jobQueues: [name] }));
  const queue = jobQueues.find((candidate) => candidate.jobQueueName === name && candidate.status !== 'DELETED');
  if (!queue) throw new ResourceFailedError(`${what} no longer exists; DELETE the environment and create it again.`);
  assertOurs(what, queue.tags, environment.name);
  return { name, what, queue, computeEnvironmentArns: (queue.computeEnvironmentOrder ?? []).map((entry) => entry.computeEnvironment ?? '') };
}

/** Points the queue at one compute environment (by ARN, as the emulator needs), unless it already is. */
async function pointQueueAt(environment: WorkflowEnvironment, target: ComputeEnvironmentState): Promise<boolean> {
  const { name, queue, computeEnvironmentArns } = await queueOf(environment);
  if (computeEnvironmentArns.length === 1 && computeEnvironmentArns[0] === target.arn) return false;
  assertNotChanging(describedAs(JOB_QUEUE, name), queue);
  try {
    await batchClient().send(new UpdateJobQueueCommand({ jobQueue: name, computeEnvironmentOrder: [{ order: 1, computeEnvironment: target.arn }] }));
  } catch (error) {
    if (isClientErrorSaying(error, BUSY)) {
      throw new TransientError(`The job queue "${name}" is still applying an earlier change: ${messageOf(error)}`, { cause: error });
    }
    throw error;
  }
  return true;
}

/** A compute environment the queue may be pointed at: ours, VALID and ENABLED (else worth another try). */
async function usableComputeEnvironment(environment: WorkflowEnvironment, name: string): Promise<ComputeEnvironmentState> {
  const what = describedAs(COMPUTE_ENVIRONMENT, name);
  const detail = await computeEnvironmentState(name);
  if (!detail) throw new ResourceFailedError(`${what} does not exist, so the job queue cannot use it.`);
  assertOurs(what, detail.tags, environment.name);
  if (detail.status !== 'VALID' || detail.state !== 'ENABLED') throw new TransientError(`${what} is ${detail.status} and ${detail.state}, not yet usable.`);
  return detail;
}

/** Re-create, once the replacement is VALID: the queue sends its jobs there (it keeps its name and ARN). */
async function switchJobQueue({ environment }: StepInput) {
  const record = await assertUpdateRecorded(environment, `The job queue of "${environment.name}"`);
  const { replacement } = updateNames(environment, record.computeEnvironmentRevision);
  const target = await usableComputeEnvironment(environment, replacement.computeEnvironmentName);
  return { switched: await pointQueueAt(environment, target), computeEnvironmentArn: target.arn };
}

/** Undoing a re-create: the compute environment in force is enabled again if need be, and the queue sent back to it. */
async function restoreJobQueue({ environment }: StepInput) {
  const record = await assertUpdateRecorded(environment, `The job queue of "${environment.name}"`);
  const { previous } = updateNames(environment, record.computeEnvironmentRevision);
  const current = await computeEnvironmentInForce(environment, record.computeEnvironmentRevision);
  if (current.state === 'DISABLED') {
    assertNotChanging(describedAs(COMPUTE_ENVIRONMENT, current.name), current);
    await setState(COMPUTE_ENVIRONMENT, current.name, 'ENABLED');
  }
  const target = await usableComputeEnvironment(environment, previous.computeEnvironmentName);
  return { restored: await pointQueueAt(environment, target), computeEnvironmentArn: target.arn };
}

/**
 * The compute environment an update retires: "previous" once the queue uses the replacement, "replacement"
 * when undoing. Both names come from the record (its revision, and the update's generation), never from the
 * input's revision; the teardown guard has checked the record shows this update. A compute environment the
 * queue still sends jobs to, or a queue left with no other, is never touched: the queue is never lost.
 */
async function retiredComputeEnvironment(input: StepInput): Promise<ComputeEnvironmentState | undefined> {
  const { environment } = input;
  if (!input.computeEnvironment) throw new ValidationError(`The step "${input.step}" needs "computeEnvironment" (previous or replacement).`);
  const record = await assertUpdateRecorded(environment, `The compute environment of "${environment.name}"`);
  const names = updateNames(environment, record.computeEnvironmentRevision)[input.computeEnvironment];
  const detail = await computeEnvironmentState(names.computeEnvironmentName);
  if (!detail || !isOurs(detail.tags, environment.name)) return undefined;
  const { what, computeEnvironmentArns } = await queueOf(environment);
  if (computeEnvironmentArns.includes(detail.arn ?? '') || computeEnvironmentArns.length === 0) {
    throw new ResourceFailedError(
      `The compute environment "${detail.name}" was left as it is: ${what} ${computeEnvironmentArns.length === 0 ? 'has no other compute environment' : 'still sends jobs to it'}.`,
    );
  }
  return detail;
}

async function disableRetiredComputeEnvironment(input: StepInput) {
  const retired = await retiredComputeEnvironment(input);
  if (!retired) return { disabled: false };
  if (retired.state === 'DISABLED' || retired.status === 'DELETING') return { disabled: true };
  assertNotChanging(describedAs(COMPUTE_ENVIRONMENT, retired.name), retired);
  return { disabled: await setState(COMPUTE_ENVIRONMENT, retired.name, 'DISABLED') };
}

async function deleteRetiredComputeEnvironment(input: StepInput) {
  const retired = await retiredComputeEnvironment(input);
  if (!retired) return { deleted: false };
  if (retired.status === 'DELETING') return { deleted: true };
  assertNotChanging(describedAs(COMPUTE_ENVIRONMENT, retired.name), retired);
  try {
    await COMPUTE_ENVIRONMENT.sendDelete(retired.name);
  } catch (error) {
    if (isClientErrorSaying(error, DOES_NOT_EXIST)) return { deleted: false };
    throw error;
  }
  return { deleted: true };
}
