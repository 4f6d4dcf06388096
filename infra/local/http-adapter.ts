/**
 * The local stand-in for API Gateway (REST API, Lambda proxy integration, AWS_IAM auth): a node:http
 * server on 127.0.0.1 that authenticates the caller (./identity.ts), turns the request into the proxy
 * event API Gateway would send (version 1.0), calls the API handler in-process and writes its answer back.
 *
 * Like API Gateway it answers some requests itself, before any handler runs: unsigned or unattributable
 * requests (401/403), paths that are no resource of the API (404), bodies over the payload limit (413),
 * and a handler that crashes or answers nonsense (502). All of those are application/problem+json too.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { HTTP_ERRORS, MfenvError, messageOf } from '../../lambdas/core/errors';
import { type CallerIdentity, type IdentityResolver, iamRequestIdentity } from './identity';

export type ApiHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/**
 * One method of one resource of the API, as the REST API declares it (infra/api.ts) and the API's route table
 * lists it (lambdas/api/routes.ts). API Gateway matches a request to one of these and reports it as
 * `resource`, with the `{name}` parts as pathParameters; a request matching none never reaches the Lambda.
 */
export interface ApiRoute {
  method: string;
  /** e.g. /environments/{name} */
  pattern: string;
}

/** API Gateway's payload limit. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface HttpAdapterOptions {
  handler: ApiHandler;
  /** The API's resources and methods. */
  routes: readonly ApiRoute[];
  identity: IdentityResolver;
  /** The account the API belongs to (requestContext.accountId). */
  accountId: string;
  /** Name of the API Lambda (for its context object). */
  functionName: string;
  region: string;
  port?: number;
  stage?: string;
  /** Called with every request the adapter served: for a log line. */
  onRequest?: (line: { method: string; path: string; status: number; caller?: string; ms: number }) => void;
}

