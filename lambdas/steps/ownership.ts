/**
 * "Is this resource ours?" Every resource an environment owns carries the tags mfenv:environment = <name>
 * and managed-by = <stack name> (naming.ts, tagsFor). A resource that has our deterministic name but not
 * both tags belongs to someone else — another environment, or another deployment that happens to use the
 * same prefix in this account: create steps refuse to touch it (ResourceConflictError), delete steps leave
 * it alone. So two deployments can never adopt, change or delete each other's resources.
 */
import { ResourceConflictError } from '../core/errors';
import { TAG } from '../core/naming';
import { settings } from '../core/settings';

export type TagSource = Record<string, string> | Array<{ Key?: string; Value?: string }> | undefined;

/** The value of one tag, from a Batch tag map or an IAM/S3 tag list. */
function tagOf(tags: TagSource, key: string): string | undefined {
  if (!tags) return undefined;
  if (Array.isArray(tags)) return tags.find((tag) => tag.Key === key)?.Value;
  return Object.hasOwn(tags, key) ? tags[key] : undefined;
}

/** The value of the mfenv:environment tag. */
export function environmentTagOf(tags: TagSource): string | undefined {
  return tagOf(tags, TAG.environment);
}

/** Whether the tags say: this environment's, made by this deployment (the stack name is `managed-by`). */
export function isOurs(tags: TagSource, environmentName: string, stackName = settings.stackName()): boolean {
  return environmentTagOf(tags) === environmentName && tagOf(tags, TAG.managedBy) === stackName;
}

/**
 * The conflict a teammate (or the platform owner) can act on: which resource, why it is not ours, what to do.
 * `what` reads like "The S3 bucket "mfenv-alice-1a2b3c4d"".
 */
export function notOursError(what: string, tags: TagSource, environmentName: string): ResourceConflictError {
  const tag = environmentTagOf(tags);
  const managedBy = tagOf(tags, TAG.managedBy);
  const why =
    tag === undefined
      ? `has no ${TAG.environment} tag`
      : tag !== environmentName
        ? `is tagged ${TAG.environment}=${tag}`
        : managedBy === undefined
          ? `has no ${TAG.managedBy} tag`
          : `is managed by the deployment "${managedBy}", not this one`;
  return new ResourceConflictError(
    `${what} already exists but does not belong to the environment "${environmentName}" (it ${why}). ` +
      `Choose another environment name, or ask the platform owner to remove or re-tag that resource.`,
  );
}

/** Throws the conflict unless the tags say the resource is this environment's. */
export function assertOurs(what: string, tags: TagSource, environmentName: string): void {
  if (!isOurs(tags, environmentName)) throw notOursError(what, tags, environmentName);
}
