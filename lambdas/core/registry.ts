/**
 * The registry: one DynamoDB table holding every environment record (and the API's idempotency records).
 * All status changes are conditional writes, so two requests (or a request and a workflow) can never
 * both win: the loser gets a domain error the API turns into a 409.
 *
 * Items:  pk = "ENV#<name>"            an EnvironmentRecord, plus `kind` and the `owner` GSI key
 *         pk = "QUOTA#account"         `live`: how many environments are live (LIVE_STATUSES) in the account
 *         pk = "QUOTA#owner#<owner>"   `live`: how many of them one teammate holds
 *         pk = "IDEMPOTENCY#<hash>"    a stored API answer, expiring after a day (TTL `expiresAt`)
 *
 * The two counters are what admission control reads, and they change only in the same transaction as the
 * record whose status makes it live or not: a create is one TransactWriteItems (the conditional Put of the
 * record and a conditional increment of each counter, refused at the quota), the move to DELETED another
 * (the conditional status update and both decrements). Counting records instead (a GSI query, which is
 * never strongly consistent, and a scan) let two creates arriving together both pass a quota.
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, ScanCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from './clients';
import { EnvironmentRecord, type EnvironmentStatus, LIVE_STATUSES } from './environment';
import { EnvironmentStateConflictError, NameTakenError, QuotaExceededError, TransientError } from './errors';
import { logger } from './logger';
import { settings } from './settings';

/** Table layout, shared with the CDK table (infra/registry.ts) and local bootstrap. */
export const REGISTRY_TABLE = {
  partitionKey: 'pk',
  ownerIndex: { name: 'byOwner', partitionKey: 'owner', sortKey: 'name' },
  ttlAttribute: 'expiresAt',
} as const;

const environmentKey = (name: string) => `ENV#${name}`;
/** The counters of live environments: the account's, and one per owner. */
export const QUOTA_COUNTER_KEYS = {
  account: 'QUOTA#account',
  owner: (owner: string) => `QUOTA#owner#${owner}`,
} as const;
const nowIso = () => new Date().toISOString();

