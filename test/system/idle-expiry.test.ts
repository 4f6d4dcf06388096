/**
 * Idle expiry end to end in local mode: the check (lambdas/core/idle-expiry.ts, which the daily rule's
 * Lambda runs on AWS) is run here with a clock moved forward, against the environment local mode made
 * through the API. Announced, then torn down by the real teardown workflow to DELETED, the bucket kept
 * with its data, as a plain DELETE keeps it; the name can be created again, adopting it.
 */
import { HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { emulatorClientConfig } from '../../infra/local/bootstrap';
import { DAY_MS, checkIdleEnvironments } from '../../lambdas/core/idle-expiry';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, apiClient, waitWhile } from '../support/signed-client';

jest.setTimeout(300_000);

const POLICY = { idleDays: 14, graceDays: 3 };
const local = useLocalMode();
let asAlice: ApiClient;
let s3: S3Client;

beforeAll(async () => {
  asAlice = apiClient(local.local.apiUrl, await local.local.createUser('alice'));
  s3 = new S3Client({ ...emulatorClientConfig(local.local.emulatorEndpoint), forcePathStyle: true });
}, 60_000);

afterAll(() => s3?.destroy());

test('an environment idle past the period is announced, then torn down after the grace, its bucket kept', async () => {
  // prepare: a READY environment that holds data and never ran a job
  expect((await asAlice.post('/environments', { name: 'idle', maxVcpus: 4, gpu: false })).status).toBe(202);
  const ready = await waitWhile(asAlice, 'idle', 'CREATING');
  expect(ready.json.status).toBe('READY');
  const bucket: string = ready.json.resources.bucket;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'metaflow/IdleFlow/data.pkl', Body: 'results' }));
  const createdAt = Date.parse(ready.json.createdAt);

  // act: the check 15 days later (announces), then 19 days later (past the 3-day grace: tears down)
  const announced = await checkIdleEnvironments(POLICY, () => new Date(createdAt + 15 * DAY_MS));
  const whileAnnounced = await asAlice.get('/environments/idle');
  const expired = await checkIdleEnvironments(POLICY, () => new Date(createdAt + 19 * DAY_MS));
  const gone = await waitWhile(asAlice, 'idle', 'DELETING');
  await local.local.runner.settled();

  // assess: announced while still usable, then DELETED by the teardown workflow with the bucket kept
  expect(announced.outcomes).toEqual({ idle: 'announced' });
  expect(whileAnnounced.json).toMatchObject({ status: 'READY' });
  expect(whileAnnounced.json.statusReason).toMatch(/^Idle since .*: no job submitted for 15 days; it will be torn down on .* \(its bucket kept\)/);
  expect(expired.outcomes).toEqual({ idle: 'expired' });
  expect(gone.json).toMatchObject({ status: 'DELETED', retainedBucket: bucket });
  expect(gone.json.statusReason).toContain(bucket);
  await expect(s3.send(new HeadBucketCommand({ Bucket: bucket }))).resolves.toBeDefined();
  const teardowns = local.local.executions().filter((record) => record.name.startsWith('idle-') && record.stateMachineId === 'teardown');
  expect(teardowns.map((record) => record.status)).toEqual(['SUCCEEDED']);

  // act + assess: created again, the name adopts the kept bucket
  const again = await asAlice.post('/environments', { name: 'idle', maxVcpus: 4, gpu: false });
  expect(again.status).toBe(202);
  expect(again.json.resources.bucket).toBe(bucket);
  expect((await waitWhile(asAlice, 'idle', 'CREATING')).json.status).toBe('READY');
});
