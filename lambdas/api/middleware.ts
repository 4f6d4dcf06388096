/**
 * The one middy middleware bundle every route goes through. Before a route handler runs it:
 *   1. lower-cases header names (HTTP headers are case-insensitive; API Gateway passes them as sent),
 *   2. puts requestId and route on the shared logger (Powertools' injectLambdaContext, before this one, adds
 *      the Lambda request id, cold start and X-Ray trace id, and drops every key when the request is answered),
 *   3. identifies the caller from requestContext.identity.userArn (AWS_IAM auth) — none → 401,
 *   4. finds the route — none → 404, wrong method → 405 with Allow,
 *   5. reads the query (each parameter once) and, for routes that take one, the JSON body
 *      (not JSON by Content-Type → 415, malformed or nested deeper than MAX_BODY_DEPTH → 400 saying why).
 * Whatever is thrown on the way (here, in the route, in the domain) becomes an RFC 9457 problem: the errors
 * listed in HTTP_ERRORS with their status and title, anything else a 500 with a neutral sentence, logged.
 */
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { callerFrom } from '../core/access';
import {
  HTTP_ERRORS,
  IdempotencyKeyInProgressError,
  MethodNotAllowedError,
  MfenvError,
  UnsupportedMediaTypeError,
  ValidationError,
  WorkflowUnavailableError,
  messageOf,
} from '../core/errors';
import { logger } from '../core/logger';
import { recordEnvironmentRefused } from '../core/metrics';
import { settings } from '../core/settings';
import { type ApiRequest, type ApiResult, problemResult, problemTypeOf } from './http';
import { type Route, matchRoute } from './router';

/** The proxy event, plus what the middleware made of it for the route handler. */
export type ApiEvent = APIGatewayProxyEvent & { api?: { request: ApiRequest; route: Route } };

/** Seconds a client should wait before retrying a 503 (a workflow that could not be started). */
const RETRY_AFTER_UNAVAILABLE_SECONDS = 30;

/**
 * A map for names the caller chooses (headers, query parameters): without a prototype, a name such as
 * `__proto__` or `constructor` is an entry like any other, never an object's built-in property.
 */
function callerNamedMap(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}

/** Header names in lower case; a header sent several times keeps its last value, as API Gateway's `headers` does. */
export function normalizeHeaders(event: Pick<APIGatewayProxyEvent, 'headers' | 'multiValueHeaders'>): Record<string, string> {
  const headers = callerNamedMap();
  for (const [name, values] of Object.entries(event.multiValueHeaders ?? {})) {
    const last = Array.isArray(values) ? values.at(-1) : undefined;
    if (typeof last === 'string') headers[name.toLowerCase()] = last;
  }
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (typeof value === 'string') headers[name.toLowerCase()] = value;
  }
  return headers;
}

/** Query parameters, each at most once: a repeated one is ambiguous, so it is refused rather than guessed. */
export function queryOf(event: Pick<APIGatewayProxyEvent, 'queryStringParameters' | 'multiValueQueryStringParameters'>) {
  const repeated = Object.entries(event.multiValueQueryStringParameters ?? {})
    .filter(([, values]) => Array.isArray(values) && values.length > 1)
    .map(([name]) => name);
  if (repeated.length > 0) {
    const errors = repeated.map((field) => ({ field, message: 'is given more than once; give it once' }));
    throw new ValidationError(`The query is not valid: ${repeated.join(', ')} given more than once.`, errors);
  }
  const query = callerNamedMap();
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (typeof value === 'string') query[name] = value;
  }
  return query;
}

/** application/json, or any application/<something>+json, whatever the parameters (charset...). */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return mediaType === 'application/json' || /^application\/[\w.+-]+\+json$/.test(mediaType);
}

const EXAMPLE_BODY = 'send a JSON object such as {"name": "alice", "maxVcpus": 16, "gpu": false}';

/**
 * The deepest nesting of objects and arrays a body may have. A create request is one flat object (depth 1);
 * the margin keeps the answer to a slightly wrong body a precise validation error, while a body nested
 * thousands of levels deep (API Gateway delivers up to 10 MB) is refused before anything walks it
 * recursively (the idempotency hash, validation, logging) and could exhaust the stack.
 */
export const MAX_BODY_DEPTH = 32;

export function tooDeepError(): ValidationError {
  return new ValidationError(
    `The body nests objects or arrays more than ${MAX_BODY_DEPTH} levels deep, which no request needs: ${EXAMPLE_BODY}.`,
    [{ field: 'body', message: `is nested more than ${MAX_BODY_DEPTH} levels deep` }],
  );
}

