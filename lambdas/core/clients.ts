/**
 * AWS SDK clients, one of each per process, created on first use (not at import: cold starts pay only for
 * what a function touches). Endpoints come from the SDK's own configuration (AWS_ENDPOINT_URL,
 * AWS_ENDPOINT_URL_SFN, ...), which is how local mode points them at the emulator and the local workflow
 * runner without a line of code differing from AWS.
 */
import { BatchClient } from '@aws-sdk/client-batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { settings } from './settings';

/** Adaptive retries absorb throttling when many teammates provision at once. */
const common = { maxAttempts: 5, retryMode: 'adaptive' as const };

// One cache per client, each behind its own exported function: a bundle then carries only the SDK clients
// its code calls (esbuild drops the rest), which keeps every Lambda small and its cold start short.
let batch: BatchClient | undefined;
let iam: IAMClient | undefined;
let s3: S3Client | undefined;
let sfn: SFNClient | undefined;
let dynamo: DynamoDBDocumentClient | undefined;
let ec2: EC2Client | undefined;

export const batchClient = () => (batch ??= new BatchClient(common));
export const iamClient = () => (iam ??= new IAMClient(common));
export const s3Client = () => (s3 ??= new S3Client({ ...common, forcePathStyle: settings.s3ForcePathStyle() }));
export const sfnClient = () => (sfn ??= new SFNClient(common));
export const ec2Client = () => (ec2 ??= new EC2Client(common));
export const dynamoClient = () =>
  (dynamo ??= DynamoDBDocumentClient.from(new DynamoDBClient(common), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  }));

/** Forget every client, so the next call builds one from the current environment (tests switch endpoints). */
export function resetClients(): void {
  batch = iam = s3 = sfn = dynamo = ec2 = undefined;
}
