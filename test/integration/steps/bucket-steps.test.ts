import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketEncryptionCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { TAG, tagsFor } from '../../../lambdas/core/naming';
import { SETTING, currentDeployment, settings } from '../../../lambdas/core/settings';
import { handler } from '../../../lambdas/steps/bucket-steps';
import { useEmulator } from '../../support/emulator';
import type { WorkflowEnvironment } from '../../../lambdas/core/environment';
import * as registry from '../../../lambdas/core/registry';
import { OWNER, invoke, namesOf, quietLogs, recordTeardown, uniqueName, withSetting, workflowEnvironment } from './fixtures';

// Network isolation off by default here (the policy's own test below turns it on): the other tests are about the bucket.
const { context } = useEmulator({ networkIsolation: false });
let s3: S3Client;

beforeAll(() => {
  quietLogs();
  s3 = new S3Client({ ...context.clientConfig, forcePathStyle: true });
});
afterAll(() => s3?.destroy());

async function bucketExists(bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch {
    return false;
  }
}

async function putObjects(bucket: string, count: number, prefix = 'metaflow/data'): Promise<void> {
  for (let start = 0; start < count; start += 50) {
    const keys = Array.from({ length: Math.min(50, count - start) }, (_, index) => `${prefix}/${start + index}`);
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'artifact' }))));
  }
}

async function tagMap(bucket: string): Promise<Record<string, string>> {
  const { TagSet = [] } = await s3.send(new GetBucketTaggingCommand({ Bucket: bucket }));
  return Object.fromEntries(TagSet.map((tag) => [tag.Key!, tag.Value!]));
}

describe('createBucket', () => {
  it('creates a private, encrypted, owner-enforced, tagged bucket without versioning', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('fresh'));
    const bucket = namesOf(environment.name).bucket;

    // act
    const answer = await invoke(handler, { step: 'createBucket', environment });

    // assess
    expect(answer).toEqual({ bucket, adopted: false });
    const { PublicAccessBlockConfiguration } = await s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }));
    expect(PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true,
    });
    const { ServerSideEncryptionConfiguration } = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
    expect(ServerSideEncryptionConfiguration?.Rules?.[0]).toMatchObject({
      ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' },
      BucketKeyEnabled: true,
    });
    const { OwnershipControls } = await s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }));
    expect(OwnershipControls?.Rules).toEqual([{ ObjectOwnership: 'BucketOwnerEnforced' }]);
    expect(await tagMap(bucket)).toEqual(tagsFor(currentDeployment(), environment.name, OWNER));
    const { Status } = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    expect(Status).toBeUndefined();
    // Local mode leaves the TLS-only statement out (the emulator cannot evaluate it): no policy at all.
    await expect(s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).rejects.toMatchObject({ name: 'NoSuchBucketPolicy' });
  });

  it('puts the TLS-only bucket policy when the deployment asks for it', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('tls'));
    const bucket = namesOf(environment.name).bucket;

    // act
    await withSetting(SETTING.bucketTlsOnly, 'true', () => invoke(handler, { step: 'createBucket', environment }));

    // assess
    const { Policy } = await s3.send(new GetBucketPolicyCommand({ Bucket: bucket }));
    expect(JSON.parse(Policy!).Statement).toEqual([
      expect.objectContaining({
        Sid: 'DenyInsecureTransport',
        Effect: 'Deny',
        Condition: { Bool: { 'aws:SecureTransport': false } },
      }),
    ]);
  });

  it("with network isolation, refuses the environment's job and instance roles outside its subnets and the endpoint", async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('isolated'));
    const names = namesOf(environment.name);
    const network = { cidr: '10.20.200.0/23' };

    // act
    await withSetting(SETTING.networkIsolation, 'true', () => invoke(handler, { step: 'createBucket', environment, network }));

    // assess
    const { Policy } = await s3.send(new GetBucketPolicyCommand({ Bucket: names.bucket }));
    const roles = { 'aws:PrincipalArn': [names.jobRoleArn, names.instanceRoleArn] };
    expect(JSON.parse(Policy!).Statement).toEqual([
      expect.objectContaining({ Sid: 'EnvironmentRolesOnlyThroughTheEndpoint', Effect: 'Deny', Condition: { ArnEquals: roles, StringNotEquals: { 'aws:SourceVpce': settings.s3EndpointId() } } }),
      expect.objectContaining({ Sid: 'EnvironmentRolesOnlyFromTheVpc', Effect: 'Deny', Condition: { ArnEquals: roles, StringNotEquals: { 'aws:SourceVpc': settings.vpcId() } } }),
      expect.objectContaining({ Sid: 'EnvironmentRolesOnlyFromTheirSubnets', Effect: 'Deny', Condition: { ArnEquals: roles, NotIpAddress: { 'aws:VpcSourceIp': network.cidr } } }),
    ]);
  });

  it('makes no bucket with isolation on but no address block (allocateNetwork comes first)', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('no-block'));
    // act
    const attempt = withSetting(SETTING.networkIsolation, 'true', () => invoke(handler, { step: 'createBucket', environment }));
    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ConfigurationError' });
    expect(await bucketExists(namesOf(environment.name).bucket)).toBe(false);
  });

  it('run twice ends with the same bucket and the same settings', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('twice'));
    const bucket = namesOf(environment.name).bucket;
    await invoke(handler, { step: 'createBucket', environment });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'metaflow/keep', Body: 'x' }));

    // act
    const second = await invoke(handler, { step: 'createBucket', environment });

    // assess
    expect(second).toEqual({ bucket, adopted: true });
    expect(await tagMap(bucket)).toEqual(tagsFor(currentDeployment(), environment.name, OWNER));
    const { Versions = [] } = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    expect(Versions.map((version) => version.Key)).toEqual(['metaflow/keep']);
  });

  it('refuses a bucket with its name that belongs to another environment, and changes nothing', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('taken'));
    const bucket = namesOf(environment.name).bucket;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: TAG.environment, Value: 'bob' }] } }));

    // act
    const attempt = invoke(handler, { step: 'createBucket', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict', message: expect.stringContaining('mfenv:environment=bob') });
    expect(await tagMap(bucket)).toEqual({ [TAG.environment]: 'bob' });
    await expect(s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }))).rejects.toThrow();
  });

  it('refuses an untagged bucket with its name', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('untagged'));
    await s3.send(new CreateBucketCommand({ Bucket: namesOf(environment.name).bucket }));

    // act
    const attempt = invoke(handler, { step: 'createBucket', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict', message: expect.stringContaining('has no mfenv:environment tag') });
  });
});

