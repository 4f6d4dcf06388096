/**
 * A SigV4-signed HTTP client for the API, as a teammate's tool would sign (service execute-api): what the
 * system tests use to call local mode, and what proves that callers are attributed by their access key.
 * Temporary credentials (a role session's) sign with their session token and send it in
 * X-Amz-Security-Token, as the AWS SDKs do.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials only: signed, and sent as X-Amz-Security-Token. */
  sessionToken?: string;
}

function requestFor(method: string, url: URL, headers: Record<string, string>, body?: string): HttpRequest {
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = value;
  const { protocol, hostname, pathname: path } = url;
  return new HttpRequest({ method, protocol, hostname, port: Number(url.port), path, query, headers, body });
}

/**
 * The request's headers once signed for execute-api (Authorization, X-Amz-Date and, for temporary
 * credentials, X-Amz-Security-Token added). `headers` must hold `host`.
 */
export async function signHeaders(
  credentials: Credentials,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body?: string,
  region = 'us-east-1',
): Promise<Record<string, string>> {
  const signer = new SignatureV4({ credentials, region, service: 'execute-api', sha256: Sha256 });
  return (await signer.sign(requestFor(method, url, headers, body))).headers as Record<string, string>;
}

/** A presigned URL: the credential, signature and (for temporary credentials) session token in its query. */
export async function presignUrl(credentials: Credentials, method: string, url: URL, region = 'us-east-1', expiresIn = 300): Promise<URL> {
  const signer = new SignatureV4({ credentials, region, service: 'execute-api', sha256: Sha256 });
  const signed = await signer.presign(requestFor(method, url, { host: url.host }), { expiresIn });
  const presigned = new URL(url.pathname, url);
  for (const [key, value] of Object.entries(signed.query ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) if (item !== null) presigned.searchParams.append(key, item);
  }
  return presigned;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  /** The body parsed as JSON (undefined when empty or not JSON). */
  json: T;
  /** The body as received. */
  text: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A body sent exactly as given (malformed JSON included); `json` is serialized. */
  body?: string;
  json?: unknown;
  query?: Record<string, string>;
  /** Leave the request unsigned. */
  unsigned?: boolean;
}

/** Sends one request to `baseUrl + path`, signed with the credentials unless told otherwise. */
export async function signedFetch(
  baseUrl: string,
  credentials: Credentials | undefined,
  method: string,
  path: string,
  options: RequestOptions = {},
  region = 'us-east-1',
): Promise<ApiResponse> {
  const url = new URL(path, baseUrl);
  for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
  const body = options.body ?? (options.json === undefined ? undefined : JSON.stringify(options.json));
  const headers: Record<string, string> = {
    host: url.host,
    ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...options.headers,
  };
  const signedHeaders = credentials && !options.unsigned ? await signHeaders(credentials, method, url, headers, body, region) : headers;
  // fetch sets Host itself and refuses to be told.
  const { host: _host, ...sendHeaders } = signedHeaders;
  const response = await fetch(url, { method, headers: sendHeaders, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** The API as one caller sees it. */
export function apiClient(baseUrl: string, credentials?: Credentials) {
  const send = (method: string, path: string, options?: RequestOptions) => signedFetch(baseUrl, credentials, method, path, options);
  return {
    post: (path: string, json?: unknown, options: RequestOptions = {}) => send('POST', path, { json, ...options }),
    get: (path: string, options?: RequestOptions) => send('GET', path, options),
    delete: (path: string, options?: RequestOptions) => send('DELETE', path, options),
    send,
  };
}
export type ApiClient = ReturnType<typeof apiClient>;

/** GETs the environment until its status leaves `passing`; bounded, with a short fixed interval. */
export async function waitWhile(client: ApiClient, name: string, passing: string, timeoutMs = 120_000): Promise<ApiResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await client.get(`/environments/${name}`);
    if (response.status !== 200 || response.json?.status !== passing) return response;
    if (Date.now() > deadline) throw new Error(`${name} was still ${passing} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
