/**
 * Status changes as EventBridge events on the account's default bus (DESIGN §10): `source` "mfenv",
 * `detail-type` "Environment <STATUS>", and a detail that says which environment, whose, and why, with
 * nothing secret in it. An owner routes them to chat or email with a rule of their own.
 *
 * Publishing is best effort: the registry write is the truth and has already happened, so an event
 * EventBridge does not take is logged and counted (StatusEventsNotPublished), never thrown. A Lambda
 * stopped between the write and the publish also loses the event: at most once, not exactly once.
 */
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { eventsClient } from './clients';
import type { EnvironmentRecord, EnvironmentStatus } from './environment';
import { messageOf } from './errors';
import { logger } from './logger';
import { recordEventNotPublished } from './metrics';

export const EVENT_SOURCE = 'mfenv';

/** The detail-type of each status's event. */
export const detailTypeOf = (status: EnvironmentStatus) => `Environment ${status}`;

/** What an event tells: who, what, why, and where the data lives once there is any. */
export interface StatusChangeDetail {
  name: string;
  owner: string;
  status: EnvironmentStatus;
  statusReason: string | null;
  generation: number;
  region: string;
  /** The environment's bucket and job queue, once READY (the config holds nothing else a rule needs). */
  bucket?: string;
  jobQueueArn?: string;
  /** A bucket kept with its data after a delete or a rollback. */
  retainedBucket?: string;
  updatedAt: string;
}

export function statusChangeDetail(record: EnvironmentRecord): StatusChangeDetail {
  return {
    name: record.name,
    owner: record.owner,
    status: record.status,
    statusReason: record.statusReason,
    generation: record.generation,
    region: record.region,
    ...(record.status === 'READY' && record.resources ? { bucket: record.resources.bucket, jobQueueArn: record.resources.jobQueueArn } : {}),
    ...(record.retainedBucket ? { retainedBucket: record.retainedBucket } : {}),
    updatedAt: record.updatedAt,
  };
}

/** Publishes the event of a status change just written. Never throws: see the module's comment. */
export async function publishStatusChange(record: EnvironmentRecord): Promise<void> {
  try {
    const { FailedEntryCount, Entries } = await eventsClient().send(
      new PutEventsCommand({
        Entries: [
          {
            Source: EVENT_SOURCE,
            DetailType: detailTypeOf(record.status),
            Detail: JSON.stringify(statusChangeDetail(record)),
          },
        ],
      }),
    );
    // PutEvents answers 200 even when it refuses an entry: the refusal is in the entry.
    if (FailedEntryCount) throw new Error(`${Entries?.[0]?.ErrorCode ?? 'refused'}: ${Entries?.[0]?.ErrorMessage ?? 'no reason given'}`);
  } catch (error) {
    recordEventNotPublished();
    logger.warn('status change recorded, but its event was not published', { status: record.status, error: messageOf(error) });
  }
}

/**
 * Publishes an event about an environment that is not a status change (idle expiry's announcement and its
 * withdrawal): `detail-type` as given, the same detail as a status change plus `extra`. Never throws, as
 * publishStatusChange: the registry write it follows is the truth.
 */
export async function publishEnvironmentEvent(detailType: string, record: EnvironmentRecord, extra: Record<string, unknown> = {}): Promise<void> {
  try {
    const { FailedEntryCount, Entries } = await eventsClient().send(
      new PutEventsCommand({
        Entries: [{ Source: EVENT_SOURCE, DetailType: detailType, Detail: JSON.stringify({ ...statusChangeDetail(record), ...extra }) }],
      }),
    );
    if (FailedEntryCount) throw new Error(`${Entries?.[0]?.ErrorCode ?? 'refused'}: ${Entries?.[0]?.ErrorMessage ?? 'no reason given'}`);
  } catch (error) {
    recordEventNotPublished();
    logger.warn('environment change recorded, but its event was not published', { detailType, error: messageOf(error) });
  }
}
