/**
 * IAM steps: the job role (what a Metaflow task in Batch may do), the instance role and its instance
 * profile (the ECS agent on a Batch instance), and the teammate policy (what the Metaflow client needs).
 * Every role carries the deployment's permissions boundary; every resource is tagged and lives under the
 * `/<prefix>/` path. Creating re-asserts what matters on an existing resource of ours; deleting detaches
 * first (AWS refuses otherwise) and treats NoSuchEntity as "already gone".
 */
import { isDeepStrictEqual } from 'node:util';
import {
  AddRoleToInstanceProfileCommand,
  AttachRolePolicyCommand,
  CreateInstanceProfileCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateRoleCommand,
  DeleteInstanceProfileCommand,
  DeletePolicyCommand,
  DeletePolicyVersionCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachGroupPolicyCommand,
  DetachRolePolicyCommand,
  DetachUserPolicyCommand,
  GetInstanceProfileCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  type InstanceProfile,
  ListAttachedRolePoliciesCommand,
  ListEntitiesForPolicyCommand,
  ListInstanceProfilesForRoleCommand,
  ListPolicyVersionsCommand,
  ListRolePoliciesCommand,
  type Policy,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
  RemoveRoleFromInstanceProfileCommand,
  type Role,
  type Tag,
} from '@aws-sdk/client-iam';
import { iamClient } from '../core/clients';
import type { WorkflowEnvironment } from '../core/environment';
import { ResourceConflictError, TransientError } from '../core/errors';
import { logger } from '../core/logger';
import { type EnvironmentNames, namesFor, tagListFor } from '../core/naming';
import {
  ECS_INSTANCE_MANAGED_POLICY,
  type PolicyDocument,
  batchJobLogGroupArn,
  instanceRoleTrustPolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
  teammatePolicy,
} from '../core/policies';
import { currentDeployment, settings } from '../core/settings';
import { hasErrorCode } from './aws-errors';
import { assertOurs, isOurs } from './ownership';
import { type StepInput, type StepTable, stepHandler } from './step';

/** Name of the job role's inline policy (its own bucket, nothing else). */
export const JOB_ROLE_INLINE_POLICY = 'own-bucket-access';
/** IAM keeps at most 5 versions of a managed policy. */
const MAX_POLICY_VERSIONS = 5;

const isGone = (error: unknown) => hasErrorCode(error, 'NoSuchEntity');

/**
 * Runs an IAM call whose "no such entity" answer means there is nothing there: a Get then answers
 * undefined, a delete or detach has nothing left to do.
 */
async function unlessGone<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

function context(environment: WorkflowEnvironment) {
  const deployment = currentDeployment();
  return {
    names: namesFor(deployment, environment.name),
    tags: tagListFor(deployment, environment.name, environment.owner),
  };
}

const getRole = (roleName: string): Promise<Role | undefined> =>
  unlessGone(async () => (await iamClient().send(new GetRoleCommand({ RoleName: roleName }))).Role);

/**
 * Creates a role with the boundary, trust policy and tags, or — if a role of ours with that name exists —
 * re-asserts its boundary. A role with our name that is not ours is a conflict.
 */
