/**
 * Idempotency-Key for POST /environments: a client that lost the answer (timeout, dropped connection) sends
 * the same request with the same key and gets the same answer, without a second environment or workflow.
 * Keys are scoped to the caller (two teammates may pick the same key); the same key with a different body
 * is a client bug and answered 422.
 *
 * It holds when the copies arrive together, too: the first request claims the key with one conditional
 * write (an IN_PROGRESS record, registry.claimKey) before it runs, and stores its answer over that record
 * when it succeeds. A copy with the same body that finds the key claimed waits for that answer (polling,
 * up to WAIT_FOR_TWIN_MS) and replays it; if the first request is still running after that, the copy is
 * told 409 (idempotency-key-in-progress, with Retry-After) to send it again in a few seconds. A different body finds the claim's body hash differs: 422 at once,
 * whether the first request is running or done. A refused request changed nothing, so its claim is
 * released and the key may simply run again; only successful answers are kept (24 hours). A claim whose
 * request died (Lambda timeout, crash) lapses after LOCK_MS, so the key is never stuck.
 */
import { createHash } from 'node:crypto';
import type { Caller } from '../core/access';
import { IdempotencyKeyInProgressError, IdempotencyKeyReuseError, ValidationError } from '../core/errors';
import { logger } from '../core/logger';
import * as registry from '../core/registry';
import type { ApiResult } from './http';
import { MAX_BODY_DEPTH, tooDeepError } from './middleware';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Set on an answer that is a replay of a stored one. */
export const REPLAYED_HEADER = 'Idempotent-Replayed';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The Idempotency-Key header, if any; 400 when it is empty, too long or not printable ASCII. */
export function idempotencyKeyOf(headers: Record<string, string>): string | undefined {
  const key = headers[IDEMPOTENCY_HEADER];
  if (key === undefined) return undefined;
  if (!KEY_PATTERN.test(key)) {
    throw new ValidationError('The Idempotency-Key header must be 1 to 255 printable ASCII characters without spaces, e.g. a UUID.', [
      { field: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters without spaces' },
    ]);
  }
  return key;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * JSON with object keys sorted at every level: the same body however its keys were ordered or spaced.
 * It recurses once per level, so it refuses (400) a value nested deeper than any body the API accepts
 * rather than exhaust the stack; the middleware refuses such bodies before this is ever reached.
 */
export function canonicalJson(value: unknown, depth = 0): string {
  if (value !== null && typeof value === 'object' && depth >= MAX_BODY_DEPTH) throw tooDeepError();
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item, depth + 1)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item, depth + 1)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The stored key: the caller's principal and the key together, hashed (the key itself is the client's). */
export function scopedKeyHash(caller: Pick<Caller, 'id'>, key: string): string {
  return sha256(`${caller.id}\n${key}`);
}

export function requestHashOf(body: unknown): string {
  return sha256(canonicalJson(body));
}

/**
 * How long a claim holds the key: longer than the API Lambda may run (30 s, infra/functions.ts), so a
 * claim lapses only when its request can no longer be running.
 */
export const LOCK_MS = 35_000;
/** How long a copy waits for the answer of the request holding its key (a create takes well under a second). */
export const WAIT_FOR_TWIN_MS = 10_000;
/** Seconds a client told the key is in progress should wait before sending the request again. */
export const RETRY_IN_PROGRESS_SECONDS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function replay(stored: registry.StoredAnswer): ApiResult {
  return { statusCode: stored.statusCode, headers: { ...stored.headers, [REPLAYED_HEADER]: 'true' }, body: stored.body };
}

function assertSameRequest(stored: { requestHash: string }, requestHash: string, key: string): void {
  if (stored.requestHash !== requestHash) {
    throw new IdempotencyKeyReuseError(
      `The Idempotency-Key "${key}" was already used for a different request body; use a new key for a new request.`,
    );
  }
}

/** Runs the request while holding the key: stores a successful answer, releases the key otherwise. */
async function runHolding(scoped: string, requestHash: string, act: () => Promise<ApiResult>): Promise<ApiResult> {
  let result: ApiResult;
  try {
    result = await act();
  } catch (error) {
    await release(scoped, requestHash);
    throw error;
  }
  if (result.statusCode >= 200 && result.statusCode < 300) {
    await registry.storeAnswer(scoped, { requestHash, statusCode: result.statusCode, headers: result.headers, body: String(result.body) });
  } else {
    await release(scoped, requestHash);
  }
  return result;
}

/** Releases a key; failing to is logged, not answered: the claim then lapses after LOCK_MS on its own. */
async function release(scoped: string, requestHash: string): Promise<void> {
  try {
    await registry.releaseKey(scoped, requestHash);
  } catch (error) {
    logger.warn('could not release an Idempotency-Key claim; it lapses on its own', { error: error as Error });
  }
}

/** Runs `act` once per (caller, key, body): a repeat gets the stored answer, a different body with the key 422. */
export async function withIdempotency(
  caller: Caller,
  key: string | undefined,
  body: unknown,
  act: () => Promise<ApiResult>,
): Promise<ApiResult> {
  if (key === undefined) return act();
  const scoped = scopedKeyHash(caller, key);
  const requestHash = requestHashOf(body);
  const deadline = Date.now() + WAIT_FOR_TWIN_MS;
  for (let poll = 0; ; poll += 1) {
    if (await registry.claimKey(scoped, requestHash, LOCK_MS)) return runHolding(scoped, requestHash, act);
    const found = await registry.getKeyState(scoped);
    if (found) {
      assertSameRequest(found, requestHash, key);
      if (found.state === 'COMPLETED') return replay(found);
    }
    // Nothing found: the holder was refused and released the key, or its claim lapsed; claim it again.
    if (Date.now() >= deadline) {
      throw new IdempotencyKeyInProgressError(
        `A request with the Idempotency-Key "${key}" is still in progress; send this request again in ${RETRY_IN_PROGRESS_SECONDS} seconds, with the same key, to get its answer.`,
        RETRY_IN_PROGRESS_SECONDS,
      );
    }
    if (found) await sleep(Math.min(50 * 2 ** poll, 500));
  }
}
