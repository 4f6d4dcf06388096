/**
 * Clients of the emulator's root, which sees everything: for a system test's assertions on what exists.
 * (Apart from test/support/local-mode.ts, which loads the handlers only once a file's body has run.)
 */
import { BatchClient } from '@aws-sdk/client-batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { emulatorClientConfig } from '../../infra/local/bootstrap';

export function emulatorRootClients(emulatorEndpoint: string) {
  const config = emulatorClientConfig(emulatorEndpoint);
  return {
    s3: new S3Client({ ...config, forcePathStyle: true }),
    iam: new IAMClient(config),
    batch: new BatchClient(config),
    dynamo: new DynamoDBClient(config),
    ec2: new EC2Client(config),
  };
}
export type EmulatorRootClients = ReturnType<typeof emulatorRootClients>;
