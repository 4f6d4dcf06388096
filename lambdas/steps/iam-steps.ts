/**
 * IAM steps: the job role (what a Metaflow task in Batch may do), the instance role and its instance
 * profile (the ECS agent on a Batch instance), and the access role (what the owner assumes to run the
 * Metaflow client).
 * Every role carries the deployment's permissions boundary; every resource is tagged and lives under the
 * `/<prefix>/` path. Creating re-asserts what matters on an existing resource of ours; deleting detaches
 * first (AWS refuses otherwise) and treats NoSuchEntity as "already gone".
 *
 * IAM is eventually consistent (DESIGN §6): a role or profile created a moment ago may be unknown to the
 * next call, or to another service. So while creating, NoSuchEntity on what was just made is a
 * TransientError (the Task retries it: ./roles.ts), and the provision workflow waits for the instance profile
 * to be seen with its role several checks in a row (pollInstanceProfile) before Batch is told to use it.
 */
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  DeleteInstanceProfileCommand,
  DetachRolePolicyCommand,
  GetInstanceProfileCommand,
  type InstanceProfile,
  ListAttachedRolePoliciesCommand,
  ListInstanceProfilesForRoleCommand,
  RemoveRoleFromInstanceProfileCommand,
} from '@aws-sdk/client-iam';
import { DescribeComputeEnvironmentsCommand } from '@aws-sdk/client-batch';
import { batchClient, iamClient } from '../core/clients';
import type { WorkflowEnvironment } from '../core/environment';
import { ResourceConflictError, TransientError } from '../core/errors';
import { logger } from '../core/logger';
import { namesFor, roleTagListFor } from '../core/naming';
import {
  accessRolePolicy,
  accessRoleTrustPolicy,
  batchJobLogGroupArn,
  instanceRolePolicy,
  instanceRoleTrustPolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
} from '../core/policies';
import { currentDeployment, settings } from '../core/settings';
import { hasErrorCode } from './aws-errors';
import { assertOurs, isOurs } from './ownership';
import { deleteInlinePoliciesAndRole, ensureRole, isGone, ownRoleToDelete, putRolePolicy, unlessGone } from './roles';
import { type StepInput, type StepTable, nextPoll, stepHandler } from './step';

/** Name of the job role's inline policy (its own bucket, nothing else). */
export const JOB_ROLE_INLINE_POLICY = 'own-bucket-access';

function context(environment: WorkflowEnvironment) {
  const deployment = currentDeployment();
  return {
    // scopeInstanceRole reads the cluster of the compute environment in force, perhaps an update's replacement.
    names: namesFor(deployment, environment.name, environment.computeEnvironmentRevision),
    // Roles carry the bucket tag too: the boundary scopes each role to its own environment by its tags.
    tags: roleTagListFor(deployment, environment.name, environment.owner),
    // In the deployment's partition, as every other ARN these roles' policies name.
    logGroupArn: batchJobLogGroupArn(deployment.region, deployment.accountId, deployment.partition),
  };
}

async function createJobRole({ environment }: StepInput) {
  const { names, tags } = context(environment);
  await ensureRole(environment, {
    name: names.jobRoleName,
    path: names.iamPath,
    trust: jobRoleTrustPolicy(settings.accountId()),
    description: `Metaflow tasks of the mfenv environment ${environment.name}: its own bucket only.`,
    tags,
  });
  await putRolePolicy(names.jobRoleName, JOB_ROLE_INLINE_POLICY, jobRolePolicy(names));
  return { jobRoleArn: names.jobRoleArn };
}

