/**
 * The one logger. Structured JSON (Powertools), service name "mfenv"; every log line of a request or a
 * workflow step carries the environment name once it is known (appendKeys in the handler wrappers).
 */
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'mfenv',
  logLevel: (process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'INFO') as 'INFO',
});
