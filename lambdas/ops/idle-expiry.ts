/**
 * The idle-expiry check (lambdas/core/idle-expiry.ts), run once a day by an EventBridge schedule that the
 * stack creates only when mfenv:idleExpiryDays is set (infra/idle-expiry.ts). The event carries nothing the
 * check needs. A run in which some environment could not be checked fails after checking the others, so
 * the function's Errors metric shows it; the next day's run checks again from the registry.
 */
import middy from '@middy/core';
import { type IdleCheckReport, checkIdleEnvironments, idleExpiryPolicy } from '../core/idle-expiry';
import { logger, loggerMiddleware } from '../core/logger';
import { metricsMiddleware } from '../core/metrics';

async function check(): Promise<IdleCheckReport> {
  const report = await checkIdleEnvironments(idleExpiryPolicy());
  logger.info('idle expiry checked', { ...report });
  const failed = Object.entries(report.outcomes).filter(([, outcome]) => outcome === 'failed').map(([name]) => name);
  if (failed.length > 0) throw new Error(`Idle expiry could not check ${failed.join(', ')} (see the log); the others were checked.`);
  return report;
}

export const handler = middy(check).use(loggerMiddleware()).use(metricsMiddleware());
