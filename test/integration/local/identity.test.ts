/**
 * Local mode's caller attribution against the emulator: whoever signed a request (an IAM user's key, or a
 * role session's temporary key and token) is named as API Gateway names them on AWS, and requests that
 * name no one are refused with the status AWS answers.
 */
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { createIdentityResolver, iamRequestIdentity, type IdentityResolver } from '../../../infra/local/identity';
import { ForbiddenError, UnauthenticatedError } from '../../../lambdas/core/errors';
import { useEmulator } from '../../support/emulator';
import { type Credentials, presignUrl, signHeaders } from '../../support/signed-client';

const { context } = useEmulator();
const ACCOUNT = '123456789012';
const API = new URL('http://127.0.0.1:3000/environments');
let iam: IAMClient;
let resolver: IdentityResolver;

beforeAll(() => {
  iam = new IAMClient(context.clientConfig);
});

beforeEach(() => {
  // A fresh resolver per test: its cache must not carry one test's answers into the next.
  resolver = createIdentityResolver(context.emulator.endpoint, 'us-east-1');
});

afterAll(() => {
  iam?.destroy();
});

async function userWithKey(name: string, path = '/') {
  const user = (await iam.send(new CreateUserCommand({ UserName: name, Path: path }))).User!;
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { arn: user.Arn!, userId: user.UserId!, credentials: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! } };
}

async function createRole(roleName: string, path = '/') {
  const trust = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' }],
  };
  const role = (await iam.send(new CreateRoleCommand({ RoleName: roleName, Path: path, AssumeRolePolicyDocument: JSON.stringify(trust) }))).Role!;
  return { arn: role.Arn!, roleId: role.RoleId! };
}

/** Temporary credentials of a new session of the role, from the emulator's STS. */
async function assumeRole(roleArn: string, sessionName: string): Promise<Credentials> {
  const sts = new STSClient(context.clientConfig);
  try {
    const { Credentials: session } = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName }));
    return { accessKeyId: session!.AccessKeyId!, secretAccessKey: session!.SecretAccessKey!, sessionToken: session!.SessionToken! };
  } finally {
    sts.destroy();
  }
}

/** The headers of a signed GET /environments as the gateway's HTTP server receives them (lower-case names). */
async function signedRequest(credentials: Credentials) {
  const headers = await signHeaders(credentials, 'GET', API, { host: API.host });
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

describe('local caller attribution', () => {
  it("names an IAM user's key by the user's ARN (path included) and unique id", async () => {
    // prepare
    const carol = await userWithKey('carol', '/engineering/');

    // act
    const identity = await resolver.resolve(await signedRequest(carol.credentials), new URLSearchParams());

    // assess
    expect(identity).toEqual({
      accessKeyId: carol.credentials.accessKeyId,
      accountId: ACCOUNT,
      userArn: `arn:aws:iam::${ACCOUNT}:user/engineering/carol`,
      userId: carol.userId,
    });
  });

  it("names a role session's temporary key by the assumed-role ARN and <role id>:<session>, as API Gateway reports it", async () => {
    // prepare
    const { arn, roleId } = await createRole('DataScience');
    const credentials = await assumeRole(arn, 'notebook-7');

    // act
    const headers = await signedRequest(credentials);
    const identity = await resolver.resolve(headers, new URLSearchParams());

    // assess
    expect(headers['x-amz-security-token']).toBe(credentials.sessionToken);
    expect(roleId).toMatch(/^AROA[A-Z0-9]+$/);
    expect(credentials.accessKeyId).toMatch(/^ASIA/);
    expect(identity).toEqual({
      accessKeyId: credentials.accessKeyId,
      accountId: ACCOUNT,
      userArn: `arn:aws:sts::${ACCOUNT}:assumed-role/DataScience/notebook-7`,
      userId: `${roleId}:notebook-7`,
    });
    expect(iamRequestIdentity(identity, '127.0.0.1', 'jest')).toMatchObject({
      userArn: `arn:aws:sts::${ACCOUNT}:assumed-role/DataScience/notebook-7`,
      user: `${roleId}:notebook-7`,
      caller: `${roleId}:notebook-7`,
      accessKey: credentials.accessKeyId,
      accountId: ACCOUNT,
    });
  });

  it("names an IAM Identity Center session by its role's name and the person's session, from a presigned URL's query", async () => {
    // prepare
    const role = 'AWSReservedSSO_DataScience_0123456789abcdef';
    const { arn, roleId } = await createRole(role, '/aws-reserved/sso.amazonaws.com/');
    const credentials = await assumeRole(arn, 'alice@example.com');
    const presigned = await presignUrl(credentials, 'GET', API);

    // act
    const identity = await resolver.resolve({ host: API.host }, presigned.searchParams);

    // assess
    expect(presigned.searchParams.get('X-Amz-Security-Token')).toBe(credentials.sessionToken);
    expect(identity).toMatchObject({
      accessKeyId: credentials.accessKeyId,
      userArn: `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/alice@example.com`,
      userId: `${roleId}:alice@example.com`,
    });
  });

  it('tells two sessions of one role apart', async () => {
    // prepare
    const { arn, roleId } = await createRole('Analysts');
    const first = await assumeRole(arn, 'first');
    const second = await assumeRole(arn, 'second');

    // act
    const one = await resolver.resolve(await signedRequest(first), new URLSearchParams());
    const two = await resolver.resolve(await signedRequest(second), new URLSearchParams());

    // assess
    expect(one).toMatchObject({ userArn: `arn:aws:sts::${ACCOUNT}:assumed-role/Analysts/first`, userId: `${roleId}:first` });
    expect(two).toMatchObject({ userArn: `arn:aws:sts::${ACCOUNT}:assumed-role/Analysts/second`, userId: `${roleId}:second` });
  });

  it('refuses a key that belongs to no principal of the account with 403 and how to sign', async () => {
    // act
    const attempt = resolver.resolve(await signedRequest({ accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: 'x' }), new URLSearchParams());

    // assess
    await expect(attempt).rejects.toBeInstanceOf(ForbiddenError);
    await expect(attempt).rejects.toThrow(/AKIAUNKNOWNKEY000000 belongs to no principal of this account/);
    await expect(attempt).rejects.toThrow(/--aws-sigv4 "aws:amz:us-east-1:execute-api"/);
  });

  it('refuses an unknown temporary key, token or not, with 403', async () => {
    // act
    const attempt = resolver.resolve(
      await signedRequest({ accessKeyId: 'ASIAUNKNOWNKEY000000', secretAccessKey: 'x', sessionToken: 'made-up' }),
      new URLSearchParams(),
    );

    // assess
    await expect(attempt).rejects.toBeInstanceOf(ForbiddenError);
  });

  it('refuses an unsigned request with 401 and how to sign', async () => {
    // act
    const attempt = resolver.resolve({ host: API.host }, new URLSearchParams());

    // assess
    await expect(attempt).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(attempt).rejects.toThrow(/not signed.*--aws-sigv4/);
  });
});
