/**
 * The local stand-in for API Gateway (REST API, Lambda proxy integration, AWS_IAM auth): a node:http
 * server on 127.0.0.1 that authenticates the caller (./identity.ts), turns the request into the proxy
 * event API Gateway would send (version 1.0), calls the API handler in-process and writes its answer back.
 *
 * Like API Gateway it answers some requests itself, before any handler runs, and in API Gateway's order:
 * a method and path that are no route of the API, then an unsigned or unattributable request, then a body
 * over the payload limit; afterwards a handler that crashes or answers nonsense. Each of those answers is
 * rendered from the gateway responses the stack deploys (infra/api.ts GATEWAY_PROBLEMS and problemTemplate),
 * so local mode answers with the status and problem `type` a client meets on AWS. It also serves the API's
 * OpenAPI document at GET /openapi.json, unsigned: it is documentation.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { buildOpenApiDocument, openApiJson } from '../../lambdas/api/openapi';
import { matchResource } from '../../lambdas/api/router';
import { ForbiddenError, UnauthenticatedError } from '../../lambdas/core/errors';
import { GATEWAY_MESSAGE_VARIABLE, GATEWAY_PROBLEMS, problemTemplate } from '../api';
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
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Where the OpenAPI document is served. */
export const OPENAPI_PATH = '/openapi.json';

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
  /** The deployment's vCPU ceiling, for the OpenAPI document (default: the stack's default). */
  maxVcpusCeiling?: number;
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

/**
 * An answer API Gateway gives on its own: one of its gateway response types (as infra/api.ts names them)
 * and API Gateway's message, which the deployed template puts in `gatewayMessage`.
 */
export class GatewayRefusal extends Error {
  constructor(
    readonly responseType: string,
    gatewayMessage: string,
    /** The status of a catch-all (DEFAULT_4XX, DEFAULT_5XX), which keeps the one of what went wrong. */
    readonly originalStatus?: number,
  ) {
    super(gatewayMessage);
  }
}

/** API Gateway's own messages, for the answers where local mode has nothing more to say. */
const GATEWAY_MESSAGES = {
  missingToken: 'Missing Authentication Token',
  tooLarge: 'Request Too Long',
  internal: 'Internal server error',
};

export interface GatewayAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The answer the deployed API gives for a gateway response type: the stack's own template with API Gateway's
 * message put in as API Gateway puts it (quoted), its status (or, for a catch-all, the original one) and headers.
 */
export function gatewayAnswer(refusal: GatewayRefusal): GatewayAnswer {
  const problem = GATEWAY_PROBLEMS.find((candidate) => candidate.type.responseType === refusal.responseType);
  if (!problem) throw new Error(`infra/api.ts deploys no gateway response ${refusal.responseType}.`);
  const quoted = JSON.stringify(refusal.message);
  return {
    status: problem.status ?? refusal.originalStatus ?? 500,
    headers: {
      'content-type': 'application/problem+json',
      ...(problem.retryAfterSeconds ? { 'retry-after': String(problem.retryAfterSeconds) } : {}),
    },
    body: problemTemplate(problem).split(GATEWAY_MESSAGE_VARIABLE).join(quoted),
  };
}

function writeAnswer(response: ServerResponse, answer: GatewayAnswer, requestId: string): void {
  response.writeHead(answer.status, {
    ...answer.headers,
    'content-length': Buffer.byteLength(answer.body),
    'x-amzn-requestid': requestId,
  });
  response.end(answer.body);
}

/**
 * A map for names the caller chooses (headers, query parameters): without a prototype, a name such as
 * `__proto__` or `constructor` is an entry like any other, never an object's built-in property.
 */
function callerNamedMap<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function headerMaps(request: IncomingMessage) {
  // rawHeaders keeps the caller's spelling, which API Gateway passes on as sent.
  const headers = callerNamedMap<string>();
  const multiValueHeaders = callerNamedMap<string[]>();
  for (let index = 0; index < request.rawHeaders.length; index += 2) {
    const name = request.rawHeaders[index]!;
    const value = request.rawHeaders[index + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  return { headers, multiValueHeaders };
}

function queryMaps(query: URLSearchParams) {
  const single = callerNamedMap<string>();
  const multi = callerNamedMap<string[]>();
  for (const [key, value] of query) {
    single[key] = value;
    (multi[key] ??= []).push(value);
  }
  const any = Object.keys(single).length > 0;
  return { queryStringParameters: any ? single : null, multiValueQueryStringParameters: any ? multi : null };
}

/**
 * The request body, or REQUEST_TOO_LARGE past API Gateway's limit. A body that is too large is refused at
 * once and the rest of it read and dropped, so the answer reaches the caller over the same connection.
 */
function readBody(request: IncomingMessage): Promise<Buffer> {
  const tooLarge = new GatewayRefusal('REQUEST_TOO_LARGE', GATEWAY_MESSAGES.tooLarge);
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.reject(tooLarge);
  return new Promise((read, failed) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      // A promise settles once: the first chunk past the limit refuses, the later ones are dropped.
      chunks.length = 0;
      failed(tooLarge);
    });
    request.on('end', () => read(Buffer.concat(chunks)));
    request.on('error', failed);
  });
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

