/**
 * API Gateway REST proxy events (payload 1.0, AWS_IAM auth) for calling the API handler in-process, and the
 * answer read back as a test wants it: status, lower-case headers, parsed JSON.
 */
import { createHash } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { iamRequestIdentity } from '../../infra/local/identity';
import { resetClients } from '../../lambdas/core/clients';
import { logger } from '../../lambdas/core/logger';
import { SETTING } from '../../lambdas/core/settings';

export const ACCOUNT_ID = '123456789012';

/** The ARN API Gateway reports for an IAM user of the emulator's account. */
export const userArn = (name: string) => `arn:aws:iam::${ACCOUNT_ID}:user/${name}`;

/**
 * The unique id API Gateway reports in identity.user for a principal: `AIDA…` for a user, `AROA…:<session>`
 * for a role session (the role's id). Derived from the ARN, so each test principal has its own, stable id.
 */
export function identityUserFor(arn: string): string {
  const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 17).toUpperCase();
  const session = /^arn:[^:]+:sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(arn);
  if (session) return `AROA${digest(`role/${session[2]}`)}:${session[3]}`;
  return `AIDA${digest(arn)}`;
}

/** The principal's own unique id (what an environment records as ownerUniqueId). */
export const uniqueIdFor = (arn: string) => identityUserFor(arn).split(':')[0]!;

/** The resources the REST API declares (infra/api.ts): what API Gateway reports as `resource`. */
const RESOURCES = ['/environments', '/environments/{name}', '/environments/{name}/config'];

export interface EventOptions {
  /** The caller's principal ARN; null leaves requestContext.identity.userArn out (an unattributed request). */
  caller: string | null;
  /** What API Gateway reports as identity.user (default: identityUserFor(caller)). */
  identityUser?: string;
  headers?: Record<string, string>;
  /** Sent as the raw body (malformed JSON included). */
  body?: string;
  /** Serialized as the body, with Content-Type: application/json unless headers say otherwise. */
  json?: unknown;
  query?: Record<string, string | string[]>;
  /** Override what API Gateway would report as the matched resource. */
  resource?: string;
}

let counter = 0;

/** The resource API Gateway would match for `path`, and its path parameters. */
function resourceOf(path: string): { resource: string; pathParameters: Record<string, string> | null } {
  const segments = path.split('/').slice(1);
  for (const resource of RESOURCES) {
    const parts = resource.split('/').slice(1);
    if (parts.length !== segments.length) continue;
    const parameters: Record<string, string> = {};
    const matches = parts.every((part, index) => {
      const segment = segments[index]!;
      if (part !== '{name}') return part === segment;
      parameters.name = decodeURIComponent(segment);
      return segment !== '';
    });
    if (matches) return { resource, pathParameters: Object.keys(parameters).length > 0 ? parameters : null };
  }
  return { resource: path, pathParameters: null };
}

export function apiEvent(method: string, path: string, options: EventOptions): APIGatewayProxyEvent {
  counter += 1;
  const requestId = `test-request-${counter}`;
  const headers: Record<string, string> = { Host: 'api.example.test', 'User-Agent': 'jest', ...(options.headers ?? {}) };
  let body: string | null = options.body ?? null;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  const query = options.query ?? {};
  const hasQuery = Object.keys(query).length > 0;
  const single = Object.fromEntries(Object.entries(query).map(([key, value]) => [key, Array.isArray(value) ? value.at(-1)! : value]));
  const multi = Object.fromEntries(Object.entries(query).map(([key, value]) => [key, Array.isArray(value) ? value : [value]]));
  const matched = resourceOf(path);
  const resource = options.resource ?? matched.resource;
  return {
    resource,
    path,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([key, value]) => [key, [value]])),
    queryStringParameters: hasQuery ? single : null,
    multiValueQueryStringParameters: hasQuery ? multi : null,
    pathParameters: matched.pathParameters,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: ACCOUNT_ID,
      apiId: 'test',
      authorizer: null as never,
      httpMethod: method,
      identity: iamRequestIdentity(
        options.caller
          ? { accessKeyId: 'AKIATESTTESTTEST', accountId: ACCOUNT_ID, userId: options.identityUser ?? identityUserFor(options.caller), userArn: options.caller }
          : null,
        '127.0.0.1',
        'jest',
      ),
      path: `/v1${path}`,
      protocol: 'HTTP/1.1',
      requestId,
      requestTime: '01/Jan/2026:00:00:00 +0000',
      requestTimeEpoch: 0,
      resourceId: 'test',
      resourcePath: resource,
      stage: 'v1',
    },
  };
}

export function lambdaContext(requestId = 'test-invocation'): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'mfenv-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:${ACCOUNT_ID}:function:mfenv-api`,
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: '/aws/lambda/mfenv-api',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => 29_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface Answer<T = any> {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The body parsed as JSON (undefined when empty). */
  json: T;
  body: string;
}

type ApiHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/** Calls the handler with the event, as API Gateway would, and reads the answer. */
export async function call(handler: ApiHandler, event: APIGatewayProxyEvent): Promise<Answer> {
  const result = await handler(event, lambdaContext());
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
  const body = result.body ?? '';
  return { status: result.statusCode, headers, json: body ? JSON.parse(body) : undefined, body };
}

/** A caller bound to a handler: `as.post('/environments', {json: ...})`. */
export function apiCaller(handler: ApiHandler, caller: string | null) {
  const send = (method: string, path: string, options: Omit<EventOptions, 'caller'> = {}) =>
    call(handler, apiEvent(method, path, { ...options, caller }));
  return {
    arn: caller,
    send,
    get: (path: string, options: Omit<EventOptions, 'caller'> = {}) => send('GET', path, options),
    post: (path: string, json: unknown, options: Omit<EventOptions, 'caller' | 'json'> = {}) => send('POST', path, { ...options, json }),
    delete: (path: string, options: Omit<EventOptions, 'caller'> = {}) => send('DELETE', path, options),
  };
}
export type ApiCaller = ReturnType<typeof apiCaller>;

/**
 * For unit tests of the API handler: quiet logs, and every AWS call sent to a closed local port (with a
 * table that does not exist), so a request that should be answered before any call fails loudly if it makes one.
 */
export function useUnreachableAws(): void {
  const saved = { ...process.env };
  beforeAll(() => {
    logger.setLogLevel('SILENT');
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'none',
      AWS_SECRET_ACCESS_KEY: 'none',
      [SETTING.tableName]: 'no-such-table',
    });
    resetClients();
  });
  afterAll(() => {
    process.env = saved;
    resetClients();
  });
}
