/**
 * API Gateway's part of local mode: callers identified from their SigV4 signature by the emulator's STS,
 * requests turned into REST proxy events, and the answers API Gateway gives on its own rendered from the
 * gateway responses the stack deploys. The API handler here is a recorder (it answers with what it got):
 * the real one has its own tests, and the system tests run both together.
 */
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { GATEWAY_PROBLEMS } from '../../../infra/api';
import { type HttpAdapter, MAX_BODY_BYTES, startHttpAdapter } from '../../../infra/local/http-adapter';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { createIdentityResolver } from '../../../infra/local/identity';
import { problemTypeOf } from '../../../lambdas/api/http';
import { rawRequest } from '../../support/raw-request';
import { type ApiResponse, apiClient, signedFetch } from '../../support/signed-client';
import { useEmulator } from '../../support/emulator';

const { context } = useEmulator();
/** The shape of the API's route table (the real one is lambdas/api/routes.ts). */
const routes = [
  { method: 'GET', pattern: '/environments' },
  { method: 'POST', pattern: '/environments' },
  { method: 'GET', pattern: '/environments/{name}' },
  { method: 'DELETE', pattern: '/environments/{name}' },
  { method: 'GET', pattern: '/environments/{name}/config' },
];
const events: APIGatewayProxyEvent[] = [];
let adapter: HttpAdapter;
let iam: IAMClient;
let alice: { arn: string; userId: string; accessKeyId: string; secretAccessKey: string };
/** What the recorder answers; a test may replace it (a crash, something that is not a proxy result). */
let answer: (event: APIGatewayProxyEvent) => unknown;
const recorded = (event: APIGatewayProxyEvent): APIGatewayProxyResult => ({
  statusCode: 201,
  headers: { 'content-type': 'application/json', location: '/environments/x' },
  body: JSON.stringify({ seen: event.path }),
});

/** The problem document the deployed API answers with for a gateway response type, whatever its message. */
function gatewayProblem(responseType: string, status: number) {
  const problem = GATEWAY_PROBLEMS.find((candidate) => candidate.type.responseType === responseType)!;
  return {
    type: problemTypeOf(problem.errorName),
    title: problem.title,
    ...(problem.status ? { status } : {}),
    detail: problem.detail,
    gatewayMessage: expect.any(String),
  };
}

/** Asserts that `response` is API Gateway's own answer of that type, exactly as the stack's template renders it. */
function expectGatewayAnswer(response: ApiResponse, responseType: string, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  expect(response.json).toStrictEqual(gatewayProblem(responseType, status));
}

beforeAll(async () => {
  iam = new IAMClient(context.clientConfig);
  const user = (await iam.send(new CreateUserCommand({ UserName: 'alice' }))).User!;
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'alice' }))).AccessKey!;
  alice = { arn: user.Arn!, userId: user.UserId!, accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
  adapter = await startHttpAdapter({
    routes,
    identity: createIdentityResolver(context.emulator.endpoint, 'us-east-1'),
    accountId: '123456789012',
    functionName: 'mfenv-test-api',
    region: 'us-east-1',
    maxVcpusCeiling: 16,
    handler: async (event) => {
      events.push(event);
      return answer(event) as APIGatewayProxyResult;
    },
  });
});

afterAll(async () => {
  await adapter?.stop();
  iam?.destroy();
});

beforeEach(() => {
  events.length = 0;
  answer = recorded;
});

