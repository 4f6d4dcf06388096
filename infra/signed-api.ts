/**
 * The API as a SigV4 client calls it (service execute-api), for scripts run by the platform owner
 * (infra/smoke.ts, infra/drain.ts). Temporary credentials sign with their session token and send it in
 * X-Amz-Security-Token, as the AWS SDKs do. Kept apart from the tests' client so that a script never
 * depends on test/.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { STSClient } from '@aws-sdk/client-sts';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  /** The body parsed as JSON (undefined when empty or not JSON). */
  json: T;
  text: string;
}

/**
 * The region to sign for: the one in an API Gateway host name (`<id>.execute-api.<region>.amazonaws.com`),
 * else the fallback (local mode does not check it).
 */
export function signingRegionOf(apiUrl: string, fallback: string): string {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(apiUrl).hostname)?.[1] ?? fallback;
}

export function signedApi(baseUrl: string, credentials: () => Promise<Credentials>, region: string) {
  // The stage is part of the base URL on AWS (`.../prod/`): paths are appended to it, not put in its place.
  const root = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  async function send(method: string, path: string, json?: unknown): Promise<ApiResponse> {
    const url = new URL(path.replace(/^\//, ''), root);
    const body = json === undefined ? undefined : JSON.stringify(json);
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) query[key] = value;
    const headers: Record<string, string> = { host: url.host, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
    const signer = new SignatureV4({ credentials: await credentials(), region, service: 'execute-api', sha256: Sha256 });
    const request = new HttpRequest({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query,
      headers,
      body,
    });
    // fetch sets Host itself and refuses to be told.
    const { host: _host, ...signed } = (await signer.sign(request)).headers as Record<string, string>;
    const response = await fetch(url, { method, headers: signed, body });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, json: parsed, text };
  }
  return {
    get: (path: string) => send('GET', path),
    post: (path: string, json: unknown) => send('POST', path, json),
    delete: (path: string) => send('DELETE', path),
  };
}
export type SignedApi = ReturnType<typeof signedApi>;

/**
 * A client signing with the SDK's default credential chain (environment, AWS_PROFILE, IAM Identity Center,
 * instance or container roles), as a teammate's `mfenv` command signs. The region is `region` if given, else
 * the one in an API Gateway URL, else the SDK's configured region: the signature must name the API's region.
 */
export async function defaultChainApi(baseUrl: string, options: { region?: string } = {}): Promise<SignedApi> {
  // Only its configuration is used: it resolves the credential chain and the region exactly as the SDK does.
  const sts = new STSClient(options.region ? { region: options.region } : {});
  let region = options.region ?? /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(baseUrl).hostname)?.[1];
  if (!region) {
    try {
      region = await sts.config.region();
    } catch {
      throw new Error(`Cannot tell the API's region from ${baseUrl}: pass --region or set AWS_REGION.`);
    }
  }
  return signedApi(baseUrl, () => sts.config.credentials(), region);
}
