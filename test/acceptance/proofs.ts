/**
 * What "the payload works" means, as checks the acceptance test runs on real Metaflow runs. Each proof
 * compares what Metaflow did with what the API says the environment owns (its `resources`), never with the
 * payload itself: a payload key that points at the wrong place must make a proof fail. The negative cases
 * of the acceptance test run the same proofs with a broken payload and expect them to fail.
 *
 * Everything is observed in the emulator with its root credentials (every bucket, every queue).
 */
import {
  type BatchClient,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  type JobDetail,
  type JobStatus,
  ListJobsCommand,
} from '@aws-sdk/client-batch';
import { ListBucketsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { type FlowRun, type MetaflowProfile, readShardFlowRun, runFlow } from '../support/metaflow';

/** The part of the API's environment resource the proofs need. */
export interface ProvisionedEnvironment {
  name: string;
  resources: { bucket: string; jobQueueArn: string; jobRoleArn: string };
}

export class ProofFailure extends Error {
  override name = 'ProofFailure';
}

function must(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ProofFailure(message);
}

function tail(text: string, length = 2500): string {
  return text.length > length ? `...${text.slice(-length)}` : text;
}

/** Metaflow's datastore root of an environment, as its resource names it: s3://<bucket>/metaflow. */
export function expectedSysroot(environment: ProvisionedEnvironment): string {
  return `s3://${environment.resources.bucket}/metaflow`;
}

export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
}

