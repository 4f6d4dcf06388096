/**
 * The one logger. Structured JSON (Powertools), service name "mfenv". Every handler wraps itself in
 * `loggerMiddleware()`: each line then carries the Lambda request id, the cold-start flag and the X-Ray
 * trace id, and, once known, the environment name (appendKeys in the handler wrappers).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { MiddlewareObj } from '@middy/core';

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'mfenv',
  logLevel: (process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'INFO') as 'INFO',
});

/**
 * The logger's middy middleware for a handler. `resetKeys`: the logger is shared by every invocation a warm
 * instance serves, so the keys a request appended (environment, caller, step...) are dropped when it is
 * answered, whether it succeeded or threw: the next request's lines never carry a stale environment.
 */
export function loggerMiddleware(): MiddlewareObj {
  const inner = injectLambdaContext(logger, { resetKeys: true });
  return {
    ...inner,
    // Powertools puts the constructor's level back at each invocation, for its debug-log sampling, which mfenv
    // does not use: the level stays whatever the process set (POWERTOOLS_LOG_LEVEL, or a caller silencing it).
    before: async (request) => {
      const level = logger.getLevelName();
      await inner.before?.(request);
      if (logger.getLevelName() !== level) logger.setLogLevel(level);
    },
  };
}