describe('deleteBucket', () => {
  it('deletes an empty bucket', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('empty'));
    await invoke(handler, { step: 'createBucket', environment });

    // act
    const answer = await invoke(handler, { step: 'deleteBucket', environment });

    // assess
    expect(answer).toEqual({ retained: false, objectCount: 0 });
    expect(await bucketExists(namesOf(environment.name).bucket)).toBe(false);
  });

  it('treats a bucket that is already gone as deleted', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('gone'));

    // act
    const first = await invoke(handler, { step: 'deleteBucket', environment });
    const second = await invoke(handler, { step: 'deleteBucket', environment });

    // assess
    expect(first).toEqual({ retained: false, objectCount: 0 });
    expect(second).toEqual(first);
  });

  it('keeps a bucket with data when no purge is asked for, every time, and a new create adopts it', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('keep'));
    const bucket = namesOf(environment.name).bucket;
    await invoke(handler, { step: 'createBucket', environment });
    await putObjects(bucket, 3);

    // act
    const first = await invoke(handler, { step: 'deleteBucket', environment });
    const second = await invoke(handler, { step: 'deleteBucket', environment });
    const adopted = await invoke(handler, { step: 'createBucket', environment: { ...environment, generation: 2 } });

    // assess
    expect(first).toEqual({ retained: true, objectCount: 3 });
    expect(second).toEqual(first);
    expect(adopted).toEqual({ bucket, adopted: true });
    const { Versions = [] } = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    expect(Versions).toHaveLength(3);
  });

  it('counts more than a page of versions when keeping, and with purge deletes every version, delete marker and unfinished upload, then the bucket', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('purge'));
    const bucket = namesOf(environment.name).bucket;
    await invoke(handler, { step: 'createBucket', environment });
    await putObjects(bucket, 1010);
    // Versions and delete markers only exist if someone turned versioning on; a purge must still empty it.
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'metaflow/data/0', Body: 'second version' }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'metaflow/data/1' }));
    await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'metaflow/big' }));
    const before = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(before.Uploads).toHaveLength(1);

    // act
    const kept = await invoke(handler, { step: 'deleteBucket', environment });
    const purged = await invoke(handler, { step: 'deleteBucket', environment: { ...environment, purge: true } });

    // assess
    expect(kept).toEqual({ retained: true, objectCount: 1011 });
    expect(purged).toEqual({ retained: false, objectCount: 0 });
    expect(await bucketExists(bucket)).toBe(false);
  });

  it.each([
    ['no record of the environment at all', async () => undefined],
    ['a record at another generation', async (environment: WorkflowEnvironment) => recordTeardown({ ...environment, generation: 7 })],
    ['a DELETE that did not ask for a purge', async (environment: WorkflowEnvironment) => recordTeardown({ ...environment, purge: false })],
    ['a READY record', async (environment: WorkflowEnvironment) => {
      await recordTeardown(environment);
      await registry.transition(environment.name, { from: ['DELETING'], to: 'READY', statusReason: null });
    }],
  ])('deletes nothing when asked to purge with %s in the registry', async (_case, record) => {
    // prepare: a bucket with data, and a registry that does not show this purge
    const environment = workflowEnvironment(uniqueName('guard'), { purge: true });
    const bucket = namesOf(environment.name).bucket;
    await invoke(handler, { step: 'createBucket', environment });
    await putObjects(bucket, 2);
    await record(environment);

    // act
    const attempt = invoke(handler, { step: 'deleteBucket', environment }, { unrecorded: true });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'TeardownNotRecorded', message: expect.stringContaining('Nothing of') });
    const { Versions = [] } = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    expect(Versions).toHaveLength(2);
  });

  it('leaves alone a bucket with its name that is not this environment’s', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('foreign'), { purge: true });
    const bucket = namesOf(environment.name).bucket;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: TAG.environment, Value: 'bob' }] } }));
    await putObjects(bucket, 2);

    // act
    const answer = await invoke(handler, { step: 'deleteBucket', environment });

    // assess
    expect(answer).toEqual({ retained: false, objectCount: 0 });
    const { Versions = [] } = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    expect(Versions).toHaveLength(2);
  });
});
