/**
 * API Gateway's part of local mode: callers identified from their SigV4 signature by the emulator's STS,
 * requests turned into REST proxy events. The API handler here is a recorder (it answers with what it got):
 * the real one has its own tests, and the system test runs both together.
 */
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { type HttpAdapter, matchResource, startHttpAdapter } from '../../../infra/local/http-adapter';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { createIdentityResolver } from '../../../infra/local/identity';
import { apiClient, signedFetch } from '../../support/signed-client';
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
    handler: async (event) => {
      events.push(event);
      if (event.headers['x-test-crash']) throw new Error('the handler fell over');
      return { statusCode: 201, headers: { 'content-type': 'application/json', location: '/environments/x' }, body: JSON.stringify({ seen: event.path }) };
    },
  });
});

afterAll(async () => {
  await adapter?.stop();
  iam?.destroy();
});

beforeEach(() => {
  events.length = 0;
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

  it('answers an unsigned request with 401 and how to sign, without calling the handler', async () => {
    // act
    const response = await signedFetch(adapter.url, undefined, 'GET', '/environments');

    // assess
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.json).toMatchObject({ status: 401, title: expect.any(String), instance: '/environments' });
    expect(response.json.detail).toContain('--aws-sigv4 "aws:amz:us-east-1:execute-api"');
    expect(events).toHaveLength(0);
  });

  it('answers a key that belongs to no principal of the account with 403', async () => {
    // act
    const response = await apiClient(adapter.url, { accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: 'x' }).get('/environments');

    // assess
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.json.detail).toContain('AKIAUNKNOWNKEY000000 belongs to no principal of this account');
    expect(response.json.detail).toContain('--aws-sigv4');
    expect(events).toHaveLength(0);
  });

  it.each([
    ['another service', `AWS4-HMAC-SHA256 Credential=KEY/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc`, /service "s3"/],
    ['another region', `AWS4-HMAC-SHA256 Credential=KEY/20250101/eu-west-1/execute-api/aws4_request, SignedHeaders=host, Signature=abc`, /eu-west-1/],
    ['another scheme', 'Basic YWxpY2U6c2VjcmV0', /Signature Version 4/],
    ['no signature', `AWS4-HMAC-SHA256 Credential=KEY/20250101/us-east-1/execute-api/aws4_request`, /lacks/],
  ])('answers a request signed for %s with 403', async (_case, authorization, detail) => {
    // act
    const response = await signedFetch(adapter.url, undefined, 'GET', '/environments', {
      headers: { authorization: authorization.replace('KEY', alice.accessKeyId) },
    });

    // assess
    expect(response.status).toBe(403);
    expect(response.json.detail).toMatch(detail);
    expect(events).toHaveLength(0);
  });

  it('answers paths and methods that are no route itself, as problems', async () => {
    // prepare
    const api = apiClient(adapter.url, alice);

    // act
    const unknownPath = await api.get('/buckets');
    const unknownMethod = await api.send('PUT', '/environments/alice', { json: {} });

    // assess
    expect(unknownPath).toMatchObject({ status: 404, json: { status: 404, instance: '/buckets' } });
    expect(unknownMethod).toMatchObject({ status: 405, json: { status: 405 } });
    expect(unknownMethod.headers.get('allow')).toBe('GET, DELETE');
    expect(unknownMethod.headers.get('content-type')).toBe('application/problem+json');
    expect(events).toHaveLength(0);
  });

  it('answers 502 with a problem when the handler throws', async () => {
    // act
    const response = await apiClient(adapter.url, alice).get('/environments', { headers: { 'x-test-crash': '1' } });

    // assess
    expect(response.status).toBe(502);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.json.detail).toContain('the handler fell over');
  });

  it('matches resources as API Gateway does, decoding path parameters', () => {
    // act + assess
    expect(matchResource(routes, '/environments')).toEqual({ resource: '/environments', pathParameters: null });
    expect(matchResource(routes, '/environments/')).toEqual({ resource: '/environments', pathParameters: null });
    expect(matchResource(routes, '/environments/a%20b')).toEqual({ resource: '/environments/{name}', pathParameters: { name: 'a b' } });
    expect(matchResource(routes, '/environments/bob/config')).toEqual({ resource: '/environments/{name}/config', pathParameters: { name: 'bob' } });
    expect(matchResource(routes, '/environments/bob/other')).toBeUndefined();
    expect(matchResource(routes, '/environments/%E0%A4%A')).toBeUndefined();
    expect(matchResource(routes, '/')).toBeUndefined();
  });
});
