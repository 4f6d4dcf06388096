/**
 * The registry: one DynamoDB table holding every environment record (and the API's idempotency records).
 * All status changes are conditional writes, so two requests (or a request and a workflow) can never
 * both win: the loser gets a domain error the API turns into a 409.
 *
 * Items:  pk = "ENV#<name>"          an EnvironmentRecord, plus `kind` and the `owner` GSI key
 *         pk = "IDEMPOTENCY#<hash>"  a stored API answer, expiring after a day (TTL `expiresAt`)
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from './clients';
import { EnvironmentRecord, type EnvironmentStatus, LIVE_STATUSES } from './environment';
import { EnvironmentStateConflictError, NameTakenError } from './errors';
import { settings } from './settings';

/** Table layout, shared with the CDK table (infra/registry.ts) and local bootstrap. */
export const REGISTRY_TABLE = {
  partitionKey: 'pk',
  ownerIndex: { name: 'byOwner', partitionKey: 'owner', sortKey: 'name' },
  ttlAttribute: 'expiresAt',
} as const;

const environmentKey = (name: string) => `ENV#${name}`;
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

/** Environments that hold (or may hold) AWS resources: what quotas count. */
export async function countLiveEnvironments(owner?: string): Promise<number> {
  const records = await listEnvironments({ owner });
  return records.filter((record) => LIVE_STATUSES.includes(record.status)).length;
}

/**
 * Writes a new CREATING record. Succeeds only if the name is free: never used, or DELETED at exactly the
 * generation the caller read (so two teammates racing for a freed name cannot both win).
 */
export async function putNewEnvironment(record: EnvironmentRecord, replacingDeletedGeneration?: number): Promise<void> {
  const condition =
    replacingDeletedGeneration === undefined
      ? { ConditionExpression: 'attribute_not_exists(pk)' }
      : {
          ConditionExpression: '#status = :deleted AND #generation = :generation',
          ExpressionAttributeNames: { '#status': 'status', '#generation': 'generation' },
          ExpressionAttributeValues: { ':deleted': 'DELETED', ':generation': replacingDeletedGeneration },
        };
  try {
    await dynamoClient().send(
      new PutCommand({
        TableName: settings.tableName(),
        Item: { pk: environmentKey(record.name), kind: 'environment', ...EnvironmentRecord.parse(record) },
        ...condition,
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) {
      throw new NameTakenError(`The name "${record.name}" was taken a moment ago by another request; choose another name.`);
    }
    throw error;
  }
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
  try {
    const { Attributes } = await dynamoClient().send(
      new UpdateCommand({
        TableName: settings.tableName(),
        Key: { pk: environmentKey(name) },
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: `attribute_exists(pk) AND ${condition}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return EnvironmentRecord.parse(Attributes);
  } catch (error) {
    if (isConditionFailure(error)) {
      const current = await getEnvironment(name);
      throw new EnvironmentStateConflictError(
        current
          ? `The environment "${name}" is ${current.status} (generation ${current.generation}); it cannot become ${change.to} from there.`
          : `The environment "${name}" does not exist.`,
      );
    }
    throw error;
  }
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