export interface HttpAdapter {
  /** e.g. http://127.0.0.1:3000 (the API's root: /environments hangs off it). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** An error API Gateway itself would answer, rendered like every other error of the API. */
class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The problem document API Gateway's own answers carry (see the gateway responses in infra/api.ts). */
function problem(status: number, title: string, detail: string, instance: string, requestId: string) {
  return { type: 'about:blank', title, status, detail, instance, requestId };
}

function writeProblem(
  response: ServerResponse,
  status: number,
  title: string,
  detail: string,
  instance: string,
  requestId: string,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(problem(status, title, detail, instance, requestId));
  response.writeHead(status, {
    ...headers,
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId,
  });
  response.end(text);
}

/** Which API resource a path is, and the values of its `{...}` parts (URL-decoded, as API Gateway passes them). */
export function matchResource(
  routes: readonly ApiRoute[],
  path: string,
): { resource: string; pathParameters: Record<string, string> | null } | undefined {
  const segments = path.split('/').filter((segment, index) => index > 0 || segment !== '');
  if (segments.length > 1 && segments.at(-1) === '') segments.pop(); // a trailing slash names the same resource
  for (const resource of new Set(routes.map((route) => route.pattern))) {
    const parts = resource.split('/').slice(1);
    if (parts.length !== segments.length) continue;
    const parameters: Record<string, string> = {};
    const matches = parts.every((part, index) => {
      const segment = segments[index]!;
      const parameter = /^\{(\w+)\}$/.exec(part);
      if (!parameter) return part === segment;
      if (segment === '') return false;
      try {
        parameters[parameter[1]!] = decodeURIComponent(segment);
      } catch {
        return false;
      }
      return true;
    });
    if (matches) return { resource, pathParameters: Object.keys(parameters).length > 0 ? parameters : null };
  }
  return undefined;
}

function headerMaps(request: IncomingMessage) {
  // rawHeaders keeps the caller's spelling, which API Gateway passes on as sent.
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let index = 0; index < request.rawHeaders.length; index += 2) {
    const name = request.rawHeaders[index]!;
    const value = request.rawHeaders[index + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  return { headers, multiValueHeaders };
}

function queryMaps(query: URLSearchParams) {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [key, value] of query) {
    single[key] = value;
    (multi[key] ??= []).push(value);
  }
  const any = Object.keys(single).length > 0;
  return { queryStringParameters: any ? single : null, multiValueQueryStringParameters: any ? multi : null };
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new GatewayError(413, 'Request too large', 'The request body is larger than the 10 MB API Gateway accepts.');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** 09/Apr/2015:12:34:56 +0000, as API Gateway writes requestContext.requestTime. */
function requestTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (value: number) => String(value).padStart(2, '0');
  return (
    `${two(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}

function lambdaContext(functionName: string, region: string, accountId: string, requestId: string): Context {
  const deadline = Date.now() + 29_000; // API Gateway's integration timeout
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${requestId}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The proxy event API Gateway (REST, payload 1.0) sends for this request and caller. */
export function proxyEvent(input: {
  request: IncomingMessage;
  url: URL;
  body: Buffer;
  resource: string;
  pathParameters: Record<string, string> | null;
  caller: CallerIdentity;
  accountId: string;
  stage: string;
  requestId: string;
}): APIGatewayProxyEvent {
  const { request, url, body, caller } = input;
  const now = new Date();
  const { headers, multiValueHeaders } = headerMaps(request);
  const text = body.toString('utf8');
  // API Gateway passes a text body as is; bytes that are not UTF-8 would need binary media types, so they
  // travel base64-encoded, as API Gateway sends binary payloads.
  const isText = Buffer.from(text, 'utf8').equals(body);
  return {
    resource: input.resource,
    path: url.pathname,
    httpMethod: request.method ?? 'GET',
    headers,
    multiValueHeaders,
    ...queryMaps(url.searchParams),
    pathParameters: input.pathParameters,
    stageVariables: null,
    body: body.length === 0 ? null : isText ? text : body.toString('base64'),
    isBase64Encoded: body.length > 0 && !isText,
    requestContext: {
      accountId: input.accountId,
      apiId: 'local',
      authorizer: null as never,
      domainName: request.headers.host ?? '127.0.0.1',
      domainPrefix: (request.headers.host ?? '127').split('.')[0],
      extendedRequestId: input.requestId,
      httpMethod: request.method ?? 'GET',
      identity: iamRequestIdentity(caller, request.socket.remoteAddress ?? '127.0.0.1', request.headers['user-agent'] ?? null),
      path: `/${input.stage}${url.pathname}`,
      protocol: `HTTP/${request.httpVersion}`,
      requestId: input.requestId,
      requestTime: requestTime(now),
      requestTimeEpoch: now.getTime(),
      resourceId: 'local',
      resourcePath: input.resource,
      stage: input.stage,
    },
  };
}

/** Writes the handler's proxy result; anything that is not one is API Gateway's 502. */
function writeResult(response: ServerResponse, result: unknown, requestId: string): number {
  const proxy = result as Partial<APIGatewayProxyResult> | null;
  if (!proxy || typeof proxy !== 'object' || !Number.isInteger(proxy.statusCode)) {
    throw new GatewayError(502, 'Bad gateway', 'The API handler answered something that is not a proxy result (statusCode missing).');
  }
  const headers: Record<string, string | string[]> = { 'x-amzn-requestid': requestId };
  for (const [name, value] of Object.entries(proxy.headers ?? {})) headers[name.toLowerCase()] = String(value);
  for (const [name, values] of Object.entries(proxy.multiValueHeaders ?? {})) headers[name.toLowerCase()] = values.map(String);
  const body = proxy.body === undefined || proxy.body === null ? Buffer.alloc(0) : Buffer.from(proxy.body, proxy.isBase64Encoded ? 'base64' : 'utf8');
  headers['content-length'] = String(body.length);
  response.writeHead(proxy.statusCode!, headers);
  response.end(body);
  return proxy.statusCode!;
}

/** Serves the API on 127.0.0.1:port (a free port when none is given). */
export async function startHttpAdapter(options: HttpAdapterOptions): Promise<HttpAdapter> {
  const stage = options.stage ?? 'local';

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = Date.now();
    const requestId = randomUUID();
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    let caller: CallerIdentity | undefined;
    let status = 500;
    try {
      // API Gateway authenticates before it looks at anything else.
      caller = await options.identity.resolve(request.headers, url.searchParams);
      const matched = matchResource(options.routes, url.pathname);
      if (!matched) {
        throw new GatewayError(
          404,
          'No such route',
          `${url.pathname} is not a resource of this API: use /environments, /environments/{name} or /environments/{name}/config.`,
        );
      }
      const methods = options.routes.filter((route) => route.pattern === matched.resource).map((route) => route.method);
      if (!methods.includes(request.method ?? '')) {
        throw new GatewayError(405, 'Method not allowed', `${matched.resource} answers ${methods.join(' and ')}, not ${request.method}.`, {
          allow: methods.join(', '),
        });
      }
      const body = await readBody(request);
      const event = proxyEvent({ request, url, body, ...matched, caller, accountId: options.accountId, stage, requestId });
      let result: APIGatewayProxyResult;
      try {
        result = await options.handler(event, lambdaContext(options.functionName, options.region, options.accountId, requestId));
      } catch (error) {
        console.error(`The API handler failed on ${request.method} ${url.pathname}:`, error);
        throw new GatewayError(502, 'Bad gateway', `The API handler failed (${messageOf(error)}); the request id is ${requestId}.`);
      }
      status = writeResult(response, result, requestId);
    } catch (error) {
      if (error instanceof GatewayError) {
        status = error.status;
        writeProblem(response, status, error.title, error.message, url.pathname, requestId, error.headers);
      } else if (error instanceof MfenvError && HTTP_ERRORS[error.name]) {
        const { status: errorStatus, title } = HTTP_ERRORS[error.name]!;
        status = errorStatus;
        writeProblem(response, status, title, error.message, url.pathname, requestId);
      } else {
        console.error(`The local API gateway failed on ${request.method} ${url.pathname}:`, error);
        status = 500;
        writeProblem(response, status, 'Internal error', `The local API gateway failed: ${messageOf(error)}`, url.pathname, requestId);
      }
    } finally {
      options.onRequest?.({ method: request.method ?? 'GET', path: url.pathname + url.search, status, caller: caller?.userArn, ms: Date.now() - started });
    }
  }

  const server: Server = createServer((request, response) => void serve(request, response));
  await new Promise<void>((listening, failed) => {
    server.once('error', failed);
    server.listen(options.port ?? 0, '127.0.0.1', () => listening());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}
