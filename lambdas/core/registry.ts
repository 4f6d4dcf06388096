/**
 * The registry: one DynamoDB table holding every environment record, the quota counters and the API's
 * idempotency records. All status changes are conditional writes, so two requests (or a request and a
 * workflow) can never both win: the loser gets a domain error the API turns into a 409.
 *
 * Items:  pk = "ENV#<name>"            an EnvironmentRecord, plus `kind` and the `owner` GSI key   (environment-records.ts)
 *         pk = "QUOTA#account"         `live`: how many environments are live (LIVE_STATUSES) in the account
 *         pk = "QUOTA#owner#<owner>"   `live`: how many of them one teammate holds                  (quota-counters.ts)
 *         pk = "IDEMPOTENCY#<hash>"    a request in progress or its stored answer, expiring after a day
 *                                      (TTL `expiresAt`)                                            (idempotency-records.ts)
 *
 * The two counters are what admission control reads, and they change only in the same transaction as the
 * record whose status makes it live or not: a create is one TransactWriteItems (the conditional Put of the
 * record and a conditional increment of each counter, refused at the quota), the move to DELETED another
 * (the conditional status update and both decrements). Counting records instead (a GSI query, which is
 * never strongly consistent, and a scan) let two creates arriving together both pass a quota.
 *
 * This module gathers the three, so a caller imports one name for the whole table.
 */
export { REGISTRY_TABLE } from './registry-table';
export { getEnvironment, listEnvironments, putNewEnvironment, scanEnvironments, transition, type RecordCondition, type Transition } from './environment-records';
export { QUOTA_COUNTER_KEYS, QuotaReachedError, liveCounts, type Quotas } from './quota-counters';
export {
  IDEMPOTENCY_TTL_SECONDS,
  type KeyState,
  type StoredAnswer,
  claimKey,
  getKeyState,
  getStoredAnswer,
  releaseKey,
  storeAnswer,
} from './idempotency-records';
