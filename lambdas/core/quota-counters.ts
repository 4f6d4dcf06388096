/**
 * The quota counters of the registry table: how many environments are live (LIVE_STATUSES) in the account
 * and per teammate. Items: pk = "QUOTA#account" and pk = "QUOTA#owner#<owner>", each with `live`.
 *
 * They change only in the same transaction as the record whose status makes an environment live or not
 * (environment-records.ts): counterUpdate is one item of that transaction.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from './clients';
import { QuotaExceededError } from './errors';
import { type CancellationReasons, type TransactItem } from './registry-table';
import { settings } from './settings';

/** The counters of live environments: the account's, and one per owner. */
export const QUOTA_COUNTER_KEYS = {
  account: 'QUOTA#account',
  owner: (owner: string) => `QUOTA#owner#${owner}`,
} as const;

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

/** Adds `delta` (1 or -1) to a counter. An increment with a limit is refused at it; a decrement never goes below 0. */
export function counterUpdate(pk: string, delta: 1 | -1, limit?: number): TransactItem {
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

/** The counter a refused increment saw (the item comes back in DynamoDB's own JSON: `{ live: { N: "3" } }`). */
export function counterIn(reasons: CancellationReasons, index: number): number | undefined {
  const live = (reasons[index]?.Item as Record<string, unknown> | undefined)?.live as { N?: string } | number | undefined;
  const value = typeof live === 'number' ? live : Number(live?.N);
  return Number.isFinite(value) ? value : undefined;
}
