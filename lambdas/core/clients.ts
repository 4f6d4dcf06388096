/**
 * AWS SDK clients, one of each per process, created on first use (not at import: cold starts pay only for
 * what a function touches). Endpoints come from the SDK's own configuration (AWS_ENDPOINT_URL,
 * AWS_ENDPOINT_URL_SFN, ...), which is how local mode points them at the emulator and the local workflow
 * runner without a line of code differing from AWS.
 */
import { BatchClient } from '@aws-sdk/client-batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { settings } from './settings';

/** Adaptive retries absorb throttling when many teammates provision at once. */
const common = { maxAttempts: 5, retryMode: 'adaptive' as const };

const factories = {
  batch: () => new BatchClient(common),
  iam: () => new IAMClient(common),
  s3: () => new S3Client({ ...common, forcePathStyle: settings.s3ForcePathStyle() }),
  sfn: () => new SFNClient(common),
  dynamo: () =>
    DynamoDBDocumentClient.from(new DynamoDBClient(common), {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
};
type Factories = typeof factories;

let instances: { [K in keyof Factories]?: ReturnType<Factories[K]> } = {};

function get<K extends keyof Factories>(key: K): ReturnType<Factories[K]> {
  return (instances[key] ??= factories[key]() as never) as ReturnType<Factories[K]>;
}

export const clients = {
  batch: () => get('batch'),
  iam: () => get('iam'),
  s3: () => get('s3'),
  sfn: () => get('sfn'),
  dynamo: () => get('dynamo'),
};

/** Forget every client, so the next call builds one from the current environment (tests switch endpoints). */
export function resetClients(): void {
  instances = {};
}
