/**
 * AWS SDK clients, one of each per process, created on first use (not at import: cold starts pay only for
 * what a function touches). Endpoints come from the SDK's own configuration (AWS_ENDPOINT_URL,
 * AWS_ENDPOINT_URL_SFN, ...), which is how local mode points them at the emulator and the local workflow
 * runner without a line of code differing from AWS.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BatchClient } from '@aws-sdk/client-batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { SFNClient } from '@aws-sdk/client-sfn';
import { settings } from './settings';

/**
 * SDK attempts per call. The API answers a person at once, so its clients retry (adaptively, which absorbs
 * throttling when many teammates provision at once). A step runs under a Task whose Retry already backs off
 * (2 s doubling, 6 attempts, full jitter): there the SDK tries twice, as 5 attempts under 7 Task attempts
 * would send 35 calls into a throttled API, and a step Lambda would sit out the SDK's backoff while billed.
 */
export const API_MAX_ATTEMPTS = 5;
export const STEP_MAX_ATTEMPTS = 2;

/** One process's clients for one kind of caller; created on first use. */
interface ClientSet {
  readonly maxAttempts: number;
  batch?: BatchClient;
  iam?: IAMClient;
  s3?: S3Client;
  sfn?: SFNClient;
  dynamo?: DynamoDBDocumentClient;
  ec2?: EC2Client;
  events?: EventBridgeClient;
  serviceQuotas?: ServiceQuotasClient;
}

// One set for the API and one for steps. On AWS a Lambda only ever builds one of them; in local mode, where
// one process hosts both, each caller still gets its own retries without a line of code telling modes apart.
let apiClients: ClientSet = { maxAttempts: API_MAX_ATTEMPTS };
let stepClients: ClientSet = { maxAttempts: STEP_MAX_ATTEMPTS };
const stepScope = new AsyncLocalStorage<true>();

/** Runs a step: every client it (and whatever it calls) uses inside `run` is a step client. */
export function withStepClients<T>(run: () => Promise<T>): Promise<T> {
  return stepScope.run(true, run);
}

const current = (): ClientSet => (stepScope.getStore() ? stepClients : apiClients);

type ClientOptions = { maxAttempts: number; retryMode: 'adaptive' };
type ClientName = Exclude<keyof ClientSet, 'maxAttempts'>;

/** The caller's client `name`, made by `make` on first use with that caller's retry settings. */
function cached<N extends ClientName>(name: N, make: (options: ClientOptions) => NonNullable<ClientSet[N]>): NonNullable<ClientSet[N]> {
  const set = current();
  return (set[name] ??= make({ maxAttempts: set.maxAttempts, retryMode: 'adaptive' })) as NonNullable<ClientSet[N]>;
}

// Each client behind its own exported function: a bundle then carries only the SDK clients its code calls
// (esbuild drops the rest), which keeps every Lambda small and its cold start short.
export const batchClient = () => cached('batch', (options) => new BatchClient(options));
export const iamClient = () => cached('iam', (options) => new IAMClient(options));
export const s3Client = () => cached('s3', (options) => new S3Client({ ...options, forcePathStyle: settings.s3ForcePathStyle() }));
export const sfnClient = () => cached('sfn', (options) => new SFNClient(options));
export const ec2Client = () => cached('ec2', (options) => new EC2Client(options));
export const eventsClient = () => cached('events', (options) => new EventBridgeClient(options));
export const serviceQuotasClient = () => cached('serviceQuotas', (options) => new ServiceQuotasClient(options));
export const dynamoClient = () =>
  cached('dynamo', (options) =>
    DynamoDBDocumentClient.from(new DynamoDBClient(options), {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
  );

/** Forget every client, so the next call builds one from the current environment (tests switch endpoints). */
export function resetClients(): void {
  apiClients = { maxAttempts: API_MAX_ATTEMPTS };
  stepClients = { maxAttempts: STEP_MAX_ATTEMPTS };
}
