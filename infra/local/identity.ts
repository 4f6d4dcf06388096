/**
 * Who is calling, decided as API Gateway decides it for an AWS_IAM method: the request carries a SigV4
 * signature for the service `execute-api`, and the access key in its credential scope belongs to an IAM
 * principal. Locally that principal is the emulator's IAM user owning the key (IAM GetAccessKeyLastUsed →
 * UserName, then GetUser → Arn), and the result lands in requestContext.identity as on AWS.
 *
 * Local mode does NOT verify signatures: it reads the access key from the Authorization header (or a
 * presigned URL's X-Amz-Credential) and trusts it. Anyone who can reach 127.0.0.1 and knows an access key
 * id can act as its owner. That is fine for a single-machine sandbox and is the one deliberate difference
 * from AWS, where API Gateway rejects a request whose signature does not match the secret key.
 */
import type { APIGatewayEventIdentity } from 'aws-lambda';
import { GetAccessKeyLastUsedCommand, GetUserCommand, type IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam';
import { ForbiddenError, UnauthenticatedError } from '../../lambdas/core/errors';

/** The principal a request is attributed to. */
export interface CallerIdentity {
  accessKeyId: string;
  accountId: string;
  userName: string;
  /** The IAM user id (AIDA...): what API Gateway reports as `caller` and `user`. */
  userId: string;
  userArn: string;
}

/** What a SigV4 credential scope says: `AKID/yyyymmdd/region/service/aws4_request`. */
export interface SigV4Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

/** The sentence every 401/403 ends with: how to sign a request for this API. */
export function howToSign(region: string): string {
  return (
    `Sign every request with AWS Signature Version 4 for the service execute-api, e.g. ` +
    `curl --aws-sigv4 "aws:amz:${region}:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" ...`
  );
}

const AUTHORIZATION = /^AWS4-HMAC-SHA256\s+(.*)$/s;

function parseScope(scope: string, region: string): SigV4Credential {
  const parts = scope.split('/');
  const [accessKeyId, date, scopeRegion, service, terminator] = parts;
  if (parts.length !== 5 || !accessKeyId || !date || !scopeRegion || !service || terminator !== 'aws4_request' || !/^\d{8}$/.test(date)) {
    throw new ForbiddenError(`The signature's credential scope "${scope}" is malformed. ${howToSign(region)}`);
  }
  return { accessKeyId, date, region: scopeRegion, service };
}

/**
 * Reads the credential of a SigV4-signed request from its Authorization header or, for a presigned URL,
 * its X-Amz-Credential query parameter. No credential at all → UnauthenticatedError (401); a credential
 * that is malformed, for another service or another region → ForbiddenError (403), as AWS answers.
 */
export function readSigV4Credential(
  headers: Record<string, string | string[] | undefined>,
  query: URLSearchParams,
  region: string,
): SigV4Credential {
  const header = headers['authorization'];
  const authorization = Array.isArray(header) ? header[0] : header;
  let credential: SigV4Credential;
  if (authorization) {
    const match = AUTHORIZATION.exec(authorization.trim());
    if (!match) {
      throw new ForbiddenError(`The Authorization header is not an AWS Signature Version 4 (AWS4-HMAC-SHA256) header. ${howToSign(region)}`);
    }
    const fields = new Map(
      match[1]!.split(',').map((field) => {
        const [key, ...value] = field.trim().split('=');
        return [key!.trim(), value.join('=').trim()] as const;
      }),
    );
    const scope = fields.get('Credential');
    if (!scope || !fields.get('SignedHeaders') || !fields.get('Signature')) {
      throw new ForbiddenError(`The Authorization header lacks Credential, SignedHeaders or Signature. ${howToSign(region)}`);
    }
    credential = parseScope(scope, region);
  } else if (query.get('X-Amz-Credential')) {
    if (query.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !query.get('X-Amz-Signature')) {
      throw new ForbiddenError(`The presigned URL lacks X-Amz-Algorithm=AWS4-HMAC-SHA256 or X-Amz-Signature. ${howToSign(region)}`);
    }
    credential = parseScope(query.get('X-Amz-Credential')!, region);
  } else {
    throw new UnauthenticatedError(`The request is not signed, so it cannot be attributed to anyone. ${howToSign(region)}`);
  }
  if (credential.service !== 'execute-api') {
    throw new ForbiddenError(`The request is signed for the service "${credential.service}", not execute-api. ${howToSign(region)}`);
  }
  if (credential.region !== region) {
    throw new ForbiddenError(`The request is signed for the region ${credential.region}; this API is in ${region}. ${howToSign(region)}`);
  }
  return credential;
}

export interface IdentityResolver {
  /** The principal of a request, or UnauthenticatedError / ForbiddenError saying how to fix the request. */
  resolve(headers: Record<string, string | string[] | undefined>, query: URLSearchParams): Promise<CallerIdentity>;
}

/** How long a key → user attribution is trusted before IAM is asked again (keys can be deleted). */
const CACHE_MS = 60_000;

/**
 * Resolves callers with IAM (the emulator's, with its root credentials: it stands in for API Gateway,
 * which is AWS itself). Attributions are cached per access key; unknown keys are not, so a key created a
 * moment later works at once.
 */
export function createIdentityResolver(iam: IAMClient, region: string): IdentityResolver {
  const cache = new Map<string, { identity: Promise<CallerIdentity>; until: number }>();

  async function lookUp(accessKeyId: string): Promise<CallerIdentity> {
    let userName: string | undefined;
    try {
      userName = (await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId }))).UserName;
    } catch (error) {
      if (!(error instanceof NoSuchEntityException) && (error as { Code?: string }).Code !== 'NoSuchEntity') throw error;
    }
    if (!userName) {
      throw new ForbiddenError(`The access key ${accessKeyId} belongs to no IAM user of this account. ${howToSign(region)}`);
    }
    const user = (await iam.send(new GetUserCommand({ UserName: userName }))).User;
    if (!user?.Arn || !user.UserId) throw new ForbiddenError(`The IAM user ${userName} of access key ${accessKeyId} no longer exists.`);
    const accountId = user.Arn.split(':')[4] ?? '';
    return { accessKeyId, accountId, userName, userId: user.UserId, userArn: user.Arn };
  }

  return {
    async resolve(headers, query) {
      const { accessKeyId } = readSigV4Credential(headers, query, region);
      const cached = cache.get(accessKeyId);
      if (cached && cached.until > Date.now()) return cached.identity;
      const identity = lookUp(accessKeyId);
      cache.set(accessKeyId, { identity, until: Date.now() + CACHE_MS });
      identity.catch(() => cache.delete(accessKeyId));
      return identity;
    },
  };
}

/**
 * requestContext.identity as API Gateway fills it for a caller it authorized with AWS_IAM. Local mode's
 * gateway and the API tests build their proxy events with it, so both give the handler the same shape.
 */
export function iamRequestIdentity(
  caller: Pick<CallerIdentity, 'accessKeyId' | 'accountId' | 'userId' | 'userArn'> | null,
  sourceIp: string,
  userAgent: string | null,
): APIGatewayEventIdentity {
  return {
    accessKey: caller?.accessKeyId ?? null,
    accountId: caller?.accountId ?? null,
    apiKey: null,
    apiKeyId: null,
    caller: caller?.userId ?? null,
    clientCert: null,
    cognitoAuthenticationProvider: null,
    cognitoAuthenticationType: null,
    cognitoIdentityId: null,
    cognitoIdentityPoolId: null,
    principalOrgId: null,
    sourceIp,
    user: caller?.userId ?? null,
    userAgent,
    userArn: caller?.userArn ?? null,
  };
}