const getInstanceProfile = (name: string): Promise<InstanceProfile | undefined> =>
  unlessGone(async () => (await iamClient().send(new GetInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile);

async function createInstanceRole({ environment }: StepInput) {
  const iam = iamClient();
  const { names, tags } = context(environment);
  await ensureRole(environment, {
    name: names.instanceRoleName,
    path: names.iamPath,
    trust: instanceRoleTrustPolicy(),
    description: `Batch container instances of the mfenv environment ${environment.name}.`,
    tags,
  });
  // No policy yet: what the ECS agent may do is written by scopeInstanceRole, once the cluster exists.

  try {
    await iam.send(
      new CreateInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, Path: names.iamPath, Tags: tags }),
    );
  } catch (error) {
    if (!hasErrorCode(error, 'EntityAlreadyExists')) throw error;
    const existing = await getInstanceProfile(names.instanceProfileName);
    if (!existing) throw new TransientError(`The instance profile "${names.instanceProfileName}" is being created or deleted right now.`);
    assertOurs(`The instance profile "${names.instanceProfileName}"`, existing.Tags, environment.name);
  }

  try {
    await iam.send(
      new AddRoleToInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, RoleName: names.instanceRoleName }),
    );
  } catch (error) {
    // IAM is eventually consistent: a role or profile made a moment ago may not be visible yet.
    if (isGone(error)) throw new TransientError(`The instance role or profile of "${environment.name}" is not visible to IAM yet.`);
    // A profile holds one role: "limit exceeded" means a role is in it already, which must be ours.
    if (!hasErrorCode(error, 'LimitExceeded')) throw error;
    const profile = await getInstanceProfile(names.instanceProfileName);
    const roleNames = (profile?.Roles ?? []).map((role) => role.RoleName);
    if (!roleNames.includes(names.instanceRoleName)) {
      throw new ResourceConflictError(
        `The instance profile "${names.instanceProfileName}" already holds the role ${roleNames.join(', ') || '(unknown)'} ` +
          `instead of "${names.instanceRoleName}". DELETE the environment "${environment.name}" and create it again.`,
      );
    }
  }
  return { instanceProfileArn: names.instanceProfileArn };
}

/**
 * How many checks in a row must see the instance profile holding its role before Batch is given it. One
 * sighting proves little: IAM reads may hit a replica the profile has reached while the one EC2 and Batch
 * ask has not. Terraform's AWS provider waits for 3 consecutive sightings of a new instance profile
 * (waitInstanceProfileReady, ContinuousTargetOccurence 3); so does this, a poll wait apart (3 s at first).
 */
export const INSTANCE_PROFILE_SIGHTINGS = 3;

/**
 * One check of the wait before CreateComputeEnvironment: the instance profile exists, is ours and holds the
 * instance role. Counts consecutive sightings in `$.poll.sightings`; a miss starts the count again. Done
 * after INSTANCE_PROFILE_SIGHTINGS; gives up like every poll (nextPoll) if the profile never settles.
 */
async function pollInstanceProfile({ environment, poll }: StepInput) {
  const { names } = context(environment);
  const what = `The instance profile "${names.instanceProfileName}"`;
  const profile = await getInstanceProfile(names.instanceProfileName);
  if (profile) assertOurs(what, profile.Tags, environment.name);
  const holdsRole = (profile?.Roles ?? []).some((role) => role.RoleName === names.instanceRoleName);
  const sightings = holdsRole ? (poll?.sightings ?? 0) + 1 : 0;
  logger.info('instance profile checked', { found: profile !== undefined, holdsRole, sightings });
  return { ...nextPoll(poll, sightings >= INSTANCE_PROFILE_SIGHTINGS, `${what} with the role "${names.instanceRoleName}"`), sightings };
}

/** Name of the instance role's inline policy: the ECS agent's work on the environment's own cluster. */
export const INSTANCE_ROLE_INLINE_POLICY = 'ecs-agent-own-cluster';

/**
 * Once the compute environment is VALID, Batch has made its ECS cluster: the instance role gets the ECS
 * agent's permissions on that cluster alone (policies.instanceRolePolicy), instead of AWS's managed policy
 * whose ECS actions reach every cluster of the account.
 */
