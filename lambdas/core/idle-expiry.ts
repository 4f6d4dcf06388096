/**
 * Idle expiry (DESIGN §6), a deploy setting that is off by default: a READY environment with no job
 * submitted to its queue for `idleDays` is announced (its statusReason, and an EventBridge event), then torn
 * down `graceDays` later as a DELETE without purge would, keeping its bucket. A job in the meantime withdraws
 * the announcement; an environment an admin exempted (`idleExpiryExempt`) is never touched.
 *
 * Activity is the newest job's createdAt on the environment's queue. Batch lists a finished job for a limited
 * time only (days), so each check records the newest one it sees as `lastActivityAt`, and idleness is
 * measured from the later of that and the record's createdAt: an environment nobody ever used is idle from
 * its creation.
 *
 * Every write is a conditional transition on the status and generation that were read (registry.ts), plus
 * the record's own idle-expiry fields where they decide: a check racing a teammate's DELETE, or an admin's
 * exemption, changes nothing.
 *
 * The clock is a parameter, so tests move time instead of waiting for it.
 */
import { ListJobsCommand } from '@aws-sdk/client-batch';
import { batchClient } from './clients';
import type { EnvironmentRecord } from './environment';
import { startTeardown } from './environments';
import { EnvironmentStateConflictError, messageOf } from './errors';
import { publishEnvironmentEvent } from './events';
import { logger } from './logger';
import * as registry from './registry';
import { settings } from './settings';

export const DAY_MS = 86_400_000;

/**
 * The check runs once a day at about the same time; EventBridge may start it a little early or late. A
 * deadline this close counts as reached, so a teardown due "in three days" does not slip to the fourth.
 */
export const SCHEDULE_SLACK_MS = 60 * 60 * 1000;

/** detail-types of the events idle expiry publishes besides the status changes (events.ts). */
export const IDLE_EXPIRY_EVENT = {
  announced: 'Environment idle expiry announced',
  withdrawn: 'Environment idle expiry withdrawn',
} as const;

export interface IdleExpiryPolicy {
  /** Days without a job before the announcement; 0: idle expiry is off. */
  idleDays: number;
  /** Days from the announcement to the teardown. */
  graceDays: number;
}

export type Clock = () => Date;

/** What the check did with one environment. */
export type IdleOutcome =
  /** A job within the idle period (recorded), or not idle long enough yet. */
  | 'active'
  /** Announced now. */
  | 'announced'
  /** Announced before, still within its grace. */
  | 'in-grace'
  /** A job ran (or an admin exempted it) after the announcement: withdrawn. */
  | 'withdrawn'
  /** Grace passed: its teardown started. */
  | 'expired'
  /** Exempted by an admin. */
  | 'exempt'
  /** Changed by someone else between the read and the write (a DELETE, a PATCH): left as it is. */
  | 'changed'
  /** The check of this environment failed (logged); the next run tries again. */
  | 'failed';

export interface IdleCheckReport {
  /** False when the setting is off: nothing was read or written. */
  enabled: boolean;
  /** Each READY environment checked, by name. */
  outcomes: Record<string, IdleOutcome>;
}

/** The deployment's policy (settings MFENV_IDLE_EXPIRY_DAYS and MFENV_IDLE_EXPIRY_GRACE_DAYS). */
export function idleExpiryPolicy(): IdleExpiryPolicy {
  return { idleDays: settings.idleExpiryDays(), graceDays: settings.idleExpiryGraceDays() };
}

const day = (iso: string | Date) => new Date(iso).toISOString().slice(0, 10);
const later = (a: string, b: string | undefined) => (b !== undefined && Date.parse(b) > Date.parse(a) ? b : a);

/** Since when the environment has been idle, as far as the registry knows: its last job, or its creation. */
export function idleSince(record: EnvironmentRecord): string {
  return later(record.createdAt, record.lastActivityAt);
}

/** The statusReason of an announced environment: what happens, when, and how to stop it. */
export function announcementReason(since: string, idleDays: number, tearDownOn: Date): string {
  return (
    `Idle since ${day(since)}: no job submitted for ${idleDays} day${idleDays === 1 ? '' : 's'}; it will be torn down on ${day(tearDownOn)} ` +
    '(its bucket kept) unless a job runs or an admin exempts it.'
  );
}

/** The statusReason the teardown starts with: it expired, and the bucket stays. */
export function expiryReason(record: EnvironmentRecord, announcedAt: string, graceDays: number): string {
  return (
    `Expired: idle since ${day(idleSince(record))}, announced on ${day(announcedAt)} and torn down after a grace of ${graceDays} ` +
    `day${graceDays === 1 ? '' : 's'}. Its bucket ${record.resources.bucket} is kept if it holds data; create the environment again to use it.`
  );
}

/**
 * The createdAt of the newest job submitted to `jobQueueArn` after `since`, or undefined. One ListJobs call:
 * with a filter, Batch returns jobs of every status, newest first (API reference, ListJobs), so the first
 * page holds the newest. The jobs are also compared here, as an emulator may not apply the filter.
 */
