/**
 * Idempotency-Key for POST /environments: a client that lost the answer (timeout, dropped connection) sends
 * the same request with the same key and gets the same answer, without a second environment or workflow.
 * Keys are scoped to the caller (two teammates may pick the same key); the same key with a different body
 * is a client bug and answered 422. Only successful answers are kept (24 hours, registry.storeAnswer): a
 * refused request changed nothing, so retrying it simply runs it again.
 */
import { createHash } from 'node:crypto';
import type { Caller } from '../core/access';
import { IdempotencyKeyReuseError, NameTakenError, ValidationError } from '../core/errors';
import * as registry from '../core/registry';
import type { ApiResult } from './http';

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

/** JSON with object keys sorted at every level: the same body however its keys were ordered or spaced. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
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

function replay(stored: registry.StoredAnswer): ApiResult {
  return { statusCode: stored.statusCode, headers: { ...stored.headers, [REPLAYED_HEADER]: 'true' }, body: stored.body };
}

function assertSameRequest(stored: registry.StoredAnswer, requestHash: string, key: string): void {
  if (stored.requestHash !== requestHash) {
    throw new IdempotencyKeyReuseError(
      `The Idempotency-Key "${key}" was already used for a different request body; use a new key for a new request.`,
    );
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
  const stored = await registry.getStoredAnswer(scoped);
  if (stored) {
    assertSameRequest(stored, requestHash, key);
    return replay(stored);
  }
  let result: ApiResult;
  try {
    result = await act();
  } catch (error) {
    // Two copies of one request raced: the one that lost finds the name taken — by its twin, whose answer is its own.
    if (error instanceof NameTakenError) {
      const twin = await registry.getStoredAnswer(scoped);
      if (twin) {
        assertSameRequest(twin, requestHash, key);
        return replay(twin);
      }
    }
    throw error;
  }
  if (result.statusCode >= 200 && result.statusCode < 300) {
    await registry.storeAnswer(scoped, { requestHash, statusCode: result.statusCode, headers: result.headers, body: String(result.body) });
  }
  return result;
}
