/**
 * The emulator's fault injection (infra/local/moto_faults.py): an injected error reaches the ordinary SDK as
 * the error AWS would send, in each protocol the steps use, only on the requests it matches, as often as
 * asked; and with no fault the emulator answers as before.
 */
import { BatchClient, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateRoleCommand, GetRoleCommand, IAMClient, ListRolesCommand } from '@aws-sdk/client-iam';
import { CreateBucketCommand, HeadBucketCommand, PutBucketEncryptionCommand, S3Client } from '@aws-sdk/client-s3';
import { clearFaults, injectFault, listFaults } from '../../support/faults';
import { useEmulator } from '../../support/emulator';

const { context } = useEmulator();
const endpoint = () => context.emulator.endpoint;
// One attempt: what the step clients' retries do with an error is the workflow tests' business.
const config = () => ({ ...context.clientConfig, maxAttempts: 1 });

const TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] });

afterEach(() => clearFaults(endpoint()));

describe('fault injection in the emulator', () => {
  it('answers each protocol with the error AWS would send, as the SDK reads it', async () => {
    // prepare
    const iam = new IAMClient(config());
    const ec2 = new EC2Client(config());
    const s3 = new S3Client({ ...config(), forcePathStyle: true });
    const batch = new BatchClient(config());
    const dynamo = new DynamoDBClient(config());
    await s3.send(new CreateBucketCommand({ Bucket: 'faulty-bucket' }));
    await injectFault(endpoint(), { service: 'iam', action: 'GetRole', code: 'AccessDenied', message: 'not for you', status: 403 });
    await injectFault(endpoint(), { service: 'ec2', action: 'DescribeSubnets', code: 'UnauthorizedOperation', message: 'no subnets', status: 403 });
    await injectFault(endpoint(), { service: 's3', action: 'PutBucketEncryption', code: 'AccessDenied', message: 'no keys', status: 403 });
    await injectFault(endpoint(), { service: 's3', action: 'HeadBucket', code: 'AccessDenied', status: 403 });
    await injectFault(endpoint(), { service: 'batch', action: 'DescribeJobQueues', code: 'ClientException', message: 'no queues' });
    await injectFault(endpoint(), { service: 'dynamodb', action: 'GetItem', code: 'AccessDeniedException', message: 'no items' });

    // act
    const outcomes = await Promise.allSettled([
      iam.send(new GetRoleCommand({ RoleName: 'anything' })),
      ec2.send(new DescribeSubnetsCommand({})),
      s3.send(
        new PutBucketEncryptionCommand({
          Bucket: 'faulty-bucket',
          ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        }),
      ),
      s3.send(new HeadBucketCommand({ Bucket: 'faulty-bucket' })),
      batch.send(new DescribeJobQueuesCommand({})),
      dynamo.send(new GetItemCommand({ TableName: context.bootstrap.tableName, Key: { pk: { S: 'x' } } })),
    ]);

    // assess
    const errors = outcomes.map((outcome) => (outcome.status === 'rejected' ? outcome.reason : undefined));
    expect(errors.map((error) => [error?.name, error?.message, error?.$metadata?.httpStatusCode])).toEqual([
      ['AccessDenied', 'not for you', 403],
      ['UnauthorizedOperation', 'no subnets', 403],
      ['AccessDenied', 'no keys', 403],
      // A HEAD answer carries no body: the SDK knows the status only, as with AWS.
      [expect.any(String), expect.any(String), 403],
      ['ClientException', 'no queues', 400],
      ['AccessDeniedException', 'no items', 400],
    ]);
    expect((await listFaults(endpoint())).map((fault) => fault.hits)).toEqual([1, 1, 1, 1, 1, 1]);
    for (const client of [iam, ec2, s3, batch, dynamo]) client.destroy();
  });

  it('fails only the requests it matches, after the ones it skips, as often as asked', async () => {
    // prepare
    const iam = new IAMClient(config());
    for (const name of ['fault-target', 'fault-bystander']) {
      await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST }));
    }
    await injectFault(endpoint(), { service: 'iam', action: 'GetRole', code: 'AccessDenied', match: 'fault-target', skip: 1, times: 2 });
    const getRole = (name: string) =>
      iam.send(new GetRoleCommand({ RoleName: name })).then(
        () => 'ok',
        (error: Error) => error.name,
      );

    // act
    const answers = [];
    for (const name of ['fault-bystander', 'fault-target', 'fault-target', 'fault-bystander', 'fault-target', 'fault-target']) {
      answers.push(await getRole(name));
    }

    // assess
    expect(answers).toEqual(['ok', 'ok', 'AccessDenied', 'ok', 'AccessDenied', 'ok']);
    expect(await listFaults(endpoint())).toMatchObject([{ hits: 2, skipped: 1, times: 2, skip: 1, match: ['fault-target'] }]);
    iam.destroy();
  });

  it('forgets its faults when cleared or reset, and refuses a fault it cannot apply', async () => {
    // prepare
    const iam = new IAMClient(config());
    await injectFault(endpoint(), { service: 'iam', action: 'ListRoles', code: 'AccessDenied', times: 5 });
    await clearFaults(endpoint());
    await injectFault(endpoint(), { service: 'iam', action: 'ListUsers', code: 'AccessDenied', times: 5 });

    // act
    const afterClear = await iam.send(new ListRolesCommand({})).catch((error: Error) => error);
    await context.emulator.reset();
    const afterReset = await listFaults(endpoint());
    const refused = await injectFault(endpoint(), { service: 'iam', action: 'GetRole', code: 'AccessDenied', times: 0 }).catch((error: Error) => error);

    // assess
    expect(afterClear).toMatchObject({ Roles: expect.any(Array) });
    expect(afterReset).toEqual([]);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/HTTP 400.*times/);
    iam.destroy();
  });
});
