/**
 * Idempotency records of the registry table (POST /environments with an Idempotency-Key header).
 *
 * Item: pk = "IDEMPOTENCY#<hash of caller and key>", kind "idempotency", and
 *   state        IN_PROGRESS while the first request with the key runs, COMPLETED once its answer is stored
 *                (a record written before `state` existed holds an answer: it counts as COMPLETED);
 *   requestHash  the hash of the request body, so another body with the key is told apart at once;
 *   lockedUntil  (IN_PROGRESS only) epoch milliseconds after which the request is presumed dead (its Lambda
 *                timed out or crashed) and the key may be claimed again;
 *   expiresAt    DynamoDB TTL, epoch seconds: a day after the record was written.
 *
 * The claim is one conditional PutItem, so of two requests arriving together exactly one runs.
 */
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from './clients';
import { REGISTRY_TABLE, isConditionFailure } from './registry-table';
import { settings } from './settings';

export interface StoredAnswer {
  requestHash: string;
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** Where a key stands: free to claim, held by a request still running, or answered. */
export type KeyState =
  | { state: 'IN_PROGRESS'; requestHash: string; lockedUntil: number }
  | ({ state: 'COMPLETED' } & StoredAnswer);

/** How long an answer is kept for replay. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

const idempotencyKey = (scopedKeyHash: string) => `IDEMPOTENCY#${scopedKeyHash}`;
const TTL = REGISTRY_TABLE.ttlAttribute;
const expiresAt = () => Math.floor(Date.now() / 1000) + IDEMPOTENCY_TTL_SECONDS;

/** The record of a key, or undefined when there is none or it has expired (TTL deletes lag by up to days). */
export async function getKeyState(scopedKeyHash: string): Promise<KeyState | undefined> {
  const { Item } = await dynamoClient().send(
    new GetCommand({ TableName: settings.tableName(), Key: { pk: idempotencyKey(scopedKeyHash) }, ConsistentRead: true }),
  );
  if (!Item || (typeof Item[TTL] === 'number' && Item[TTL] * 1000 < Date.now())) return undefined;
  if (Item.state === 'IN_PROGRESS') {
    // A lock past its time belongs to a request that will never finish: the key is free again.
    if (typeof Item.lockedUntil !== 'number' || Item.lockedUntil < Date.now()) return undefined;
    return { state: 'IN_PROGRESS', requestHash: Item.requestHash, lockedUntil: Item.lockedUntil };
  }
  return { state: 'COMPLETED', requestHash: Item.requestHash, statusCode: Item.statusCode, headers: Item.headers, body: Item.body };
}

/** The stored answer of a key, if the request that used it completed. */
export async function getStoredAnswer(scopedKeyHash: string): Promise<StoredAnswer | undefined> {
  const found = await getKeyState(scopedKeyHash);
  if (found?.state !== 'COMPLETED') return undefined;
  const { state: _state, ...answer } = found;
  return answer;
}

/**
 * Claims a key for a request about to run: true if this request now holds it, false if another record is
 * there (an answer, or a request still running). A record that expired, or a lock past `lockedUntil`, is
 * taken over. The lock is held for `lockMs`.
 */
export async function claimKey(scopedKeyHash: string, requestHash: string, lockMs: number): Promise<boolean> {
  const now = Date.now();
  try {
    await dynamoClient().send(
      new PutCommand({
        TableName: settings.tableName(),
        Item: {
          pk: idempotencyKey(scopedKeyHash),
          kind: 'idempotency',
          state: 'IN_PROGRESS',
          requestHash,
          lockedUntil: now + lockMs,
          [TTL]: expiresAt(),
        },
        ConditionExpression:
          'attribute_not_exists(pk) OR #expiresAt < :nowSeconds OR (#state = :inProgress AND #lockedUntil < :nowMs)',
        ExpressionAttributeNames: { '#expiresAt': TTL, '#state': 'state', '#lockedUntil': 'lockedUntil' },
        ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000), ':inProgress': 'IN_PROGRESS', ':nowMs': now },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/** Stores the answer of the request holding the key, for a day: later requests with it replay it. */
export async function storeAnswer(scopedKeyHash: string, answer: StoredAnswer): Promise<void> {
  await dynamoClient().send(
    new PutCommand({
      TableName: settings.tableName(),
      Item: { pk: idempotencyKey(scopedKeyHash), kind: 'idempotency', state: 'COMPLETED', ...answer, [TTL]: expiresAt() },
    }),
  );
}

/**
 * Frees a key whose request was refused (a refused request changed nothing, so it may simply run again).
 * Only the in-progress record of that very body is removed: never a stored answer.
 */
export async function releaseKey(scopedKeyHash: string, requestHash: string): Promise<void> {
  try {
    await dynamoClient().send(
      new DeleteCommand({
        TableName: settings.tableName(),
        Key: { pk: idempotencyKey(scopedKeyHash) },
        ConditionExpression: '#state = :inProgress AND #requestHash = :requestHash',
        ExpressionAttributeNames: { '#state': 'state', '#requestHash': 'requestHash' },
        ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS', ':requestHash': requestHash },
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}
