/**
 * Bucket steps: create (or adopt) an environment's S3 bucket, and delete it — or keep it when it still
 * holds data and no purge was asked for. No data is ever lost by a plain DELETE (DESIGN §6).
 */
import {
  AbortMultipartUploadCommand,
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketTaggingCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  type ObjectIdentifier,
  PutBucketEncryptionCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketTaggingCommand,
  PutPublicAccessBlockCommand,
  type Tag,
} from '@aws-sdk/client-s3';
import { s3Client } from '../core/clients';
import type { WorkflowEnvironment } from '../core/environment';
import { ConfigurationError, ResourceConflictError, TransientError } from '../core/errors';
import { logger } from '../core/logger';
import { namesFor, tagListFor } from '../core/naming';
import { type BucketIsolation, bucketPolicy } from '../core/policies';
import { currentDeployment, settings } from '../core/settings';
import { hasErrorCode, httpStatusOf } from './aws-errors';
import { isOurs, notOursError } from './ownership';
import { type StepInput, type StepTable, stepHandler } from './step';

/** DeleteObjects takes at most 1000 keys per call. */
const DELETE_BATCH_SIZE = 1000;
/**
 * How long one invocation keeps listing or deleting objects. The Task allows 120 s; a purge that needs more
 * ends with a TransientError, and Step Functions' retry of that error resumes where this one stopped.
 */
const WORK_BUDGET_MS = 90_000;

type BucketState = { exists: false } | { exists: true; tags: Tag[] | undefined };

const describeBucket = (name: string) => `The S3 bucket "${name}"`;

/** Where the environment's roles may reach the bucket from; undefined when network isolation is off. */
function isolationOf(environmentName: string, cidr: string | null | undefined): BucketIsolation | undefined {
  if (!settings.networkIsolation()) return undefined;
  if (!cidr) throw new ConfigurationError(`createBucket of "${environmentName}" got no address block (allocateNetwork comes first).`);
  return { vpcId: settings.vpcId(), s3EndpointId: settings.s3EndpointId(), cidr };
}

/**
 * Every call on an existing bucket names the account it must belong to: should the name ever point at a
 * bucket of another account, S3 refuses instead of acting on it (ExpectedBucketOwner).
 */
const ownBucket = (bucket: string) => ({ Bucket: bucket, ExpectedBucketOwner: settings.accountId() });

/** Whether the bucket exists in this account, and its tags. A bucket of another account is a conflict. */
async function readBucket(bucket: string, environmentName: string): Promise<BucketState> {
  const s3 = s3Client();
  try {
    await s3.send(new HeadBucketCommand({ ...ownBucket(bucket) }));
  } catch (error) {
    if (hasErrorCode(error, 'NotFound', 'NoSuchBucket') || httpStatusOf(error) === 404) return { exists: false };
    if (httpStatusOf(error) === 403) throw takenByAnotherAccount(bucket, environmentName);
    throw error;
  }
  try {
    const { TagSet } = await s3.send(new GetBucketTaggingCommand({ ...ownBucket(bucket) }));
    return { exists: true, tags: TagSet };
  } catch (error) {
    if (hasErrorCode(error, 'NoSuchTagSet')) return { exists: true, tags: undefined };
    if (hasErrorCode(error, 'NoSuchBucket')) return { exists: false };
    throw error;
  }
}

function takenByAnotherAccount(bucket: string, environmentName: string): ResourceConflictError {
  return new ResourceConflictError(
    `${describeBucket(bucket)} is owned by another AWS account, so the environment "${environmentName}" cannot use it. ` +
      `Choose another environment name, or ask the platform owner to deploy mfenv with another stack name.`,
  );
}

