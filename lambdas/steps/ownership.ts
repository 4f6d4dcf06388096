/**
 * "Is this resource ours?" Every resource an environment owns carries the tag mfenv:environment = <name>
 * (naming.ts, tagsFor). A resource that has our deterministic name but not that tag belongs to someone else:
 * create steps refuse to touch it (ResourceConflictError), delete steps leave it alone.
 */
import { ResourceConflictError } from '../core/errors';
import { TAG } from '../core/naming';

export type TagSource = Record<string, string> | Array<{ Key?: string; Value?: string }> | undefined;

/** The value of the mfenv:environment tag, from a Batch tag map or an IAM/S3 tag list. */
export function environmentTagOf(tags: TagSource): string | undefined {
  if (!tags) return undefined;
  if (Array.isArray(tags)) return tags.find((tag) => tag.Key === TAG.environment)?.Value;
  return tags[TAG.environment];
}

export function isOurs(tags: TagSource, environmentName: string): boolean {
  return environmentTagOf(tags) === environmentName;
}

/**
 * The conflict a teammate (or the platform owner) can act on: which resource, why it is not ours, what to do.
 * `what` reads like "The S3 bucket "mfenv-alice-1a2b3c4d"".
 */
export function notOursError(what: string, tags: TagSource, environmentName: string): ResourceConflictError {
  const tag = environmentTagOf(tags);
  const why =
    tag === undefined
      ? `has no ${TAG.environment} tag`
      : `is tagged ${TAG.environment}=${tag}`;
  return new ResourceConflictError(
    `${what} already exists but does not belong to the environment "${environmentName}" (it ${why}). ` +
      `Choose another environment name, or ask the platform owner to remove or re-tag that resource.`,
  );
}

/** Throws the conflict unless the tags say the resource is this environment's. */
export function assertOurs(what: string, tags: TagSource, environmentName: string): void {
  if (!isOurs(tags, environmentName)) throw notOursError(what, tags, environmentName);
}