/** Writes the handler's proxy result; anything that is not one is API Gateway's 502 ("Malformed Lambda proxy response"). */
function writeResult(response: ServerResponse, result: unknown, requestId: string): number {
  const proxy = result as Partial<APIGatewayProxyResult> | null;
  if (!proxy || typeof proxy !== 'object' || !Number.isInteger(proxy.statusCode)) {
    console.error('The API handler answered something that is not a proxy result (statusCode missing):', result);
    throw new GatewayRefusal('DEFAULT_5XX', GATEWAY_MESSAGES.internal, 502);
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

/**
 * Who is calling, or API Gateway's refusal: no signature at all is MISSING_AUTHENTICATION_TOKEN, one that
 * cannot be checked (not SigV4, incomplete, for another service or region, a key of nobody) INVALID_SIGNATURE.
 * Locally the resolver's sentence, which says how to sign, is the gateway's message.
 */
async function authenticate(identity: IdentityResolver, request: IncomingMessage, url: URL): Promise<CallerIdentity> {
  try {
    return await identity.resolve(request.headers, url.searchParams);
  } catch (error) {
    if (error instanceof UnauthenticatedError) throw new GatewayRefusal('MISSING_AUTHENTICATION_TOKEN', error.message);
    if (error instanceof ForbiddenError) throw new GatewayRefusal('INVALID_SIGNATURE', error.message);
    throw error;
  }
}

/** Serves the API on 127.0.0.1:port (a free port when none is given). */
export async function startHttpAdapter(options: HttpAdapterOptions): Promise<HttpAdapter> {
  const stage = options.stage ?? 'local';
  // Known once the server listens; the document names it as its server.
  let adapterUrl = '';
  let openApiText: string | undefined;

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = Date.now();
    const requestId = randomUUID();
    // The request target is a path; resolved against a base, `//host/...` would be read as another host's path.
    const url = new URL(`http://127.0.0.1${request.url?.startsWith('/') ? request.url : '/'}`);
    const method = request.method ?? 'GET';
    let caller: CallerIdentity | undefined;
    let status = 500;
    try {
      if (method === 'GET' && url.pathname === OPENAPI_PATH) {
        openApiText ??= openApiJson(
          buildOpenApiDocument({ maxVcpusCeiling: options.maxVcpusCeiling, servers: [{ url: adapterUrl, description: 'This local mode.' }] }),
        );
        status = 200;
        response.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(openApiText),
          'x-amzn-requestid': requestId,
        });
        response.end(openApiText);
        return;
      }
      // API Gateway finds the method first: a method or path it does not declare is "Missing Authentication
      // Token" (403), signed or not, so an unsigned caller learns nothing about which paths exist.
      const matched = matchResource(options.routes, url.pathname);
      const declared = matched !== undefined && options.routes.some((route) => route.pattern === matched.pattern && route.method === method);
      if (!matched || !declared) throw new GatewayRefusal('MISSING_AUTHENTICATION_TOKEN', GATEWAY_MESSAGES.missingToken);
      caller = await authenticate(options.identity, request, url);
      const body = await readBody(request);
      const pathParameters = Object.keys(matched.pathParameters).length > 0 ? matched.pathParameters : null;
      const event = proxyEvent({ request, url, body, resource: matched.pattern, pathParameters, caller, accountId: options.accountId, stage, requestId });
      let result: APIGatewayProxyResult;
      try {
        result = await options.handler(event, lambdaContext(options.functionName, options.region, options.accountId, requestId));
      } catch (error) {
        // On AWS the function's error goes to its log, and the caller gets API Gateway's 502 without it.
        console.error(`The API handler failed on ${method} ${url.pathname}:`, error);
        throw new GatewayRefusal('DEFAULT_5XX', GATEWAY_MESSAGES.internal, 502);
      }
      status = writeResult(response, result, requestId);
    } catch (error) {
      let refusal: GatewayRefusal;
      if (error instanceof GatewayRefusal) {
        refusal = error;
      } else {
        console.error(`The local API gateway failed on ${method} ${url.pathname}:`, error);
        refusal = new GatewayRefusal('DEFAULT_5XX', GATEWAY_MESSAGES.internal, 500);
      }
      const answer = gatewayAnswer(refusal);
      status = answer.status;
      // A body left unread (refused before it was read, or too large) is drained, so the connection stays usable.
      request.resume();
      writeAnswer(response, answer, requestId);
    } finally {
      options.onRequest?.({ method, path: url.pathname + url.search, status, caller: caller?.userArn, ms: Date.now() - started });
    }
  }

  const server: Server = createServer((request, response) => void serve(request, response));
  await new Promise<void>((listening, failed) => {
    server.once('error', failed);
    server.listen(options.port ?? 0, '127.0.0.1', () => listening());
  });
  const port = (server.address() as AddressInfo).port;
  adapterUrl = `http://127.0.0.1:${port}`;
  return {
    url: adapterUrl,
    port,
    stop: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}
