/**
 * Who is calling, decided as API Gateway decides it for an AWS_IAM method: the request carries a SigV4
 * signature for the service `execute-api`, and the access key in its credential scope belongs to an IAM
 * principal of the account. That principal may be an IAM user (a long-term AKIA… key) or a role session
 * (an assumed role's temporary ASIA… key, sent with its session token in X-Amz-Security-Token): IAM
 * Identity Center, SageMaker, CI runners and `aws sts assume-role` all call as role sessions.
 *
 * Locally the emulator's STS says whose key it is: GetCallerIdentity, signed with the caller's own access
 * key (and session token), answers the key's owner. The answer lands in requestContext.identity as on AWS:
 * for a user, `userArn` is the user's ARN (with its path) and `user`/`caller` its unique id; for a role
 * session, `userArn` is `arn:aws:sts::ACCT:assumed-role/<role>/<session>` and `user`/`caller` is
 * `<role's unique id AROA…>:<session>`.
 *
 * Local mode does NOT verify signatures: it reads the access key from the Authorization header (or a
 * presigned URL's X-Amz-Credential) and trusts it. Anyone who can reach 127.0.0.1 and knows an access key
 * id can act as its owner. That is fine for a single-machine sandbox and is the one deliberate difference
 * from AWS, where API Gateway rejects a request whose signature does not match the secret key (or whose
 * session token does not belong to the temporary key).
 */
import { GetCallerIdentityCommand, type GetCallerIdentityCommandOutput, STSClient } from '@aws-sdk/client-sts';
import type { APIGatewayEventIdentity } from 'aws-lambda';
import { ForbiddenError, UnauthenticatedError } from '../../lambdas/core/errors';

/** The principal a request is attributed to, as API Gateway reports it. */
export interface CallerIdentity {
  /** The key the request was signed with: AKIA… (an IAM user's) or ASIA… (a role session's). */
  accessKeyId: string;
  accountId: string;
  /**
   * `identity.userArn`: an IAM user's ARN, path included (`arn:aws:iam::ACCT:user/[path/]name`), or a
   * role session's `arn:aws:sts::ACCT:assumed-role/<role>/<session>`.
   */
  userArn: string;
  /**
   * `identity.user` and `identity.caller`: an IAM user's unique id (AIDA… on AWS), or for a role session
   * `<role's unique id AROA…>:<session>`.
   */
  userId: string;
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
    `curl --aws-sigv4 "aws:amz:${region}:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" ...` +
    ` (with temporary credentials, also -H "X-Amz-Security-Token: $AWS_SESSION_TOKEN").`
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

/**
 * The session token of a request signed with temporary credentials: the X-Amz-Security-Token header or,
 * for a presigned URL, query parameter. Undefined for a long-term key.
 */
export function readSessionToken(headers: Record<string, string | string[] | undefined>, query: URLSearchParams): string | undefined {
  const header = headers['x-amz-security-token'];
  const token = (Array.isArray(header) ? header[0] : header) ?? query.get('X-Amz-Security-Token') ?? undefined;
  return token?.trim() || undefined;
}

/**
 * What the emulator's STS answers for a key it does not know: it never refuses one (it does not check
 * signatures unless IAM enforcement is on), it names a made-up `user/moto` of the account instead.
 */
const EMULATOR_UNKNOWN_KEY_USER_ID = 'AKIAIOSFODNN7EXAMPLE';
const STS_USER_ARN = /^arn:[\w-]+:sts::\d{12}:user\//;

/** Whether a GetCallerIdentity answer names a real principal, not the emulator's stand-in for an unknown key. */
function isKnownPrincipal(userId: string, userArn: string): boolean {
  // STS has no `user/` ARNs of its own on AWS: that shape only ever comes from the stand-in.
  return userId !== EMULATOR_UNKNOWN_KEY_USER_ID && !STS_USER_ARN.test(userArn);
}

/**
 * The secret the lookup is signed with. The emulator reads only the access key (and session token) of a
 * request, and the gateway never learns the caller's secret, so any value does.
 */
const PLACEHOLDER_SECRET = 'not-verified-locally';

export interface IdentityResolver {
  /** The principal of a request, or UnauthenticatedError / ForbiddenError saying how to fix the request. */
  resolve(headers: Record<string, string | string[] | undefined>, query: URLSearchParams): Promise<CallerIdentity>;
}

/**
 * How long a key → principal attribution is trusted before STS is asked again (a user's key can be
 * deleted, and a role deleted and re-created gets a new unique id).
 */
const CACHE_MS = 60_000;

/**
 * Resolves callers with the STS of the emulator at `endpoint`, standing in for API Gateway (which is AWS
 * itself and knows every key). Attributions are cached per access key; unknown keys are not, so a key
 * created a moment later works at once.
 */
export function createIdentityResolver(endpoint: string, region: string): IdentityResolver {
  const cache = new Map<string, { identity: Promise<CallerIdentity>; until: number }>();

  async function lookUp(accessKeyId: string, sessionToken: string | undefined): Promise<CallerIdentity> {
    // A client per lookup: its credentials are the caller's key, which changes with every caller.
    const sts = new STSClient({ endpoint, region, credentials: { accessKeyId, secretAccessKey: PLACEHOLDER_SECRET, sessionToken } });
    let answer: GetCallerIdentityCommandOutput;
    try {
      answer = await sts.send(new GetCallerIdentityCommand({}));
    } finally {
      sts.destroy();
    }
    const { Arn: userArn, UserId: userId, Account: accountId } = answer;
    if (!userArn || !userId || !accountId || !isKnownPrincipal(userId, userArn)) {
      throw new ForbiddenError(
        `The access key ${accessKeyId} belongs to no principal of this account: neither an IAM user's access key ` +
          `nor the temporary key of a role session. ${howToSign(region)}`,
      );
    }
    return { accessKeyId, accountId, userArn, userId };
  }

  return {
    async resolve(headers, query) {
      const { accessKeyId } = readSigV4Credential(headers, query, region);
      const cached = cache.get(accessKeyId);
      if (cached && cached.until > Date.now()) return cached.identity;
      const identity = lookUp(accessKeyId, readSessionToken(headers, query));
      cache.set(accessKeyId, { identity, until: Date.now() + CACHE_MS });
      identity.catch(() => cache.delete(accessKeyId));
      return identity;
    },
  };
}

/**
 * requestContext.identity as API Gateway fills it for a caller it authorized with AWS_IAM: `userArn` the
 * principal's ARN, `user` and `caller` its unique id (`AROA…:<session>` for a role session), `accessKey`
 * the key the request was signed with. Local mode's gateway and the API tests build their proxy events
 * with it, so both give the handler the same shape.
 */
export function iamRequestIdentity(
  caller: CallerIdentity | null,
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