function toRecord(item: Record<string, unknown> | undefined): EnvironmentRecord | undefined {
  if (!item) return undefined;
  return EnvironmentRecord.parse(item);
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

export async function getEnvironment(name: string): Promise<EnvironmentRecord | undefined> {
  const { Item } = await dynamoClient().send(
    new GetCommand({ TableName: settings.tableName(), Key: { pk: environmentKey(name) }, ConsistentRead: true }),
  );
  return toRecord(Item);
}

/** Environments of one owner (index query), or of everyone (scan: the table holds at most a few hundred). */
export async function listEnvironments(options: { owner?: string; includeDeleted?: boolean } = {}): Promise<EnvironmentRecord[]> {
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = options.owner
      ? await dynamoClient().send(
          new QueryCommand({
            TableName: settings.tableName(),
            IndexName: REGISTRY_TABLE.ownerIndex.name,
            KeyConditionExpression: '#owner = :owner',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: { ':owner': options.owner },
            ExclusiveStartKey,
          }),
        )
      : await dynamoClient().send(
          new ScanCommand({
            TableName: settings.tableName(),
            FilterExpression: '#kind = :kind',
            ExpressionAttributeNames: { '#kind': 'kind' },
            ExpressionAttributeValues: { ':kind': 'environment' },
            ConsistentRead: true,
            ExclusiveStartKey,
          }),
        );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items
    .map((item) => EnvironmentRecord.parse(item))
    .filter((record) => options.includeDeleted || record.status !== 'DELETED')
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The quotas a create is admitted under. */
export interface Quotas {
  /** Live environments one owner may hold. */
  perOwner: number;
  /** Live environments the whole account may hold. */
  account: number;
}

/** A quota refused a create: which one, its limit, and how many live environments its counter holds. */
export class QuotaReachedError extends QuotaExceededError {
  constructor(
    readonly quota: 'owner' | 'account',
    readonly limit: number,
    readonly held: number,
  ) {
    super(
      quota === 'owner'
        ? `The owner already holds ${held} environments (quota per teammate: ${limit}).`
        : `The account already holds ${held} environments (account quota: ${limit}).`,
    );
  }
}

/** The live environments counted for the account and for `owner` (0 when a counter was never written). */
export async function liveCounts(owner: string): Promise<{ account: number; owner: number }> {
  const read = async (pk: string) => {
    const { Item } = await dynamoClient().send(new GetCommand({ TableName: settings.tableName(), Key: { pk }, ConsistentRead: true }));
    return typeof Item?.live === 'number' ? Item.live : 0;
  };
  return { account: await read(QUOTA_COUNTER_KEYS.account), owner: await read(QUOTA_COUNTER_KEYS.owner(owner)) };
}

const isLive = (status: EnvironmentStatus) => LIVE_STATUSES.includes(status);

/** One item of a TransactWriteItems, as lib-dynamodb takes it. */
type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

/** Adds `delta` (1 or -1) to a counter. An increment with a limit is refused at it; a decrement never goes below 0. */
function counterUpdate(pk: string, delta: 1 | -1, limit?: number): TransactItem {
  const values: Record<string, unknown> = { ':zero': 0, ':one': 1 };
  let condition: string | undefined;
  if (delta === -1) condition = 'live > :zero';
  else if (limit !== undefined) {
    condition = 'attribute_not_exists(live) OR live < :limit';
    values[':limit'] = limit;
  }
  return {
    Update: {
      TableName: settings.tableName(),
      Key: { pk },
      UpdateExpression: `SET live = if_not_exists(live, :zero) ${delta === 1 ? '+' : '-'} :one, #kind = :kind`,
      ...(condition ? { ConditionExpression: condition } : {}),
      ExpressionAttributeNames: { '#kind': 'kind' },
      ExpressionAttributeValues: { ...values, ':kind': 'quota' },
      // The counter's value comes back with a refusal: the quota answer says how many are held.
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  };
}

/** What DynamoDB says about each item of a cancelled transaction, in the order of the items. */
type CancellationReasons = NonNullable<TransactionCanceledException['CancellationReasons']>;

function cancellationReasonsOf(error: unknown): CancellationReasons | undefined {
  if (error instanceof TransactionCanceledException || (error as { name?: string })?.name === 'TransactionCanceledException') {
    return (error as TransactionCanceledException).CancellationReasons ?? [];
  }
  return undefined;
}

const conditionFailed = (reasons: CancellationReasons, index: number) => reasons[index]?.Code === 'ConditionalCheckFailed';

/** The counter a refused increment saw (the item comes back in DynamoDB's own JSON: `{ live: { N: "3" } }`). */
function counterIn(reasons: CancellationReasons, index: number): number | undefined {
  const live = (reasons[index]?.Item as Record<string, unknown> | undefined)?.live as { N?: string } | number | undefined;
  const value = typeof live === 'number' ? live : Number(live?.N);
  return Number.isFinite(value) ? value : undefined;
}

const TRANSACTION_ATTEMPTS = 5;

/**
 * Runs one TransactWriteItems. DynamoDB cancels a transaction that collides with another one on the same
 * item (TransactionConflict) without deciding anything: it is run again, after a short random pause, until
 * it commits or a condition decides. Returns the reasons of a transaction cancelled by a condition.
 */
async function transact(items: TransactItem[]): Promise<CancellationReasons | undefined> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await dynamoClient().send(new TransactWriteCommand({ TransactItems: items }));
      return undefined;
    } catch (error) {
      const reasons = cancellationReasonsOf(error);
      if (!reasons) throw error;
      if (reasons.some((reason) => reason.Code === 'ConditionalCheckFailed')) return reasons;
      const collided = reasons.some((reason) => reason.Code === 'TransactionConflict');
      if (!collided || attempt >= TRANSACTION_ATTEMPTS) {
        throw new TransientError(`The registry could not complete a write (${reasons.map((reason) => reason.Code).join(', ')}); try again.`, {
          cause: error,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 50));
    }
  }
}

/**
 * Writes a new CREATING record. Succeeds only if the name is free: never used, or DELETED at exactly the
 * generation the caller read (so two teammates racing for a freed name cannot both win), and, in the same
 * transaction, only if the owner's and the account's counters of live environments are below `quotas`
 * (each then counts the new record). Without `quotas` the counters still count it but refuse nothing.
 *
 * Throws NameTakenError when the name was taken, else QuotaReachedError for the owner's quota, else for
 * the account's (a refusal may have several causes: the name comes first, as it would be checked first).
 */
export async function putNewEnvironment(
  record: EnvironmentRecord,
  options: { replacingDeletedGeneration?: number; quotas?: Quotas } = {},
): Promise<void> {
  const { replacingDeletedGeneration, quotas } = options;
  const condition =
    replacingDeletedGeneration === undefined
      ? { ConditionExpression: 'attribute_not_exists(pk)' }
      : {
          ConditionExpression: '#status = :deleted AND #generation = :generation',
          ExpressionAttributeNames: { '#status': 'status', '#generation': 'generation' },
          ExpressionAttributeValues: { ':deleted': 'DELETED', ':generation': replacingDeletedGeneration },
        };
  const put: TransactItem = {
    Put: {
      TableName: settings.tableName(),
      Item: { pk: environmentKey(record.name), kind: 'environment', ...EnvironmentRecord.parse(record) },
      ...condition,
    },
  };
  const counted = isLive(record.status);
  const items = counted
    ? [put, counterUpdate(QUOTA_COUNTER_KEYS.owner(record.owner), 1, quotas?.perOwner), counterUpdate(QUOTA_COUNTER_KEYS.account, 1, quotas?.account)]
    : [put];
  const reasons = await transact(items);
  if (!reasons) return;
  if (conditionFailed(reasons, 0)) {
    throw new NameTakenError(`The name "${record.name}" was taken a moment ago by another request; choose another name.`);
  }
  if (quotas && conditionFailed(reasons, 1)) throw new QuotaReachedError('owner', quotas.perOwner, counterIn(reasons, 1) ?? quotas.perOwner);
  if (quotas && conditionFailed(reasons, 2)) throw new QuotaReachedError('account', quotas.account, counterIn(reasons, 2) ?? quotas.account);
  throw new Error(`Creating "${record.name}" was refused for no reason the registry knows: ${JSON.stringify(reasons)}`);
}

export interface Transition {
  /** The change is made only from one of these statuses... */
  from: readonly EnvironmentStatus[];
  /** ...and, when given, only at this generation (a workflow of an older generation changes nothing). */
  generation?: number;
  to: EnvironmentStatus;
  statusReason: string | null;
  /** Other attributes to set in the same write. */
  set?: Partial<Omit<EnvironmentRecord, 'name' | 'status' | 'statusReason' | 'updatedAt'>>;
  /** DynamoDB TTL (epoch seconds) after which the record disappears; null removes it. */
  expiresAt?: number | null;
}

/** The conditional update of one record, as both UpdateItem and a transaction's Update take it. */
interface RecordUpdate {
  TableName: string;
  Key: Record<string, string>;
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, unknown>;
}

/** Conditional status change. Returns the new record; throws EnvironmentStateConflictError if it lost. */
export async function transition(name: string, change: Transition): Promise<EnvironmentRecord> {
  const names: Record<string, string> = { '#status': 'status', '#statusReason': 'statusReason', '#updatedAt': 'updatedAt' };
  const values: Record<string, unknown> = { ':to': change.to, ':statusReason': change.statusReason, ':updatedAt': nowIso() };
  const sets = ['#status = :to', '#statusReason = :statusReason', '#updatedAt = :updatedAt'];
  const removes: string[] = [];
  for (const [key, value] of Object.entries(change.set ?? {})) {
    names[`#${key}`] = key;
    values[`:${key}`] = value;
    sets.push(`#${key} = :${key}`);
  }
  if (change.expiresAt !== undefined) {
    names['#expiresAt'] = REGISTRY_TABLE.ttlAttribute;
    if (change.expiresAt === null) removes.push('#expiresAt');
    else {
      values[':expiresAt'] = change.expiresAt;
      sets.push('#expiresAt = :expiresAt');
    }
  }
  const fromKeys = change.from.map((_, index) => `:from${index}`);
  change.from.forEach((status, index) => (values[`:from${index}`] = status));
  let condition = `#status IN (${fromKeys.join(', ')})`;
  if (change.generation !== undefined) {
    names['#generation'] = 'generation';
    values[':expectedGeneration'] = change.generation;
    condition += ' AND #generation = :expectedGeneration';
  }
  const update: RecordUpdate = {
    TableName: settings.tableName(),
    Key: { pk: environmentKey(name) },
    UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    ConditionExpression: `attribute_exists(pk) AND ${condition}`,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };

  const delta = liveDeltaOf(change);
  if (delta !== 0) return countedTransition(name, change, update, delta);
  try {
    const { Attributes } = await dynamoClient().send(new UpdateCommand({ ...update, ReturnValues: 'ALL_NEW' }));
    return EnvironmentRecord.parse(Attributes);
  } catch (error) {
    if (isConditionFailure(error)) throw await conflictOf(name, change);
    throw error;
  }
}

/** How a transition changes the number of live environments: -1 into DELETED, +1 out of it, else 0. */
function liveDeltaOf(change: Transition): -1 | 0 | 1 {
  const fromLive = change.from.map(isLive);
  if (fromLive.some((live) => live !== fromLive[0])) {
    throw new Error(`A transition must start from live statuses only or from DELETED only, not from ${change.from.join(', ')}.`);
  }
  if (fromLive[0] === isLive(change.to)) return 0;
  return isLive(change.to) ? 1 : -1;
}

/**
 * A transition that makes an environment live or not: the status update and both counters of its owner
 * in one transaction, so a replayed step whose update finds the record changed already changes no counter.
 * The update also requires the owner read here, so the counters are the owner's of the record it changes.
 */
async function countedTransition(
  name: string,
  change: Transition,
  update: RecordUpdate,
  delta: 1 | -1,
): Promise<EnvironmentRecord> {
  const current = await getEnvironment(name);
  if (!current) throw await conflictOf(name, change);
  const guarded: RecordUpdate = {
    ...update,
    ConditionExpression: `${update.ConditionExpression} AND #owner = :owner`,
    ExpressionAttributeNames: { ...update.ExpressionAttributeNames, '#owner': 'owner' },
    ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':owner': current.owner },
  };
  let counters = [QUOTA_COUNTER_KEYS.owner(current.owner), QUOTA_COUNTER_KEYS.account];
  for (;;) {
    const reasons = await transact([{ Update: guarded }, ...counters.map((pk) => counterUpdate(pk, delta))]);
    if (!reasons) break;
    if (conditionFailed(reasons, 0)) throw await conflictOf(name, change);
    // Only a decrement has a condition: a counter already at 0 undercounted (it was cleared, or the record
    // predates it). The status change must happen all the same, or the teardown could never finish.
    const atZero = counters.filter((_, index) => conditionFailed(reasons, index + 1));
    logger.warn('a quota counter was already 0 when an environment stopped counting; leaving it at 0', { environment: name, counters: atZero });
    counters = counters.filter((pk) => !atZero.includes(pk));
  }
  const changed = await getEnvironment(name);
  if (!changed) throw await conflictOf(name, change);
  return changed;
}

