/**
 * The HTTP vocabulary of the API: the request every route handler receives (already authenticated, routed
 * and parsed by the middleware), and the answers it gives: JSON bodies, and RFC 9457 problem documents for
 * every error.
 */
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { Caller } from '../core/access';
import type { FieldError } from '../core/errors';

/** One request, as the middleware hands it to a route handler. */
export interface ApiRequest {
  requestId: string;
  method: string;
  /** The path as called, e.g. /environments/alice. */
  path: string;
  /** The route's pattern, e.g. /environments/{name}. */
  route: string;
  pathParameters: Record<string, string>;
  /** Query parameters, each given at most once. */
  query: Record<string, string>;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The parsed JSON body (routes that take one), else undefined. */
  body: unknown;
  caller: Caller;
}

export type ApiResult = APIGatewayProxyResult & { headers: Record<string, string> };

/** Responses carry environment details (ARNs, bucket names): no shared cache may keep them. */
const COMMON_HEADERS = { 'Cache-Control': 'no-store' };

export function jsonResult(statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResult {
  return {
    statusCode,
    headers: { ...COMMON_HEADERS, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** RFC 9457 problem details, plus `errors` for validation and the request id to quote to the platform owner. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  requestId?: string;
  errors?: FieldError[];
}

/** `urn:mfenv:problem:name-taken` for NameTakenError: a stable type a client can branch on. */
export function problemTypeOf(errorName: string): string {
  const stem = errorName.replace(/Error$/, '');
  return `urn:mfenv:problem:${stem.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}`;
}

export function problemResult(problem: Problem, headers: Record<string, string> = {}): ApiResult {
  return {
    statusCode: problem.status,
    headers: { ...COMMON_HEADERS, 'Content-Type': 'application/problem+json', ...headers },
    body: JSON.stringify(problem),
  };
}