async function scopeInstanceRole({ environment }: StepInput) {
  const { names, logGroupArn } = context(environment);
  const { computeEnvironments = [] } = await batchClient().send(
    new DescribeComputeEnvironmentsCommand({ computeEnvironments: [names.computeEnvironmentName] }),
  );
  const computeEnvironment = computeEnvironments[0];
  const what = `The compute environment "${names.computeEnvironmentName}"`;
  if (!computeEnvironment) throw new TransientError(`${what} is not visible yet.`);
  assertOurs(what, computeEnvironment.tags, environment.name);
  const ecsClusterArn = computeEnvironment.ecsClusterArn;
  if (!ecsClusterArn || !ecsClusterArn.includes(':cluster/')) throw new TransientError(`${what} has no ECS cluster yet.`);
  await putRolePolicy(names.instanceRoleName, INSTANCE_ROLE_INLINE_POLICY, instanceRolePolicy(ecsClusterArn, logGroupArn));
  return { ecsClusterArn };
}

/** Name of the access role's inline policy: what the Metaflow client needs for this environment. */
export const ACCESS_ROLE_INLINE_POLICY = 'metaflow-client';

/**
 * The access role: what a teammate assumes to use the environment with the Metaflow client. Its trust
 * admits the owner and the deploy-time admins only; its inline policy reaches this environment's bucket,
 * queue and job role only; like every environment role it carries the boundary. Nothing is attached to a
 * person, so nothing here can change what a person may do elsewhere.
 */
async function createAccessRole({ environment }: StepInput) {
  const { names, tags, logGroupArn } = context(environment);
  await ensureRole(environment, {
    name: names.accessRoleName,
    path: names.iamPath,
    trust: accessRoleTrustPolicy({ owner: environment.owner, ownerUniqueId: environment.ownerUniqueId, admins: settings.admins() }),
    description: `Assumed by the owner of the mfenv environment ${environment.name} to run Metaflow on it.`,
    tags,
  });
  await putRolePolicy(names.accessRoleName, ACCESS_ROLE_INLINE_POLICY, accessRolePolicy(names, logGroupArn));
  return { accessRoleArn: names.accessRoleArn };
}

// ---- Deleting ----

async function deleteAccessRole({ environment }: StepInput) {
  const { names } = context(environment);
  return { roleDeleted: await deleteRole(environment, names.accessRoleName) };
}

/** Deletes a role of ours: out of every instance profile, managed policies detached, inline ones deleted. */
async function deleteRole(environment: WorkflowEnvironment, roleName: string): Promise<boolean> {
  const iam = iamClient();
  if (!(await ownRoleToDelete(environment, roleName))) return false;
  const { InstanceProfiles = [] } = await iam.send(new ListInstanceProfilesForRoleCommand({ RoleName: roleName }));
  for (const profile of InstanceProfiles) {
    await unlessGone(() =>
      iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: profile.InstanceProfileName, RoleName: roleName })),
    );
  }
  let Marker: string | undefined;
  do {
    const page = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName, Marker }));
    for (const attached of page.AttachedPolicies ?? []) {
      await unlessGone(() => iam.send(new DetachRolePolicyCommand({ RoleName: roleName, PolicyArn: attached.PolicyArn })));
    }
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker);
  await deleteInlinePoliciesAndRole(roleName);
  return true;
}

async function deleteInstanceRole({ environment }: StepInput) {
  const iam = iamClient();
  const { names } = context(environment);
  const profile = await getInstanceProfile(names.instanceProfileName);
  let profileDeleted = false;
  if (profile && isOurs(profile.Tags, environment.name)) {
    for (const role of profile.Roles ?? []) {
      await unlessGone(() =>
        iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, RoleName: role.RoleName })),
      );
    }
    await unlessGone(() => iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName })));
    profileDeleted = true;
  } else if (profile) {
    logger.warn('instance profile with our name is not ours; not touching it', { instanceProfile: names.instanceProfileName });
  }
  const roleDeleted = await deleteRole(environment, names.instanceRoleName);
  return { profileDeleted, roleDeleted };
}

async function deleteJobRole({ environment }: StepInput) {
  const { names } = context(environment);
  return { roleDeleted: await deleteRole(environment, names.jobRoleName) };
}

export const steps: StepTable<'iam'> = {
  createJobRole,
  createInstanceRole,
  pollInstanceProfile,
  scopeInstanceRole,
  createAccessRole,
  deleteJobRole,
  deleteInstanceRole,
  deleteAccessRole,
};

export const handler = stepHandler('iam', steps);
