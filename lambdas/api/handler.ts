/**
 * The API Lambda: API Gateway (REST, Lambda proxy integration, AWS_IAM auth) sends every route here.
 * The middleware authenticates, routes and parses; the matched route's handler does the rest.
 */
import middy from '@middy/core';
import type { APIGatewayProxyResult, Context } from 'aws-lambda';
import { loggerMiddleware } from '../core/logger';
import { metricsMiddleware } from '../core/metrics';
import { type ApiEvent, apiMiddleware } from './middleware';
import { ROUTES } from './routes';

async function dispatch(event: ApiEvent, _context: Context): Promise<APIGatewayProxyResult> {
  // The middleware sets `api` before any handler runs, or answers the request itself.
  const { route, request } = event.api!;
  return route.handle(request);
}

// Order matters: the logger's and the metrics' middlewares come first, so their `before` runs first and
// their `after`/`onError` (reset the log keys, flush the metrics) last, once the answer is logged.
export const handler = middy(dispatch).use(loggerMiddleware()).use(metricsMiddleware()).use(apiMiddleware(ROUTES));
