/**
 * The API Lambda: API Gateway (REST, Lambda proxy integration, AWS_IAM auth) sends every route here.
 * The middleware authenticates, routes and parses; the matched route's handler does the rest.
 */
import middy from '@middy/core';
import type { APIGatewayProxyResult, Context } from 'aws-lambda';
import { type ApiEvent, apiMiddleware } from './middleware';
import { ROUTES } from './routes';

async function dispatch(event: ApiEvent, _context: Context): Promise<APIGatewayProxyResult> {
  // The middleware sets `api` before any handler runs, or answers the request itself.
  const { route, request } = event.api!;
  return route.handle(request);
}

export const handler = middy(dispatch).use(apiMiddleware(ROUTES));