export async function newestJobAfter(jobQueueArn: string, since: string): Promise<string | undefined> {
  const after = Date.parse(since);
  const { jobSummaryList = [] } = await batchClient().send(
    new ListJobsCommand({ jobQueue: jobQueueArn, filters: [{ name: 'AFTER_CREATED_AT', values: [String(after)] }], maxResults: 100 }),
  );
  const newest = Math.max(...jobSummaryList.map((job) => job.createdAt ?? 0).filter((createdAt) => createdAt > after));
  return Number.isFinite(newest) ? new Date(newest).toISOString() : undefined;
}

/** Withdraws an announcement: the reason goes, and an event says why. */
async function withdraw(record: EnvironmentRecord, why: string, set: Partial<EnvironmentRecord> = {}): Promise<IdleOutcome> {
  const withdrawn = await registry.transition(record.name, {
    from: ['READY'],
    generation: record.generation,
    to: 'READY',
    statusReason: null,
    set: { ...set, idleExpiryAnnouncedAt: null },
    where: [{ attribute: 'idleExpiryAnnouncedAt', equals: record.idleExpiryAnnouncedAt! }],
  });
  await publishEnvironmentEvent(IDLE_EXPIRY_EVENT.withdrawn, withdrawn, { reason: why });
  logger.info('idle expiry withdrawn', { environment: record.name, why });
  return 'withdrawn';
}

/**
 * Checks one READY environment, as read, at `now` and acts on it. A write that finds the record changed since
 * the read (a DELETE, a PATCH, an exemption) loses its condition: 'changed', and nothing is done.
 */
export async function checkEnvironment(record: EnvironmentRecord, policy: IdleExpiryPolicy, now: Date): Promise<IdleOutcome> {
  try {
    return await act(record, policy, now);
  } catch (error) {
    if (error instanceof EnvironmentStateConflictError) return 'changed';
    throw error;
  }
}

async function act(record: EnvironmentRecord, policy: IdleExpiryPolicy, now: Date): Promise<IdleOutcome> {
  const announcedAt = record.idleExpiryAnnouncedAt ?? undefined;
  if (record.idleExpiryExempt === true) {
    return announcedAt ? withdraw(record, 'An admin exempted the environment from idle expiry.') : 'exempt';
  }

  const newest = await newestJobAfter(record.resources.jobQueueArn, idleSince(record));
  if (newest !== undefined) {
    if (announcedAt) return withdraw(record, `A job was submitted at ${newest}.`, { lastActivityAt: newest });
    await registry.transition(record.name, {
      from: ['READY'],
      generation: record.generation,
      to: 'READY',
      statusReason: record.statusReason,
      set: { lastActivityAt: newest },
    });
    return 'active';
  }

  if (announcedAt) {
    const due = Date.parse(announcedAt) + policy.graceDays * DAY_MS - SCHEDULE_SLACK_MS;
    if (now.getTime() < due) return 'in-grace';
    const { started } = await startTeardown(record, false, expiryReason(record, announcedAt, policy.graceDays), [
      { attribute: 'idleExpiryExempt', notTrue: true },
      { attribute: 'idleExpiryAnnouncedAt', equals: announcedAt },
    ]);
    if (!started) return 'changed';
    logger.info('idle environment expired: teardown started, bucket kept', { environment: record.name, announcedAt });
    return 'expired';
  }

  const since = idleSince(record);
  const idleMs = now.getTime() - Date.parse(since);
  if (idleMs < policy.idleDays * DAY_MS - SCHEDULE_SLACK_MS) return 'active';
  const idleDays = Math.max(policy.idleDays, Math.floor(idleMs / DAY_MS));
  const tearDownOn = new Date(now.getTime() + policy.graceDays * DAY_MS);
  const announced = await registry.transition(record.name, {
    from: ['READY'],
    generation: record.generation,
    to: 'READY',
    statusReason: announcementReason(since, idleDays, tearDownOn),
    set: { idleExpiryAnnouncedAt: now.toISOString() },
    where: [{ attribute: 'idleExpiryExempt', notTrue: true }],
  });
  await publishEnvironmentEvent(IDLE_EXPIRY_EVENT.announced, announced, {
    idleSince: since,
    idleDays,
    tearDownAfter: tearDownOn.toISOString(),
  });
  logger.info('idle environment announced', { environment: record.name, idleSince: since, tearDownAfter: tearDownOn.toISOString() });
  return 'announced';
}

/**
 * The check: every READY environment, one after the other (at most the account quota, 50; one ListJobs
 * each, and a write only when something changes). One environment's failure is logged and the others are
 * still checked; the report says which failed.
 */
export async function checkIdleEnvironments(policy: IdleExpiryPolicy, clock: Clock = () => new Date()): Promise<IdleCheckReport> {
  if (policy.idleDays === 0) return { enabled: false, outcomes: {} };
  const ready = (await registry.scanEnvironments()).filter((record) => record.status === 'READY');
  const outcomes: Record<string, IdleOutcome> = {};
  for (const record of ready) {
    try {
      outcomes[record.name] = await checkEnvironment(record, policy, clock());
    } catch (error) {
      logger.error('idle expiry could not check an environment', { environment: record.name, error: messageOf(error) });
      outcomes[record.name] = 'failed';
    }
  }
  return { enabled: true, outcomes };
}