async function createBucket({ environment, network }: StepInput) {
  const s3 = s3Client();
  const deployment = currentDeployment();
  const names = namesFor(deployment, environment.name);
  const bucket = names.bucket;
  const tags = tagListFor(deployment, environment.name, environment.owner);
  // Checked before anything is made: a bucket without its policy must never be left behind.
  const isolation = isolationOf(environment.name, network?.cidr);

  const existing = await readBucket(bucket, environment.name);
  let adopted = false;
  if (existing.exists) {
    // A bucket kept by an earlier DELETE (it still held data) is adopted by the next create of the same name.
    if (!isOurs(existing.tags, environment.name)) throw notOursError(describeBucket(bucket), existing.tags, environment.name);
    adopted = true;
  } else {
    const region = settings.region();
    try {
      await s3.send(
        new CreateBucketCommand({
          Bucket: bucket,
          // Tags at creation make "created but not yet tagged" impossible on AWS; PutBucketTagging below
          // covers S3-compatible endpoints that ignore them.
          CreateBucketConfiguration: {
            ...(region === 'us-east-1' ? {} : { LocationConstraint: region as BucketLocationConstraint }),
            Tags: tags,
          },
        }),
      );
    } catch (error) {
      if (hasErrorCode(error, 'BucketAlreadyExists')) throw takenByAnotherAccount(bucket, environment.name);
      if (!hasErrorCode(error, 'BucketAlreadyOwnedByYou')) throw error;
      // Created a moment ago by a concurrent or earlier attempt: adopt it only if it is ours.
      const raced = await readBucket(bucket, environment.name);
      if (!raced.exists) throw new TransientError(`${describeBucket(bucket)} is being created or deleted right now.`);
      if (!isOurs(raced.tags, environment.name)) throw notOursError(describeBucket(bucket), raced.tags, environment.name);
      adopted = true;
    }
  }

  // Every setting is (re)applied on each run, so an adopted bucket ends up exactly like a new one.
  await s3.send(new PutBucketTaggingCommand({ ...ownBucket(bucket), Tagging: { TagSet: tags } }));
  await s3.send(
    new PutPublicAccessBlockCommand({
      ...ownBucket(bucket),
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        IgnorePublicAcls: true,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true,
      },
    }),
  );
  await s3.send(
    new PutBucketEncryptionCommand({
      ...ownBucket(bucket),
      ServerSideEncryptionConfiguration: {
        Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' }, BucketKeyEnabled: true }],
      },
    }),
  );
  await s3.send(
    new PutBucketOwnershipControlsCommand({
      ...ownBucket(bucket),
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    }),
  );
  const policy = bucketPolicy(names, settings.bucketTlsOnly(), isolation);
  if (policy) await s3.send(new PutBucketPolicyCommand({ ...ownBucket(bucket), Policy: JSON.stringify(policy) }));
  // No versioning: it would bill every overwritten object forever, and Metaflow's store is content-addressed.
  return { bucket, adopted };
}

/** Every object version and delete marker, a page at a time. */
async function* objectVersionPages(bucket: string): AsyncGenerator<{ versions: ObjectIdentifier[]; markers: ObjectIdentifier[] }> {
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  do {
    const page = await s3Client().send(new ListObjectVersionsCommand({ ...ownBucket(bucket), KeyMarker, VersionIdMarker }));
    yield {
      versions: (page.Versions ?? []).map((version) => ({ Key: version.Key!, VersionId: version.VersionId })),
      markers: (page.DeleteMarkers ?? []).map((marker) => ({ Key: marker.Key!, VersionId: marker.VersionId })),
    };
    if (!page.IsTruncated) return;
    KeyMarker = page.NextKeyMarker;
    VersionIdMarker = page.NextVersionIdMarker;
  } while (true);
}

async function deleteBatch(bucket: string, objects: ObjectIdentifier[]): Promise<void> {
  for (let start = 0; start < objects.length; start += DELETE_BATCH_SIZE) {
    const batch = objects.slice(start, start + DELETE_BATCH_SIZE);
    const { Errors } = await s3Client().send(new DeleteObjectsCommand({ ...ownBucket(bucket), Delete: { Objects: batch, Quiet: true } }));
    if (Errors && Errors.length > 0) {
      const first = Errors[0]!;
      throw new TransientError(
        `${Errors.length} objects of ${describeBucket(bucket)} could not be deleted (first: ${first.Key}: ${first.Code} ${first.Message}).`,
      );
    }
  }
}

