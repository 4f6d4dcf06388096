/**
 * Small readers for the errors the AWS SDK throws, shared by the step modules. SDK v3 errors carry the
 * service's error code as `name` (IAM's `NoSuchEntity` arrives as `NoSuchEntityException`), so a code is
 * matched with or without that suffix.
 */
import { messageOf } from '../core/errors';

export function errorCodeOf(error: unknown): string {
  const candidate = error as { name?: unknown; Code?: unknown } | undefined;
  if (typeof candidate?.Code === 'string') return candidate.Code;
  return typeof candidate?.name === 'string' ? candidate.name : '';
}

/** True when the error's code is one of `codes` (IAM-style `...Exception` suffix ignored). */
export function hasErrorCode(error: unknown, ...codes: string[]): boolean {
  const code = errorCodeOf(error);
  const name = (error as { name?: unknown } | undefined)?.name;
  return codes.some(
    (wanted) => code === wanted || code === `${wanted}Exception` || name === wanted || name === `${wanted}Exception`,
  );
}

export function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** A client error (4xx) whose message matches `pattern`: how Batch reports "exists" and "does not exist". */
export function isClientErrorSaying(error: unknown, pattern: RegExp): boolean {
  const status = httpStatusOf(error);
  return status !== undefined && status >= 400 && status < 500 && pattern.test(messageOf(error));
}