/** Whether a parsed JSON value nests objects or arrays deeper than `max`; iterative, so any depth is safe to measure. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (pending.length > 0) {
    const next = pending.pop()!;
    if (next.value === null || typeof next.value !== 'object') continue;
    if (next.depth > max) return true;
    for (const item of Object.values(next.value)) pending.push({ value: item, depth: next.depth + 1 });
  }
  return false;
}

/** The JSON body of a request; 415 unless declared JSON, 400 when empty, not JSON or nested too deep. */
export function parseJsonBody(event: Pick<APIGatewayProxyEvent, 'body' | 'isBase64Encoded'>, headers: Record<string, string>): unknown {
  const contentType = headers['content-type'];
  if (!isJsonMediaType(contentType)) {
    throw new UnsupportedMediaTypeError(
      `The body must be JSON, sent with the header Content-Type: application/json` +
        (contentType ? ` (this request says ${contentType}).` : ' (this request has no Content-Type).'),
    );
  }
  const text = event.body == null ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (text.trim() === '') {
    throw new ValidationError(`The request has no body: ${EXAMPLE_BODY}.`, [{ field: 'body', message: 'is required' }]);
  }
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch (error) {
    throw new ValidationError(`The body is not valid JSON (${messageOf(error)}): ${EXAMPLE_BODY}.`, [
      { field: 'body', message: 'is not valid JSON' },
    ]);
  }
  if (nestsDeeperThan(body, MAX_BODY_DEPTH)) throw tooDeepError();
  return body;
}

/** The problem document (and extra headers) for anything thrown while serving a request. */
export function problemFor(error: unknown, instance: string, requestId: string): ApiResult {
  // Only our own errors speak to the caller: an SDK error that happens to share a name must not become a 4xx.
  const known = error instanceof MfenvError ? HTTP_ERRORS[error.name] : undefined;
  if (!known) {
    return problemResult({
      type: problemTypeOf('InternalError'),
      title: 'Internal error',
      status: 500,
      detail: `Something went wrong on the server side, not in your request. Try again; if it keeps failing, give the platform owner the request id ${requestId}.`,
      instance,
      requestId,
    });
  }
  const mfenvError = error as MfenvError;
  const headers: Record<string, string> = {};
  if (mfenvError instanceof MethodNotAllowedError) headers.Allow = mfenvError.allow.join(', ');
  if (mfenvError instanceof WorkflowUnavailableError) headers['Retry-After'] = String(RETRY_AFTER_UNAVAILABLE_SECONDS);
  if (mfenvError instanceof IdempotencyKeyInProgressError) headers['Retry-After'] = String(mfenvError.retryAfterSeconds);
  return problemResult(
    {
      type: problemTypeOf(mfenvError.name),
      title: known.title,
      status: known.status,
      detail: mfenvError.message,
      instance,
      requestId,
      ...(mfenvError instanceof ValidationError && mfenvError.errors.length > 0 ? { errors: mfenvError.errors } : {}),
    },
    headers,
  );
}

function requestIdOf(event: APIGatewayProxyEvent, awsRequestId: string | undefined): string {
  return event.requestContext?.requestId ?? awsRequestId ?? 'unknown';
}

/**
 * A create refused by the rules rather than for its form: 403 (an owner only an admin may name), 409 (name
 * taken, a quota, an admission check). Counted (EnvironmentsRefused), as they tell the platform owner that
 * teammates hit a limit.
 */
function isRefusedCreate(event: APIGatewayProxyEvent, status: number): boolean {
  return (event.httpMethod ?? '').toUpperCase() === 'POST' && (event.resource ?? event.path) === '/environments' && (status === 403 || status === 409);
}

/**
 * The bundle. Log keys go on the shared logger (one request at a time per Lambda instance); the logger's
 * middleware (resetKeys) takes them off when the request is answered, so the next request starts clean.
 */
export function apiMiddleware(routes: readonly Route[]): MiddlewareObj<ApiEvent, APIGatewayProxyResult> {
  const startedAt = new WeakMap<object, number>();

  return {
    name: 'mfenv-api',
    before: (request) => {
      const { event } = request;
      startedAt.set(event, Date.now());
      const headers = normalizeHeaders(event);
      const requestId = requestIdOf(event, request.context?.awsRequestId);
      const method = (event.httpMethod ?? '').toUpperCase();
      const path = event.path ?? '/';
      logger.appendKeys({ requestId, route: `${method} ${event.resource ?? path}` });

      // API Gateway authenticates before it routes: so does this.
      const identity = event.requestContext?.identity;
      const caller = callerFrom(identity?.userArn, settings.admins(), identity?.user);
      logger.appendKeys({ caller: caller.arn });

      const { route, pathParameters } = matchRoute(routes, { method, path, resource: event.resource, pathParameters: event.pathParameters });
      logger.appendKeys({ route: `${route.method} ${route.pattern}` });
      const query = queryOf(event);
      const body = route.jsonBody ? parseJsonBody(event, headers) : undefined;
      event.api = {
        route,
        request: { requestId, method, path, route: route.pattern, pathParameters, query, headers, body, caller },
      };
    },
    after: (request) => {
      logger.info('request answered', { status: request.response?.statusCode, ms: Date.now() - (startedAt.get(request.event) ?? Date.now()) });
    },
    onError: (request) => {
      const { event, error } = request;
      const requestId = requestIdOf(event, request.context?.awsRequestId);
      const response = problemFor(error, event.path ?? '/', requestId);
      const ms = Date.now() - (startedAt.get(event) ?? Date.now());
      if (response.statusCode >= 500) logger.error('request failed', { status: response.statusCode, ms, error: error as Error });
      else logger.info('request refused', { status: response.statusCode, ms, detail: messageOf(error) });
      if (isRefusedCreate(event, response.statusCode)) recordEnvironmentRefused((error as Error).name);
      // Set, not returned: middy stops at an onError that returns a value, and the logger's and the metrics'
      // middlewares (used before this one, so their onError runs after it) must still reset and flush.
      request.response = response;
    },
  };
}