describe('local API gateway', () => {
  it('attributes a signed request to the IAM user owning the key, in a REST proxy event', async () => {
    // prepare
    const api = apiClient(adapter.url, alice);

    // act
    const response = await api.send('DELETE', '/environments/alice%2Dx', {
      json: { name: 'alice' },
      query: { purge: 'true' },
      headers: { 'Idempotency-Key': 'k1' },
    });

    // assess
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe('/environments/x');
    expect(response.json).toEqual({ seen: '/environments/alice%2Dx' });
    expect(events).toHaveLength(1);
    const event = events[0]!;
    expect(event).toMatchObject({
      httpMethod: 'DELETE',
      resource: '/environments/{name}',
      pathParameters: { name: 'alice-x' },
      queryStringParameters: { purge: 'true' },
      multiValueQueryStringParameters: { purge: ['true'] },
      body: JSON.stringify({ name: 'alice' }),
      isBase64Encoded: false,
    });
    expect(event.headers['Idempotency-Key'] ?? event.headers['idempotency-key']).toBe('k1');
    expect(event.requestContext).toMatchObject({
      accountId: '123456789012',
      httpMethod: 'DELETE',
      resourcePath: '/environments/{name}',
      identity: { userArn: 'arn:aws:iam::123456789012:user/alice', accessKey: alice.accessKeyId, accountId: '123456789012' },
    });
    // API Gateway reports an IAM user's unique id as caller and user
    expect(event.requestContext.identity).toMatchObject({ caller: alice.userId, user: alice.userId });
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("attributes a request signed with a role session's temporary credentials as API Gateway does", async () => {
    // prepare
    const trust = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'sts:AssumeRole' }],
    };
    const role = (await iam.send(new CreateRoleCommand({ RoleName: 'DataScience', AssumeRolePolicyDocument: JSON.stringify(trust) }))).Role!;
    const sts = new STSClient(context.clientConfig);
    const { Credentials: session } = await sts.send(new AssumeRoleCommand({ RoleArn: role.Arn!, RoleSessionName: 'notebook' }));
    sts.destroy();
    const api = apiClient(adapter.url, {
      accessKeyId: session!.AccessKeyId!,
      secretAccessKey: session!.SecretAccessKey!,
      sessionToken: session!.SessionToken!,
    });

    // act
    const response = await api.get('/environments');

    // assess
    expect(response.status).toBe(201);
    expect(events).toHaveLength(1);
    const event = events[0]!;
    expect(event.headers['x-amz-security-token'] ?? event.headers['X-Amz-Security-Token']).toBe(session!.SessionToken);
    expect(event.requestContext.identity).toMatchObject({
      userArn: 'arn:aws:sts::123456789012:assumed-role/DataScience/notebook',
      user: `${role.RoleId}:notebook`,
      caller: `${role.RoleId}:notebook`,
      accessKey: session!.AccessKeyId,
      accountId: '123456789012',
    });
  });

  it('answers an unsigned request as API Gateway does (MISSING_AUTHENTICATION_TOKEN), saying how to sign, without calling the handler', async () => {
    // act
    const response = await signedFetch(adapter.url, undefined, 'GET', '/environments');

    // assess
    expectGatewayAnswer(response, 'MISSING_AUTHENTICATION_TOKEN', 403);
    expect(response.json.type).toBe('urn:mfenv:problem:unauthenticated');
    expect(response.json.gatewayMessage).toContain('--aws-sigv4 "aws:amz:us-east-1:execute-api"');
    expect(response.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(events).toHaveLength(0);
  });

  it('answers a key that belongs to no principal of the account as a signature API Gateway cannot check', async () => {
    // act
    const response = await apiClient(adapter.url, { accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: 'x' }).get('/environments');

    // assess
    expectGatewayAnswer(response, 'INVALID_SIGNATURE', 403);
    expect(response.json.gatewayMessage).toContain('AKIAUNKNOWNKEY000000 belongs to no principal of this account');
    expect(response.json.gatewayMessage).toContain('--aws-sigv4');
    expect(events).toHaveLength(0);
  });

  it.each([
    ['another service', `AWS4-HMAC-SHA256 Credential=KEY/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc`, /service "s3"/],
    ['another region', `AWS4-HMAC-SHA256 Credential=KEY/20250101/eu-west-1/execute-api/aws4_request, SignedHeaders=host, Signature=abc`, /eu-west-1/],
    ['another scheme', 'Basic YWxpY2U6c2VjcmV0', /Signature Version 4/],
    ['no signature', `AWS4-HMAC-SHA256 Credential=KEY/20250101/us-east-1/execute-api/aws4_request`, /lacks/],
    ['a malformed scope', `AWS4-HMAC-SHA256 Credential=KEY/yesterday/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=abc`, /malformed/],
  ])('answers a request signed for %s as API Gateway does (INVALID_SIGNATURE)', async (_case, authorization, message) => {
    // act
    const response = await signedFetch(adapter.url, undefined, 'GET', '/environments', {
      headers: { authorization: authorization.replace('KEY', alice.accessKeyId) },
    });

    // assess
    expectGatewayAnswer(response, 'INVALID_SIGNATURE', 403);
    expect(response.json.gatewayMessage).toMatch(message);
    expect(events).toHaveLength(0);
  });

  it.each([
    ['an unknown path, signed', 'GET', '/buckets', true],
    ['an unknown path, unsigned', 'GET', '/buckets', false],
    ['a method the resource does not declare, signed', 'PUT', '/environments/alice', true],
    ['a method the resource does not declare, unsigned', 'PATCH', '/environments', false],
    ['a path below a resource', 'GET', '/environments/alice/config/extra', true],
    ['the root', 'GET', '/', true],
    ['HEAD of a resource', 'HEAD', '/environments', true],
  ])('answers %s with "Missing Authentication Token", as API Gateway does for no route', async (_case, method, path, signed) => {
    // act
    const response = await signedFetch(adapter.url, signed ? alice : undefined, method, path, method === 'PUT' ? { json: {} } : {});

    // assess
    expect(response.status).toBe(403);
    if (method !== 'HEAD') {
      expectGatewayAnswer(response, 'MISSING_AUTHENTICATION_TOKEN', 403);
      expect(response.json.gatewayMessage).toBe('Missing Authentication Token');
    }
    // no hint of which methods or paths exist
    expect(response.headers.get('allow')).toBeNull();
    expect(events).toHaveLength(0);
  });

  it("answers a body over API Gateway's payload limit with REQUEST_TOO_LARGE, without calling the handler", async () => {
    // prepare
    const body = JSON.stringify({ name: 'alice', padding: 'x'.repeat(MAX_BODY_BYTES) });

    // act
    const response = await apiClient(adapter.url, alice).send('POST', '/environments', { body });

    // assess
    expectGatewayAnswer(response, 'REQUEST_TOO_LARGE', 413);
    expect(events).toHaveLength(0);
  });

  it("answers API Gateway's 502 (DEFAULT_5XX) when the handler throws, keeping the error out of the answer", async () => {
    // prepare
    answer = () => {
      throw new Error('the handler fell over at /secret/place');
    };
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);

    // act
    const response = await apiClient(adapter.url, alice).get('/environments');

    // assess
    expectGatewayAnswer(response, 'DEFAULT_5XX', 502);
    expect(response.json).toMatchObject({ type: 'urn:mfenv:problem:internal', gatewayMessage: 'Internal server error' });
    expect(response.text).not.toContain('secret');
    expect(logged).toHaveBeenCalled();
    logged.mockRestore();
  });

  it("answers API Gateway's 502 when the handler's answer is not a proxy result", async () => {
    // prepare
    answer = () => ({ body: 'no status code' });
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);

    // act
    const response = await apiClient(adapter.url, alice).get('/environments');

    // assess
    expectGatewayAnswer(response, 'DEFAULT_5XX', 502);
    logged.mockRestore();
  });

  it.each([
    ['/environments', '/environments', null],
    ['/environments/', '/environments', null],
    ['/environments/a%20b', '/environments/{name}', { name: 'a b' }],
    ['/environments/bob/config', '/environments/{name}/config', { name: 'bob' }],
    // a malformed escape reaches the handler as sent, whose name check refuses it with a sentence
    ['/environments/%E0%A4%A', '/environments/{name}', { name: '%E0%A4%A' }],
  ])("maps %s to its resource with the API's own route matcher", async (path, resource, pathParameters) => {
    // act
    const response = await apiClient(adapter.url, alice).get(path);

    // assess
    expect(response.status).toBe(201);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ resource, path });
    expect(events[0]!.pathParameters).toEqual(pathParameters);
  });

  it('passes query parameters and headers named like built-in object properties on as ordinary entries', async () => {
    // prepare
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
    const query = names.map((name): [string, string] => [name, `q-${name}`]);
    const headers = names.map((name): [string, string] => [name, `h-${name}`]);

    // act
    const response = await rawRequest(adapter.url, alice, { method: 'GET', path: '/environments', query, headers });

    // assess
    expect(response.status).toBe(201);
    const event = events[0]!;
    for (const name of names) {
      expect(Object.getOwnPropertyDescriptor(event.queryStringParameters, name)?.value).toBe(`q-${name}`);
      expect(Object.getOwnPropertyDescriptor(event.multiValueQueryStringParameters, name)?.value).toEqual([`q-${name}`]);
      expect(Object.getOwnPropertyDescriptor(event.headers, name)?.value).toBe(`h-${name}`);
      expect(Object.getOwnPropertyDescriptor(event.multiValueHeaders, name)?.value).toEqual([`h-${name}`]);
    }
  });

  it('serves the OpenAPI document unsigned, for its own address and vCPU ceiling', async () => {
    // act
    const response = await signedFetch(adapter.url, undefined, 'GET', '/openapi.json');

    // assess
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.json).toMatchObject({ openapi: '3.1.0', servers: [{ url: adapter.url }] });
    expect(response.json.components.schemas.CreateEnvironmentRequest.properties.maxVcpus).toMatchObject({ maximum: 16, default: 16 });
    expect(Object.keys(response.json.paths).sort()).toEqual(['/environments', '/environments/{name}', '/environments/{name}/config']);
    expect(events).toHaveLength(0);
  });
});
