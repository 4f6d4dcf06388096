/**
 * Environment records of the registry table: pk = "ENV#<name>", an EnvironmentRecord plus `kind` and the
 * `owner` GSI key. Every status change is a conditional write, so two requests (or a request and a
 * workflow) can never both win; a change that makes an environment live or not moves the quota counters
 * (quota-counters.ts) in the same transaction.
 */
import { GetCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from './clients';
import { EnvironmentRecord, type EnvironmentStatus, LIVE_STATUSES } from './environment';
import { EnvironmentStateConflictError, NameTakenError } from './errors';
import { publishStatusChange } from './events';
import { logger } from './logger';
import { recordStatusChange } from './metrics';
import { QUOTA_COUNTER_KEYS, QuotaReachedError, type Quotas, counterIn, counterUpdate } from './quota-counters';
import { REGISTRY_TABLE, type TransactItem, conditionFailed, isConditionFailure, transact } from './registry-table';
import { settings } from './settings';

const environmentKey = (name: string) => `ENV#${name}`;
const nowIso = () => new Date().toISOString();

function toRecord(item: Record<string, unknown> | undefined): EnvironmentRecord | undefined {
  if (!item) return undefined;
  return EnvironmentRecord.parse(item);
}


export async function getEnvironment(name: string): Promise<EnvironmentRecord | undefined> {
  const { Item } = await dynamoClient().send(
    new GetCommand({ TableName: settings.tableName(), Key: { pk: environmentKey(name) }, ConsistentRead: true }),
  );
  return toRecord(Item);
}

/** Environments of one owner (index query), or of everyone (scan: the table holds at most a few hundred). */
export async function listEnvironments(options: { owner?: string; includeDeleted?: boolean } = {}): Promise<EnvironmentRecord[]> {
  if (!options.owner) return scanEnvironments(options);
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(
      new QueryCommand({
        TableName: settings.tableName(),
        IndexName: REGISTRY_TABLE.ownerIndex.name,
        KeyConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': options.owner },
        ExclusiveStartKey,
      }),
    );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return recordsOf(items, options);
}

/**
 * Everyone's environments (a scan: the table holds at most a few hundred). Its own function so that callers
 * which never list by owner (the uninstall guard, the idle-expiry check) need no Query permission.
 */
export async function scanEnvironments(options: { includeDeleted?: boolean } = {}): Promise<EnvironmentRecord[]> {
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamoClient().send(
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
  return recordsOf(items, options);
}

function recordsOf(items: Record<string, unknown>[], options: { includeDeleted?: boolean }): EnvironmentRecord[] {
  return items
    .map((item) => EnvironmentRecord.parse(item))
    .filter((record) => options.includeDeleted || record.status !== 'DELETED')
    .sort((a, b) => a.name.localeCompare(b.name));
}

const isLive = (status: EnvironmentStatus) => LIVE_STATUSES.includes(status);

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
  if (!reasons) {
    await announce(record);
    return;
  }
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
  /**
   * Further conditions on the record's own attributes, all of which must hold: a change decided on what was
   * read (idle expiry: not exempt, announced at this very time) is not made once another writer changed it.
   */
  where?: readonly RecordCondition[];
}

/** One condition of Transition.where: the attribute equals the value, or is anything but true (absent included). */
export type RecordCondition =
  | { attribute: keyof EnvironmentRecord; equals: string | number | boolean }
  | { attribute: keyof EnvironmentRecord; notTrue: true };

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
  (change.where ?? []).forEach((where, index) => {
    names[`#where${index}`] = where.attribute;
    if ('equals' in where) {
      values[`:where${index}`] = where.equals;
      condition += ` AND #where${index} = :where${index}`;
    } else {
      values[`:where${index}`] = true;
      condition += ` AND (attribute_not_exists(#where${index}) OR #where${index} <> :where${index})`;
    }
  });
  const update: RecordUpdate = {
    TableName: settings.tableName(),
    Key: { pk: environmentKey(name) },
    UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    ConditionExpression: `attribute_exists(pk) AND ${condition}`,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };

  const delta = liveDeltaOf(change);
  if (delta !== 0) return announce(await countedTransition(name, change, update, delta), change);
  try {
    const { Attributes } = await dynamoClient().send(new UpdateCommand({ ...update, ReturnValues: 'ALL_NEW' }));
    return announce(EnvironmentRecord.parse(Attributes), change);
  } catch (error) {
    if (isConditionFailure(error)) throw await conflictOf(name, change);
    throw error;
  }
}

/**
 * Every status written goes out from here, once the write has succeeded: its metrics and its EventBridge
 * event (events.ts; a failed publish is logged, never thrown). A write that keeps the status (a new reason
 * only) announces nothing.
 */
async function announce<R extends EnvironmentRecord>(record: R, change?: Transition): Promise<R> {
  if (change && change.from.every((status) => status === change.to)) return record;
  recordStatusChange(record);
  await publishStatusChange(record);
  return record;
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
