/**
 * A signed request sent exactly as written, over node:http: header names in the order and spelling given
 * (fetch drops a header named `__proto__`), query parameters repeated as given. For tests that send what
 * an ordinary client would not.
 */
import { request as httpRequest } from 'node:http';
import { type Credentials, signHeaders } from './signed-client';

export interface RawRequest {
  method: string;
  path: string;
  /** Appended in this order; a name may repeat. */
  query?: [string, string][];
  /** Sent in this order, as spelled. */
  headers?: [string, string][];
  body?: string;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined. */
  json: any;
}

/** Sends `raw` to `baseUrl` (127.0.0.1), signed for execute-api with `credentials` unless none are given. */
export async function rawRequest(baseUrl: string, credentials: Credentials | undefined, raw: RawRequest): Promise<RawResponse> {
  const url = new URL(raw.path, baseUrl);
  for (const [name, value] of raw.query ?? []) url.searchParams.append(name, value);
  const given = raw.headers ?? [];
  const withBody = raw.body !== undefined && !given.some(([name]) => name.toLowerCase() === 'content-type') ? [['content-type', 'application/json'] as [string, string]] : [];
  // Own properties only (fromEntries never sets a prototype), so `__proto__` is signed like any other header.
  const unsigned = Object.fromEntries([['host', url.host], ...given, ...withBody]) as Record<string, string>;
  const signed = credentials ? await signHeaders(credentials, raw.method, url, unsigned, raw.body) : unsigned;
  const flat = Object.entries(signed).flat();
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: raw.method, headers: flat as unknown as Record<string, string> },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(raw.body);
  });
}
