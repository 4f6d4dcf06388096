/**
 * The registry table itself: its layout, and the low-level write helpers shared by the modules that own
 * its items (environment-records.ts, quota-counters.ts, idempotency-records.ts).
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from './clients';
import { TransientError } from './errors';

/** Table layout, shared with the CDK table (infra/registry.ts) and local bootstrap. */
export const REGISTRY_TABLE = {
  partitionKey: 'pk',
  ownerIndex: { name: 'byOwner', partitionKey: 'owner', sortKey: 'name' },
  ttlAttribute: 'expiresAt',
} as const;


/** A conditional write (PutItem, UpdateItem, DeleteItem) lost its condition. */
export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** One item of a TransactWriteItems, as lib-dynamodb takes it. */
export type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

/** What DynamoDB says about each item of a cancelled transaction, in the order of the items. */
export type CancellationReasons = NonNullable<TransactionCanceledException['CancellationReasons']>;

function cancellationReasonsOf(error: unknown): CancellationReasons | undefined {
  if (error instanceof TransactionCanceledException || (error as { name?: string })?.name === 'TransactionCanceledException') {
    return (error as TransactionCanceledException).CancellationReasons ?? [];
  }
  return undefined;
}

export const conditionFailed = (reasons: CancellationReasons, index: number) => reasons[index]?.Code === 'ConditionalCheckFailed';

const TRANSACTION_ATTEMPTS = 5;

/**
 * Runs one TransactWriteItems. DynamoDB cancels a transaction that collides with another one on the same
 * item (TransactionConflict) without deciding anything: it is run again, after a short random pause, until
 * it commits or a condition decides. Returns the reasons of a transaction cancelled by a condition.
 */
export async function transact(items: TransactItem[]): Promise<CancellationReasons | undefined> {
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
