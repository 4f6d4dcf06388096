/**
 * The IAM roles of an environment, as every step that makes or removes one handles them (the IAM step's
 * job, instance and access roles; the scheduling step's Step Functions and EventBridge roles): created with
 * the boundary, trust and tags, or re-asserted on a role of ours; inline policies put; emptied and deleted.
 *
 * IAM is eventually consistent (DESIGN §6): a role created a moment ago may be unknown to the next call. So
 * while creating, NoSuchEntity on what was just made is a TransientError the Task retries (onNewEntity);
 * while deleting, it means "already gone" (unlessGone).
 */
import {
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  GetRoleCommand,
  ListRolePoliciesCommand,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
  type Role,
  type Tag,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { iamClient } from '../core/clients';
import type { WorkflowEnvironment } from '../core/environment';
import { TransientError, messageOf } from '../core/errors';
import { logger } from '../core/logger';
import type { PolicyDocument } from '../core/policies';
import { settings } from '../core/settings';
import { hasErrorCode } from './aws-errors';
import { assertOurs, isOurs } from './ownership';

export const isGone = (error: unknown) => hasErrorCode(error, 'NoSuchEntity');

/**
 * Runs an IAM call whose "no such entity" answer means there is nothing there: a Get then answers
 * undefined, a delete or detach has nothing left to do.
 */
export async function unlessGone<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

/**
 * Runs an IAM call on a role or profile this run has just created (or found): NoSuchEntity there means IAM
 * has not made it visible everywhere yet, not that it is gone, so it is a TransientError the Task retries.
 * Only for creating: in a teardown, NoSuchEntity still means "already gone" (unlessGone).
 */
export async function onNewEntity<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isGone(error)) {
      throw new TransientError(`${what} was just created and IAM does not show it everywhere yet: ${messageOf(error)}`, { cause: error });
    }
    throw error;
  }
}

export const getRole = (roleName: string): Promise<Role | undefined> =>
  unlessGone(async () => (await iamClient().send(new GetRoleCommand({ RoleName: roleName }))).Role);

export interface RoleSpec {
  name: string;
  path: string;
  trust: PolicyDocument;
  description: string;
  tags: Tag[];
}

/**
 * Creates a role with the boundary, trust policy and tags, or — if a role of ours with that name exists —
 * re-asserts its boundary and trust. A role with our name that is not ours is a conflict.
 */
export async function ensureRole(environment: WorkflowEnvironment, role: RoleSpec): Promise<void> {
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
  // Idempotent re-assertion: a role of ours always ends with the boundary and the trust this run computed
  // (its policies are re-put by the caller).
  const what = `The IAM role "${role.name}"`;
  await onNewEntity(what, () => iam.send(new PutRolePermissionsBoundaryCommand({ RoleName: role.name, PermissionsBoundary: boundary })));
  await onNewEntity(what, () =>
    iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: role.name, PolicyDocument: JSON.stringify(role.trust) })),
  );
}

/** Puts (or replaces) an inline policy of a role this run has just made or found. */
export function putRolePolicy(roleName: string, policyName: string, policy: PolicyDocument): Promise<unknown> {
  return onNewEntity(`The IAM role "${roleName}"`, () =>
    iamClient().send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: JSON.stringify(policy) })),
  );
}

/**
 * The role of ours named `roleName`, to be deleted; undefined when it is gone or someone else's (logged, and
 * left alone).
 */
export async function ownRoleToDelete(environment: WorkflowEnvironment, roleName: string): Promise<Role | undefined> {
  const role = await getRole(roleName);
  if (!role) return undefined;
  if (!isOurs(role.Tags, environment.name)) {
    logger.warn('role with our name is not ours; not touching it', { roleName });
    return undefined;
  }
  return role;
}

/** Deletes a role's inline policies, then the role (AWS refuses to delete a role that still has any). */
export async function deleteInlinePoliciesAndRole(roleName: string): Promise<void> {
  const iam = iamClient();
  let Marker: string | undefined;
  do {
    const page = await iam.send(new ListRolePoliciesCommand({ RoleName: roleName, Marker }));
    for (const PolicyName of page.PolicyNames ?? []) {
      await unlessGone(() => iam.send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName })));
    }
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker);
  await unlessGone(() => iam.send(new DeleteRoleCommand({ RoleName: roleName })));
}
