/**
 * Fault injection into the emulator (infra/local/moto_faults.py): the next matching request(s) get an AWS
 * error in their service's own protocol, so the step that made them sees the SDK error AWS would cause.
 */

export interface FaultSpec {
  /** The SigV4 service name: iam, ec2, s3, batch, dynamodb, sts. */
  service: string;
  /** The operation, e.g. PutRolePolicy, CreateSubnet, PutBucketEncryption, CreateComputeEnvironment, UpdateItem. */
  action: string;
  /** The AWS error code, e.g. AccessDenied, UnauthorizedOperation, AccessDeniedException, Throttling. */
  code: string;
  message?: string;
  /** HTTP status (default 400). */
  status?: number;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** How many matching requests pass first (default 0). */
  skip?: number;
  /** Substrings that must all occur in the request's path, query or body: e.g. the environment's name. */
  match?: string | string[];
}

export interface Fault extends Required<Omit<FaultSpec, 'match'>> {
  id: number;
  match: string[];
  /** Requests answered with the error so far. */
  hits: number;
  /** Matching requests let through (skip) so far. */
  skipped: number;
}

async function call(endpoint: string, method: string, body?: unknown): Promise<any> {
  const response = await fetch(`${endpoint}/_mfenv/faults`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await response.json()) as { message?: string; faults?: Fault[] } & Fault;
  if (!response.ok) throw new Error(`The emulator refused ${method} /_mfenv/faults (HTTP ${response.status}): ${json.message}`);
  return json;
}

export const injectFault = (endpoint: string, fault: FaultSpec): Promise<Fault> => call(endpoint, 'POST', fault);
export const listFaults = async (endpoint: string): Promise<Fault[]> => (await call(endpoint, 'GET')).faults;
export const clearFaults = async (endpoint: string): Promise<void> => {
  await call(endpoint, 'DELETE');
};
