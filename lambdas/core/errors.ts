/**
 * The domain's errors. Each has a stable `name`: the API maps it to an HTTP answer (HTTP_ERRORS below) and
 * Step Functions matches it in Retry/Catch (the ASL files name TransientError, ResourceNotReady, ...).
 * The message is a sentence a teammate can act on: it becomes `detail` or the environment's statusReason.
 */

export interface FieldError {
  /** JSON pointer-ish path of the offending field, e.g. "name" or "body". */
  field: string;
  message: string;
}

export abstract class MfenvError extends Error {
  abstract override readonly name: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The request body, path or query is not acceptable. */
export class ValidationError extends MfenvError {
  override readonly name = 'ValidationError';
  constructor(
    message: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
  }
}

/** The request could not be attributed to a principal. */
export class UnauthenticatedError extends MfenvError {
  override readonly name = 'UnauthenticatedError';
}

/** The caller is known but may not do this (used where revealing existence is fine). */
export class ForbiddenError extends MfenvError {
  override readonly name = 'ForbiddenError';
}

/** No such environment, or not one the caller may see (the two are indistinguishable on purpose). */
export class EnvironmentNotFoundError extends MfenvError {
  override readonly name = 'EnvironmentNotFoundError';
}

/** The environment exists but its status does not allow this operation now. */
export class EnvironmentStateConflictError extends MfenvError {
  override readonly name = 'EnvironmentStateConflictError';
}

/** The environment name is held by another live environment (or another teammate's retained data). */
export class NameTakenError extends MfenvError {
  override readonly name = 'NameTakenError';
}

/** Admission control: the account-wide or per-teammate environment quota is reached. */
export class QuotaExceededError extends MfenvError {
  override readonly name = 'QuotaExceededError';
}

/**
 * Preflight (preflight.ts): the account's Spot vCPU quota for standard instances is 0 in the region, so an
 * environment could run no job at all. Nothing is created; the platform owner must raise the quota.
 */
export class SpotQuotaZeroError extends MfenvError {
  override readonly name = 'SpotQuotaZeroError';
}

/**
 * Preflight: the region already holds as many Batch compute environments or job queues as AWS allows, so
 * the workflow would fail at its compute environment. Nothing is created.
 */
export class BatchLimitReachedError extends MfenvError {
  override readonly name = 'BatchLimitReachedError';
}

/**
 * Preflight: the deployment cannot make working environments (e.g. shared subnets that give instances no
 * public address, which without NAT never join their cluster). Not the caller's fault, yet nothing the
 * caller sent can fix it: the platform owner must change the deployment.
 */
export class DeploymentMisconfiguredError extends MfenvError {
  override readonly name = 'DeploymentMisconfiguredError';
}

/** Same Idempotency-Key reused with a different request. */
export class IdempotencyKeyReuseError extends MfenvError {
  override readonly name = 'IdempotencyKeyReuseError';
}

/**
 * A copy of a request found its Idempotency-Key held by a request still running, and waited for its answer
 * in vain: sent again after `retryAfterSeconds` (the Retry-After header), with the same key, it gets that answer.
 */
export class IdempotencyKeyInProgressError extends MfenvError {
  override readonly name = 'IdempotencyKeyInProgressError';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** Route or method that the API does not serve. */
export class RouteNotFoundError extends MfenvError {
  override readonly name = 'RouteNotFoundError';
}
export class MethodNotAllowedError extends MfenvError {
  override readonly name = 'MethodNotAllowedError';
  constructor(
    message: string,
    readonly allow: string[],
  ) {
    super(message);
  }
}
export class UnsupportedMediaTypeError extends MfenvError {
  override readonly name = 'UnsupportedMediaTypeError';
}

/** A workflow could not be started (Step Functions refused or was unreachable): not the caller's fault, worth retrying. */
export class WorkflowUnavailableError extends MfenvError {
  override readonly name = 'WorkflowUnavailableError';
}

/** A deployment mistake: a setting is missing or malformed. Never the caller's fault. */
export class ConfigurationError extends MfenvError {
  override readonly name = 'ConfigurationError';
}

// ---- Workflow errors: their names are matched by the ASL files' Retry and Catch. ----

/** Worth retrying as is: throttling, eventual consistency (a new IAM role not yet visible), 5xx. */
export class TransientError extends MfenvError {
  override readonly name = 'TransientError';
}

/** A poll gave up: the resource did not settle in the time allowed. */
export class ResourceNotReadyError extends MfenvError {
  override readonly name = 'ResourceNotReady';
}

/** AWS answered that the resource is broken (e.g. a compute environment went INVALID). */
export class ResourceFailedError extends MfenvError {
  override readonly name = 'ResourceFailed';
}

/** A resource with our deterministic name exists but is not ours (other tags, other owner). */
export class ResourceConflictError extends MfenvError {
  override readonly name = 'ResourceConflict';
}

/**
 * A destructive step was asked to act on an environment whose record does not show that teardown (another
 * status or generation, or a purge nobody asked for): nothing is deleted.
 */
export class TeardownNotRecordedError extends MfenvError {
  override readonly name = 'TeardownNotRecorded';
}

/** HTTP answer for each error name the API may raise. Anything else is a 500 with a neutral sentence. */
export const HTTP_ERRORS: Record<string, { status: number; title: string }> = {
  ValidationError: { status: 400, title: 'The request is not valid' },
  UnauthenticatedError: { status: 401, title: 'The request is not signed' },
  ForbiddenError: { status: 403, title: 'Not allowed' },
  EnvironmentNotFoundError: { status: 404, title: 'Environment not found' },
  RouteNotFoundError: { status: 404, title: 'No such route' },
  MethodNotAllowedError: { status: 405, title: 'Method not allowed' },
  EnvironmentStateConflictError: { status: 409, title: 'The environment is busy or in the wrong state' },
  NameTakenError: { status: 409, title: 'The environment name is taken' },
  QuotaExceededError: { status: 409, title: 'Environment quota reached' },
  SpotQuotaZeroError: { status: 409, title: 'The account has no Spot vCPU quota' },
  BatchLimitReachedError: { status: 409, title: 'AWS Batch limit reached in this region' },
  DeploymentMisconfiguredError: { status: 409, title: 'The deployment cannot create working environments' },
  UnsupportedMediaTypeError: { status: 415, title: 'Unsupported media type' },
  IdempotencyKeyReuseError: { status: 422, title: 'Idempotency-Key reused with a different request' },
  IdempotencyKeyInProgressError: { status: 409, title: 'A request with this Idempotency-Key is still in progress' },
  WorkflowUnavailableError: { status: 503, title: 'The workflow could not be started' },
};

/** The human sentence of any thrown value. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