async function abortMultipartUploads(bucket: string): Promise<void> {
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  do {
    const page = await s3Client().send(new ListMultipartUploadsCommand({ ...ownBucket(bucket), KeyMarker, UploadIdMarker }));
    for (const upload of page.Uploads ?? []) {
      try {
        await s3Client().send(new AbortMultipartUploadCommand({ ...ownBucket(bucket), Key: upload.Key, UploadId: upload.UploadId }));
      } catch (error) {
        if (!hasErrorCode(error, 'NoSuchUpload')) throw error;
      }
    }
    if (!page.IsTruncated) return;
    KeyMarker = page.NextKeyMarker;
    UploadIdMarker = page.NextUploadIdMarker;
  } while (true);
}

/**
 * Deletes every version and delete marker, within the work budget. Each round lists from the start again:
 * what the last round listed is gone, so the first page is always the next work (and no listing marker
 * has to point at a key that was just deleted, which the emulator cannot page from).
 */
async function purgeObjects(bucket: string, deadline: number): Promise<number> {
  let deleted = 0;
  while (true) {
    const first = await objectVersionPages(bucket).next();
    const objects = first.done ? [] : [...first.value.versions, ...first.value.markers];
    if (objects.length === 0) return deleted;
    await deleteBatch(bucket, objects);
    deleted += objects.length;
    if (Date.now() > deadline) {
      throw new TransientError(`Purging ${describeBucket(bucket)} takes long: ${deleted} versions deleted so far; continuing.`);
    }
  }
}

/** Object versions (not delete markers) in the bucket, and whether anything at all is left in it. */
async function countObjects(bucket: string, deadline: number): Promise<{ objectCount: number; empty: boolean }> {
  let objectCount = 0;
  let markers = 0;
  for await (const page of objectVersionPages(bucket)) {
    objectCount += page.versions.length;
    markers += page.markers.length;
    // Counting a very large bucket is not worth the teardown's time: what has been counted is reported.
    if (Date.now() > deadline) break;
  }
  return { objectCount, empty: objectCount === 0 && markers === 0 };
}

async function deleteEmptyBucket(bucket: string): Promise<'deleted' | 'gone' | 'not-empty'> {
  await abortMultipartUploads(bucket);
  try {
    await s3Client().send(new DeleteBucketCommand({ ...ownBucket(bucket) }));
    return 'deleted';
  } catch (error) {
    if (hasErrorCode(error, 'NoSuchBucket')) return 'gone';
    if (hasErrorCode(error, 'BucketNotEmpty')) return 'not-empty';
    throw error;
  }
}

async function deleteBucket({ environment }: StepInput): Promise<{ retained: boolean; objectCount: number }> {
  const bucket = namesFor(currentDeployment(), environment.name).bucket;
  const gone = { retained: false, objectCount: 0 };
  const existing = await readBucketForDelete(bucket, environment);
  if (!existing) return gone;

  const deadline = Date.now() + WORK_BUDGET_MS;
  if (environment.purge) {
    const deleted = await purgeObjects(bucket, deadline);
    logger.info('bucket purged', { bucket, deleted });
    const outcome = await deleteEmptyBucket(bucket);
    if (outcome === 'not-empty') {
      throw new TransientError(`${describeBucket(bucket)} received new objects while it was being purged; purging again.`);
    }
    return gone;
  }

  const { objectCount, empty } = await countObjects(bucket, deadline);
  if (empty) {
    const outcome = await deleteEmptyBucket(bucket);
    if (outcome !== 'not-empty') return gone;
    // Something was written between counting and deleting: keep it, and count again for the report.
    return { retained: true, objectCount: (await countObjects(bucket, deadline)).objectCount };
  }
  logger.info('bucket retained: it holds data and no purge was asked for', { bucket, objectCount });
  return { retained: true, objectCount };
}

/** The bucket if it is there and ours; a bucket of someone else with our name is left alone. */
async function readBucketForDelete(bucket: string, environment: WorkflowEnvironment): Promise<boolean> {
  let state: BucketState;
  try {
    state = await readBucket(bucket, environment.name);
  } catch (error) {
    if (error instanceof ResourceConflictError) {
      logger.warn('bucket of another account has our name; not touching it', { bucket });
      return false;
    }
    throw error;
  }
  if (!state.exists) return false;
  if (!isOurs(state.tags, environment.name)) {
    logger.warn('bucket with our name is not ours; not touching it', { bucket });
    return false;
  }
  return true;
}

export const steps: StepTable<'bucket'> = { createBucket, deleteBucket };

export const handler = stepHandler('bucket', steps);