/** The conflict a lost conditional write answers, saying where the record stands. */
async function conflictOf(name: string, change: Transition): Promise<EnvironmentStateConflictError> {
  const current = await getEnvironment(name);
  return new EnvironmentStateConflictError(
    current
      ? `The environment "${name}" is ${current.status} (generation ${current.generation}); it cannot become ${change.to} from there.`
      : `The environment "${name}" does not exist.`,
  );
}

// ---- Idempotency records (POST /environments with an Idempotency-Key header) ----

export interface StoredAnswer {
  requestHash: string;
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
const idempotencyKey = (scopedKeyHash: string) => `IDEMPOTENCY#${scopedKeyHash}`;

export async function getStoredAnswer(scopedKeyHash: string): Promise<StoredAnswer | undefined> {
  const { Item } = await dynamoClient().send(
    new GetCommand({ TableName: settings.tableName(), Key: { pk: idempotencyKey(scopedKeyHash) }, ConsistentRead: true }),
  );
  if (!Item || (typeof Item.expiresAt === 'number' && Item.expiresAt * 1000 < Date.now())) return undefined;
  return { requestHash: Item.requestHash, statusCode: Item.statusCode, headers: Item.headers, body: Item.body };
}

export async function storeAnswer(scopedKeyHash: string, answer: StoredAnswer): Promise<void> {
  await dynamoClient().send(
    new PutCommand({
      TableName: settings.tableName(),
      Item: {
        pk: idempotencyKey(scopedKeyHash),
        kind: 'idempotency',
        ...answer,
        [REGISTRY_TABLE.ttlAttribute]: Math.floor(Date.now() / 1000) + IDEMPOTENCY_TTL_SECONDS,
      },
    }),
  );
}