/** Every object in every bucket of the emulator. */
export async function listEveryObject(s3: S3Client): Promise<StoredObject[]> {
  const objects: StoredObject[] = [];
  const buckets = (await s3.send(new ListBucketsCommand({}))).Buckets ?? [];
  for (const { Name: bucket } of buckets) {
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket!, ContinuationToken: token }));
      for (const object of page.Contents ?? []) objects.push({ bucket: bucket!, key: object.Key!, size: object.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
  return objects;
}

export interface LocalRunProof {
  runId: string;
  seconds: number;
  /** Objects of this run (task records and content-addressed artifacts), all in the environment's bucket. */
  objects: number;
  bytes: number;
  /** Sizes of the stored 1 MiB artifacts. */
  blobObjectSizes: number[];
}

/**
 * `python shard_flow.py run` with the profile, then the run read back with the Client API, then every bucket
 * of the emulator listed: the run succeeded, its values are right, and its data sits under the environment's
 * METAFLOW_DATASTORE_SYSROOT_S3 prefix in the environment's bucket, and nowhere else.
 */
export async function proveLocalRun(
  s3: S3Client,
  profile: MetaflowProfile,
  environment: ProvisionedEnvironment,
  options: { seed: number; shards?: number },
): Promise<LocalRunProof> {
  const shards = options.shards ?? 3;
  const run = await runFlow(profile, { args: ['--seed', String(options.seed), '--shards', String(shards)] });
  must(!run.timedOut, `the flow did not finish within its deadline:\n${tail(run.output)}`);
  must(run.code === 0 && run.runId, `the flow failed (exit ${run.code}):\n${tail(run.output)}`);
  const runId = run.runId;

  const report = await readShardFlowRun(profile, runId);
  must(report.runId === runId && report.successful && report.finished, `run ${runId} is not a finished, successful run`);
  must(report.namespace === `user:${environment.name}`, `the run's namespace is ${report.namespace}, not user:${environment.name}`);
  must(report.latestRunId === runId, `Flow('ShardFlow').latest_run is ${report.latestRunId}, not ${runId}`);
  must(JSON.stringify(report.steps) === JSON.stringify(['build', 'end', 'join', 'start']), `unexpected steps ${report.steps}`);
  must(report.seed === options.seed && report.shards === shards, `the run saw seed ${report.seed} and ${report.shards} shards`);
  must(JSON.stringify(report.digests) === JSON.stringify(report.expectedDigests), 'the joined digests differ from the data the seed yields');
  must(report.total === report.expectedTotal, `total ${report.total} != ${report.expectedTotal}`);
  must(report.summary.total === report.expectedTotal && report.summary.shards === shards, 'the end step summary is wrong');
  must(report.blobs.length === shards, `${report.blobs.length} build tasks, expected ${shards}`);
  const sysroot = expectedSysroot(environment);
  for (const blob of report.blobs) {
    must(blob.length === 1 << 20, `the blob of shard ${blob.shard} has ${blob.length} bytes`);
    must(blob.sha256 === report.expectedDigests[String(blob.shard)], `the blob of shard ${blob.shard} does not hold the seeded data`);
    must(blob.dsType === 's3', `the blob of shard ${blob.shard} was stored in the ${blob.dsType} datastore, not s3`);
    must(blob.location === `:root:${sysroot}`, `the blob of shard ${blob.shard} is stored at ${blob.location}, not under ${sysroot}`);
  }

  const prefix = 'metaflow/';
  const everything = await listEveryObject(s3);
  const blobKeys = new Set(report.blobs.map((blob) => `ShardFlow/data/${blob.sha.slice(0, 2)}/${blob.sha}`));
  const ofThisRun = everything.filter(
    (object) => object.key.includes(`/${runId}/`) || [...blobKeys].some((key) => object.key.endsWith(key)),
  );
  const elsewhere = ofThisRun.filter((object) => object.bucket !== environment.resources.bucket || !object.key.startsWith(prefix));
  must(
    elsewhere.length === 0,
    `objects of run ${runId} lie outside s3://${environment.resources.bucket}/${prefix}: ${elsewhere
      .slice(0, 5)
      .map((object) => `s3://${object.bucket}/${object.key}`)
      .join(', ')}`,
  );
  const strays = everything.filter((object) => object.bucket === environment.resources.bucket && !object.key.startsWith(prefix));
  must(strays.length === 0, `the bucket holds objects outside ${prefix}: ${strays.map((object) => object.key).join(', ')}`);
  const taskRecords = ofThisRun.filter((object) => object.key.startsWith(`${prefix}ShardFlow/${runId}/`));
  must(taskRecords.length > 0, `no task record of run ${runId} in s3://${environment.resources.bucket}/${prefix}ShardFlow/${runId}/`);
  const blobObjects = ofThisRun.filter((object) => [...blobKeys].some((key) => object.key === `${prefix}${key}`));
  must(blobObjects.length === shards, `${blobObjects.length} of ${shards} blob artifacts found in the environment's bucket`);

  return {
    runId,
    seconds: run.elapsedMs / 1000,
    objects: ofThisRun.length,
    bytes: ofThisRun.reduce((sum, object) => sum + object.size, 0),
    blobObjectSizes: blobObjects.map((object) => object.size),
  };
}

const JOB_STATUSES: JobStatus[] = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED'];

/** Every Batch job of a Metaflow run, in whichever queue of the emulator it landed. */
export async function jobsOfRun(batch: BatchClient, runId: string): Promise<JobDetail[]> {
  const queues = (await batch.send(new DescribeJobQueuesCommand({}))).jobQueues ?? [];
  const ids: string[] = [];
  for (const queue of queues) {
    for (const jobStatus of JOB_STATUSES) {
      const page = await batch.send(new ListJobsCommand({ jobQueue: queue.jobQueueArn, jobStatus }));
      for (const job of page.jobSummaryList ?? []) if (job.jobName?.includes(`-${runId}-`)) ids.push(job.jobId!);
    }
  }
  if (ids.length === 0) return [];
  return (await batch.send(new DescribeJobsCommand({ jobs: ids }))).jobs ?? [];
}

export interface BatchRunProof {
  runId: string;
  seconds: number;
  run: FlowRun;
  job: { jobName: string; jobQueue: string; jobDefinitionName: string; jobRoleArn: string; status: string; image: string };
}

/**
 * `python shard_flow.py run --with batch`: the first step is submitted to AWS Batch. The emulator accepts the
 * job but runs nothing and reports it SUCCEEDED at once, so Metaflow finds no task output and ends the run
 * itself (exit 1) within seconds; nothing needs to be killed. (If a future emulator kept the job waiting,
 * runFlow's deadline would stop the whole process group.) What matters is what Metaflow submitted: one job,
 * in this environment's queue, under a job definition Metaflow registered (metaflow_*) with this
 * environment's job role, and task environment variables pointing at this environment's datastore.
 */
export async function proveBatchSubmission(
  batch: BatchClient,
  profile: MetaflowProfile,
  environment: ProvisionedEnvironment,
  options: { seed: number },
): Promise<BatchRunProof> {
  const run = await runFlow(profile, { args: ['--seed', String(options.seed), '--with', 'batch'], timeoutMs: 120_000 });
  must(run.runId, `Metaflow did not start a run (exit ${run.code}):\n${tail(run.output)}`);
  const runId = run.runId;
  const jobs = await jobsOfRun(batch, runId);
  must(jobs.length > 0, `Metaflow submitted no Batch job for run ${runId} (exit ${run.code}):\n${tail(run.output)}`);
  must(jobs.length === 1, `${jobs.length} Batch jobs for run ${runId}; the run should stop after its first step`);
  const job = jobs[0]!;
  must(
    job.jobQueue === environment.resources.jobQueueArn,
    `the job landed in queue ${job.jobQueue}, not in the environment's queue ${environment.resources.jobQueueArn}`,
  );
  must(job.jobName?.startsWith(`${environment.name}-ShardFlow-${runId}-start-`), `unexpected job name ${job.jobName}`);

  const definitions =
    (await batch.send(new DescribeJobDefinitionsCommand({ jobDefinitions: [job.jobDefinition!] }))).jobDefinitions ?? [];
  must(definitions.length === 1, `the job's definition ${job.jobDefinition} is not registered`);
  const definition = definitions[0]!;
  must(definition.jobDefinitionName?.startsWith('metaflow_'), `the job definition ${definition.jobDefinitionName} is not Metaflow's`);
  const jobRoleArn = definition.containerProperties?.jobRoleArn;
  must(
    jobRoleArn === environment.resources.jobRoleArn,
    `the job definition runs as ${jobRoleArn}, not as the environment's job role ${environment.resources.jobRoleArn}`,
  );
  const taskEnv = new Map((job.container?.environment ?? []).map((pair) => [pair.name, pair.value]));
  must(
    taskEnv.get('METAFLOW_DATASTORE_SYSROOT_S3') === expectedSysroot(environment),
    `the task would write to ${taskEnv.get('METAFLOW_DATASTORE_SYSROOT_S3')}, not ${expectedSysroot(environment)}`,
  );
  must(taskEnv.get('METAFLOW_USER') === environment.name, `the task runs for user ${taskEnv.get('METAFLOW_USER')}`);
  const codeUrl = taskEnv.get('METAFLOW_CODE_URL') ?? '';
  must(codeUrl.startsWith(`${expectedSysroot(environment)}/`), `the task would fetch its code from ${codeUrl}`);

  return {
    runId,
    seconds: run.elapsedMs / 1000,
    run,
    job: {
      jobName: job.jobName!,
      jobQueue: job.jobQueue!,
      jobDefinitionName: definition.jobDefinitionName!,
      jobRoleArn: jobRoleArn!,
      status: job.status!,
      image: definition.containerProperties?.image ?? '',
    },
  };
}