async function ensureRole(
  environment: WorkflowEnvironment,
  role: { name: string; path: string; trust: PolicyDocument; description: string; tags: Tag[] },
): Promise<void> {
  const iam = iamClient();
  const boundary = settings.permissionsBoundaryArn();
  try {
    await iam.send(
      new CreateRoleCommand({
        RoleName: role.name,
        Path: role.path,
        AssumeRolePolicyDocument: JSON.stringify(role.trust),
        PermissionsBoundary: boundary,
        Description: role.description,
        Tags: role.tags,
      }),
    );
    return;
  } catch (error) {
    if (!hasErrorCode(error, 'EntityAlreadyExists')) throw error;
  }
  const existing = await getRole(role.name);
  if (!existing) throw new TransientError(`The IAM role "${role.name}" is being created or deleted right now.`);
  assertOurs(`The IAM role "${role.name}"`, existing.Tags, environment.name);
  // Idempotent re-assertion: a role of ours always ends with the boundary (its policies are re-put by the caller).
  await iam.send(new PutRolePermissionsBoundaryCommand({ RoleName: role.name, PermissionsBoundary: boundary }));
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
  await iamClient().send(
    new PutRolePolicyCommand({
      RoleName: names.jobRoleName,
      PolicyName: JOB_ROLE_INLINE_POLICY,
      PolicyDocument: JSON.stringify(jobRolePolicy(names)),
    }),
  );
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
  // Attaching an attached policy is a no-op.
  await iam.send(new AttachRolePolicyCommand({ RoleName: names.instanceRoleName, PolicyArn: ECS_INSTANCE_MANAGED_POLICY }));

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

const getPolicy = (arn: string): Promise<Policy | undefined> =>
  unlessGone(async () => (await iamClient().send(new GetPolicyCommand({ PolicyArn: arn }))).Policy);

/** IAM returns policy documents URL-encoded (the emulator sometimes does not). */
function parseDocument(text: string | undefined): unknown {
  if (!text) return undefined;
  for (const candidate of [text, safeDecode(text)]) {
    try {
      return JSON.parse(candidate);
    } catch {
      // try the next form
    }
  }
  return undefined;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function teammatePolicyDocument(names: EnvironmentNames): PolicyDocument {
  return teammatePolicy(names, batchJobLogGroupArn(settings.region(), settings.accountId()));
}

async function createTeammatePolicy({ environment }: StepInput) {
  const iam = iamClient();
  const { names, tags } = context(environment);
  const document = teammatePolicyDocument(names);
  try {
    await iam.send(
      new CreatePolicyCommand({
        PolicyName: names.userPolicyName,
        Path: names.iamPath,
        PolicyDocument: JSON.stringify(document),
        Description: `What the Metaflow client needs to use the mfenv environment ${environment.name}.`,
        Tags: tags,
      }),
    );
    return { userPolicyArn: names.userPolicyArn, updated: false };
  } catch (error) {
    if (!hasErrorCode(error, 'EntityAlreadyExists')) throw error;
  }

  const existing = await getPolicy(names.userPolicyArn);
  if (!existing) {
    // Same name under another path (our ARN has the path) or deleted a moment ago: neither is ours to change.
    throw new ResourceConflictError(
      `An IAM policy named "${names.userPolicyName}" already exists but not at ${names.userPolicyArn}. ` +
        `Choose another environment name, or ask the platform owner to remove that policy.`,
    );
  }
  assertOurs(`The IAM policy "${names.userPolicyName}"`, existing.Tags, environment.name);
  const current = await iam.send(
    new GetPolicyVersionCommand({ PolicyArn: names.userPolicyArn, VersionId: existing.DefaultVersionId }),
  );
  if (isDeepStrictEqual(parseDocument(current.PolicyVersion?.Document), document)) {
    return { userPolicyArn: names.userPolicyArn, updated: false };
  }
  const { Versions = [] } = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: names.userPolicyArn }));
  if (Versions.length >= MAX_POLICY_VERSIONS) {
    const oldest = Versions.filter((version) => !version.IsDefaultVersion).sort(
      (a, b) => (a.CreateDate?.getTime() ?? 0) - (b.CreateDate?.getTime() ?? 0),
    )[0];
    if (oldest?.VersionId) {
      await unlessGone(() =>
        iam.send(new DeletePolicyVersionCommand({ PolicyArn: names.userPolicyArn, VersionId: oldest.VersionId })),
      );
    }
  }
  await iam.send(
    new CreatePolicyVersionCommand({ PolicyArn: names.userPolicyArn, PolicyDocument: JSON.stringify(document), SetAsDefault: true }),
  );
  return { userPolicyArn: names.userPolicyArn, updated: true };
}

// ---- Deleting ----

async function deleteTeammatePolicy({ environment }: StepInput) {
  const iam = iamClient();
  const { names } = context(environment);
  const policy = await getPolicy(names.userPolicyArn);
  if (!policy) return { deleted: false };
  if (!isOurs(policy.Tags, environment.name)) {
    logger.warn('policy with our name is not ours; not touching it', { policyArn: names.userPolicyArn });
    return { deleted: false };
  }
  // AWS refuses to delete a policy that is attached anywhere: teammates attached it to themselves.
  let Marker: string | undefined;
  do {
    const page = await iam.send(new ListEntitiesForPolicyCommand({ PolicyArn: names.userPolicyArn, Marker }));
    for (const user of page.PolicyUsers ?? []) {
      await unlessGone(() => iam.send(new DetachUserPolicyCommand({ UserName: user.UserName, PolicyArn: names.userPolicyArn })));
    }
    for (const group of page.PolicyGroups ?? []) {
      await unlessGone(() => iam.send(new DetachGroupPolicyCommand({ GroupName: group.GroupName, PolicyArn: names.userPolicyArn })));
    }
    for (const role of page.PolicyRoles ?? []) {
      await unlessGone(() => iam.send(new DetachRolePolicyCommand({ RoleName: role.RoleName, PolicyArn: names.userPolicyArn })));
    }
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker);
  // ...nor one that still has non-default versions.
  const { Versions = [] } = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: names.userPolicyArn }));
  for (const version of Versions.filter((candidate) => !candidate.IsDefaultVersion)) {
    await unlessGone(() => iam.send(new DeletePolicyVersionCommand({ PolicyArn: names.userPolicyArn, VersionId: version.VersionId })));
  }
  await unlessGone(() => iam.send(new DeletePolicyCommand({ PolicyArn: names.userPolicyArn })));
  return { deleted: true };
}

/** Deletes a role of ours: out of every instance profile, managed policies detached, inline ones deleted. */
async function deleteRole(environment: WorkflowEnvironment, roleName: string): Promise<boolean> {
  const iam = iamClient();
  const role = await getRole(roleName);
  if (!role) return false;
  if (!isOurs(role.Tags, environment.name)) {
    logger.warn('role with our name is not ours; not touching it', { roleName });
    return false;
  }
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
  do {
    const page = await iam.send(new ListRolePoliciesCommand({ RoleName: roleName, Marker }));
    for (const policyName of page.PolicyNames ?? []) {
      await unlessGone(() => iam.send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: policyName })));
    }
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker);
  await unlessGone(() => iam.send(new DeleteRoleCommand({ RoleName: roleName })));
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
  createTeammatePolicy,
  deleteJobRole,
  deleteInstanceRole,
  deleteTeammatePolicy,
};

export const handler = stepHandler('iam', steps);
