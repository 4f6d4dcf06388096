/**
 * The one metrics module: CloudWatch metrics written as Embedded Metric Format log lines (Powertools
 * Metrics), so they cost nothing beyond the log ingestion of the line itself: no PutMetricData call, no
 * permission, nothing billed while idle. Namespace "mfenv", with the service as the one dimension. Each
 * handler flushes what its invocation recorded with `metricsMiddleware()` (Powertools' logMetrics).
 */
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { EnvironmentRecord } from './environment';
import { logger } from './logger';

export const METRICS_NAMESPACE = 'mfenv';

/** Every metric mfenv writes, by name (DESIGN §10). */
export const METRIC = {
  created: 'EnvironmentsCreated',
  failed: 'EnvironmentsFailed',
  refused: 'EnvironmentsRefused',
  secondsToReady: 'SecondsToReady',
  eventsNotPublished: 'StatusEventsNotPublished',
} as const;

const EMPTY_FLUSH_WARNING = 'No application metrics to publish';

export const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'mfenv',
  // Powertools' own warnings go through the one logger. Most invocations record no metric: a warning at
  // each of their flushes would only add log lines to pay for.
  logger: {
    debug: logger.debug.bind(logger),
    info: logger.info.bind(logger),
    error: logger.error.bind(logger),
    warn: (...content: unknown[]) => {
      if (!String(content[0]).startsWith(EMPTY_FLUSH_WARNING)) Reflect.apply(logger.warn, logger, content);
    },
  },
});

/** The middy middleware that writes the invocation's metrics when it ends, answered or failed. */
export const metricsMiddleware = () => logMetrics(metrics);

/** A POST /environments accepted (202): the record is CREATING and its workflow started. */
export function recordEnvironmentCreated(): void {
  metrics.addMetric(METRIC.created, MetricUnit.Count, 1);
}

/** An environment that became CREATE_FAILED (rolled back, or its workflow never started). */
export function recordEnvironmentFailed(): void {
  metrics.addMetric(METRIC.failed, MetricUnit.Count, 1);
}

/**
 * A POST /environments answered 4xx for a quota, an admission rule or a name taken; `reason` is the error's
 * name as the problem reports it (QuotaExceededError, NameTakenError...).
 */
export function recordEnvironmentRefused(reason: string): void {
  // The reason as metadata, not a dimension: one metric to alarm or graph on, the reason in the log line.
  metrics.addMetadata('refusal', reason);
  metrics.addMetric(METRIC.refused, MetricUnit.Count, 1);
}

/** Seconds from the record's creation to READY (markReady). */
export function recordEnvironmentReady(seconds: number): void {
  metrics.addMetric(METRIC.secondsToReady, MetricUnit.Seconds, seconds);
}

/** A status-change event EventBridge did not take (the transition itself stands). */
export function recordEventNotPublished(): void {
  metrics.addMetric(METRIC.eventsNotPublished, MetricUnit.Count, 1);
}

/** The metrics a written status change implies: a failure counted, or the time a create took to be READY. */
export function recordStatusChange(record: Pick<EnvironmentRecord, 'status' | 'createdAt' | 'updatedAt'>): void {
  if (record.status === 'CREATE_FAILED') recordEnvironmentFailed();
  if (record.status === 'READY') {
    const seconds = (Date.parse(record.updatedAt) - Date.parse(record.createdAt)) / 1000;
    if (Number.isFinite(seconds) && seconds >= 0) recordEnvironmentReady(Math.round(seconds));
  }
}
