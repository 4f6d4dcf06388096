/**
 * Post-deploy smoke test, for the platform owner: `npm run smoke -- --api <ApiUrl>` with the owner's own AWS
 * credentials (the SDK's default chain). It creates a throwaway environment, assumes its access role, runs a
 * tiny Metaflow flow on its Spot queue, checks the bucket's isolation statements, deletes it with its data and
 * confirms that nothing tagged with it remains. Every check prints PASS, FAIL or SKIP (with the reason) and
 * the exit code is 0 only when no check failed.
 *
 * Against local mode (the served config points S3 at the emulator) the Batch run is skipped, since the
 * emulator runs no containers, and the same flow runs on this machine instead, which still proves the payload
 * and the access role's S3 access. Endpoint overrides come from the usual AWS_ENDPOINT_URL_* variables.
 *
 * With --full it also creates a second environment alongside the first and proves, with real Batch jobs, that
 * a job of the first environment's definition submitted to the second's queue cannot read the first's bucket
 * (infra/smoke_isolation.ts says how); against local mode those jobs are submitted, and the verdict skipped.
 *
 * Options: --api URL (or MFENV_API), --name, --python PATH (default python3), --region, --keep (no delete),
 * --full (the second environment and the proof from its queue), --probe-minutes N (how long --full waits for
 * its jobs, default 15: Spot capacity can take that long).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BatchClient,
  DeregisterJobDefinitionCommand,
  DescribeComputeEnvironmentsCommand,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  type JobDetail,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient, ListInstanceProfilesCommand, ListRolesCommand } from '@aws-sdk/client-iam';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { GetBucketPolicyCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type Credentials, type SignedApi, signedApi, signingRegionOf } from './signed-api';
import { BATCH_JOB_LOG_GROUP, canaryKey, classifyProbeJob, PROBE_IMAGE, probeJobDefinition, proofVerdicts, type Reading } from './smoke_isolation';

type Outcome = 'PASS' | 'FAIL' | 'SKIP';
interface Result {
  check: string;
  outcome: Outcome;
  detail: string;
}

const ENVIRONMENT_TAG = 'mfenv:environment';
const FLOW_FILE = join(__dirname, 'smoke_flow.py');
/** The bucket policy's statements under network isolation (lambdas/core/policies.ts, bucketPolicy). */
const ISOLATION_SIDS = ['EnvironmentRolesOnlyThroughTheEndpoint', 'EnvironmentRolesOnlyFromTheVpc', 'EnvironmentRolesOnlyFromTheirSubnets'];

const results: Result[] = [];
const seconds = (startedAt: number) => `${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const errorText = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

function report(check: string, outcome: Outcome, detail: string): void {
  results.push({ check, outcome, detail });
  console.log(`${outcome}  ${check}${detail ? ` — ${detail}` : ''}`);
}

/** Runs one check: what it returns is the PASS detail; what it throws, the FAIL detail. */
async function check<T>(name: string, run: () => Promise<{ detail: string; value: T }>): Promise<T | undefined> {
  try {
    const { detail, value } = await run();
    report(name, 'PASS', detail);
    return value;
  } catch (error) {
    report(name, 'FAIL', errorText(error));
    return undefined;
  }
}

function options() {
  const { values } = parseArgs({
    options: {
      api: { type: 'string' },
      name: { type: 'string' },
      python: { type: 'string', default: 'python3' },
      region: { type: 'string' },
      keep: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      'probe-minutes': { type: 'string', default: '15' },
    },
  });
  const probeMinutes = Number(values['probe-minutes']);
  if (!(probeMinutes > 0)) {
    console.error(`smoke: --probe-minutes wants a number of minutes, not ${values['probe-minutes']}.`);
    process.exit(2);
  }
  const api = values.api ?? process.env.MFENV_API;
  if (!api) {
    console.error('smoke: --api <ApiUrl> (or MFENV_API) is required: the ApiUrl output of the stack.');
    process.exit(2);
  }
  const region = values.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? signingRegionOf(api, 'us-east-1');
  return { ...values, api, region, probeMinutes, name: values.name ?? `smoke-${randomBytes(3).toString('hex')}`, python: values.python! };
}

/**
 * GETs the environment until `done` says so, printing each new progress step (after `label`, when two
 * environments are waited for at once); the last answer.
 */
async function waitFor(api: SignedApi, name: string, done: (status: number, body: any) => boolean, timeoutMs: number, label = '') {
  const deadline = Date.now() + timeoutMs;
  let lastStep = '';
  let pause = 250;
  for (;;) {
    const response = await api.get(`/environments/${name}`);
    if (done(response.status, response.json)) return response;
    if (response.status !== 200) throw new Error(`GET /environments/${name} answered ${response.status}: ${response.text.slice(0, 300)}`);
    const step = response.json?.progress?.step;
    if (step && step !== lastStep) console.log(`      … ${label}${step}`);
    lastStep = step ?? lastStep;
    if (Date.now() > deadline) throw new Error(`still ${response.json?.status} after ${timeoutMs / 60_000} min`);
    await sleep(pause);
    // Local mode settles in a second or two, AWS in minutes: start fast, then poll every 5 s.
    pause = Math.min(pause * 2, 5_000);
  }
}

interface ProcessResult {
  code: number | null;
  output: string;
  /** ms from the start to the first Batch task reported RUNNING (or done), if any. */
  jobStartMs?: number;
}

function runProcess(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let jobStartMs: number | undefined;
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      // Metaflow's Batch client reports the job's status until it runs (metaflow/plugins/aws/batch/batch.py).
      if (jobStartMs === undefined && /Task is starting \(status (RUNNING|SUCCEEDED|FAILED)\)/.test(text)) {
        jobStartMs = Date.now() - startedAt;
        console.log(`      … first Batch task running after ${(jobStartMs / 1000).toFixed(1)} s`);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}\n${errorText(error)}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, jobStartMs });
    });
  });
}

const tail = (text: string) => text.trim().split('\n').slice(-15).join('\n      | ');

/** What the Client API reads back of the latest SmokeFlow run, as JSON on the last line. */
const READ_BACK = `
import json
from metaflow import Flow
run = Flow("SmokeFlow").latest_run
print(json.dumps({"run": run.pathspec, "successful": run.successful, "answer": run["start"].task.data.answer,
                  "batchJobId": run["start"].task.data.batch_job_id}))
`;

/**
 * Runs the flow as a teammate would with the environment's served config, under the access role's
 * credentials only: a private HOME (no ~/.aws, no ~/.metaflowconfig of this machine), METAFLOW_HOME holding
 * config_<name>.json, METAFLOW_PROFILE=<name>. Of the endpoint overrides, only Batch's and STS's are passed
 * on: S3 must be reached through the payload alone.
 */
async function runFlow(python: string, name: string, config: Record<string, string>, role: Credentials, region: string, batch: boolean) {
  const root = mkdtempSync(join(tmpdir(), `mfenv-smoke-${name}-`));
  try {
    const home = join(root, 'home');
    const metaflowHome = join(root, 'metaflow');
    const workdir = join(root, 'work');
    for (const dir of [home, metaflowHome, workdir]) mkdirSync(dir);
    writeFileSync(join(metaflowHome, `config_${name}.json`), JSON.stringify(config, null, 2));
    copyFileSync(FLOW_FILE, join(workdir, 'smoke_flow.py'));
    const passOn = (service: 'BATCH' | 'STS') => {
      const endpoint = process.env[`AWS_ENDPOINT_URL_${service}`] ?? process.env.AWS_ENDPOINT_URL;
      return endpoint ? { [`AWS_ENDPOINT_URL_${service}`]: endpoint } : {};
    };
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      LANG: 'C.UTF-8',
      TMPDIR: tmpdir(),
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      METAFLOW_HOME: metaflowHome,
      METAFLOW_PROFILE: name,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: role.accessKeyId,
      AWS_SECRET_ACCESS_KEY: role.secretAccessKey,
      ...(role.sessionToken ? { AWS_SESSION_TOKEN: role.sessionToken } : {}),
      ...passOn('BATCH'),
      ...passOn('STS'),
    };
    const startedAt = Date.now();
    const args = ['smoke_flow.py', '--no-pylint', 'run', ...(batch ? ['--with', 'batch'] : [])];
    const run = await runProcess(python, args, workdir, env, batch ? 45 * 60_000 : 5 * 60_000);
    const runTime = seconds(startedAt);
    if (run.code !== 0) throw new Error(`flow run exited ${run.code}:\n      | ${tail(run.output)}`);
    const read = await runProcess(python, ['-c', READ_BACK], workdir, env, 2 * 60_000);
    if (read.code !== 0) throw new Error(`Client API read exited ${read.code}:\n      | ${tail(read.output)}`);
    const data = JSON.parse(read.output.trim().split('\n').pop() ?? '{}');
    if (!data.successful || data.answer !== 42) throw new Error(`read back ${JSON.stringify(data)}, expected a successful run with answer 42`);
    if (batch && !data.batchJobId) throw new Error(`${data.run} did not run in a Batch job (no AWS_BATCH_JOB_ID)`);
    const jobStart = run.jobStartMs === undefined ? '' : `job start ${(run.jobStartMs / 1000).toFixed(1)} s, `;
    return `${data.run} read back (answer 42${batch ? `, job ${data.batchJobId}` : ''}); ${jobStart}run ${runTime}`;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The environment's own subnets (network isolation gives each environment some). */
async function ownSubnets(ec2: EC2Client, name: string): Promise<string[]> {
  const answer = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: `tag:${ENVIRONMENT_TAG}`, Values: [name] }] }));
  return (answer.Subnets ?? []).map((subnet) => subnet.SubnetId ?? '?');
}

async function checkIsolationStatements(s3: S3Client, bucket: string, roleArns: string[]): Promise<string> {
  const policy = JSON.parse((await s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).Policy ?? '{}');
  const statements: any[] = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement].filter(Boolean);
  for (const sid of ISOLATION_SIDS) {
    const statement = statements.find((candidate) => candidate.Sid === sid);
    if (!statement) throw new Error(`bucket policy of ${bucket} has no ${sid} statement`);
    const matched = [statement.Condition?.ArnEquals?.['aws:PrincipalArn'] ?? []].flat();
    if (statement.Effect !== 'Deny' || !roleArns.every((arn) => matched.includes(arn))) {
      throw new Error(`${sid} is not a Deny for ${roleArns.join(' and ')}: ${JSON.stringify(statement)}`);
    }
  }
  return `${bucket}: ${ISOLATION_SIDS.join(', ')} deny the job and instance roles`;
}

/** Everything still tagged with the environment, by the Resource Groups Tagging API. */
async function taggedResources(tagging: ResourceGroupsTaggingAPIClient, name: string): Promise<string[]> {
  const arns: string[] = [];
  let PaginationToken: string | undefined;
  do {
    const page = await tagging.send(new GetResourcesCommand({ TagFilters: [{ Key: ENVIRONMENT_TAG, Values: [name] }], PaginationToken }));
    arns.push(...(page.ResourceTagMappingList ?? []).map((mapping) => mapping.ResourceARN ?? '?'));
    PaginationToken = page.PaginationToken || undefined;
  } while (PaginationToken);
  return arns;
}

/** The same question asked of each service, for where the tagging API does not answer (the emulator). */
async function leftoversDirectly(aws: Aws, name: string, resources: Record<string, string>): Promise<string[]> {
  const left: string[] = [];
  try {
    await aws.s3.send(new HeadBucketCommand({ Bucket: resources.bucket }));
    left.push(`bucket ${resources.bucket}`);
  } catch (error: any) {
    if (error?.$metadata?.httpStatusCode !== 404) throw error;
  }
  // Roles and instance profiles: `<prefix>-<name>-*` under the IAM path `/<prefix>/` of the access role.
  const accessRole = resources.accessRoleArn ?? '';
  const PathPrefix = accessRole.slice(accessRole.indexOf(':role/') + ':role'.length, accessRole.lastIndexOf('/') + 1);
  const base = accessRole.slice(accessRole.lastIndexOf('/') + 1).replace(/-access$/, '');
  const roles = await aws.iam.send(new ListRolesCommand({ PathPrefix, MaxItems: 1000 }));
  left.push(...(roles.Roles ?? []).filter((role) => role.RoleName?.startsWith(`${base}-`)).map((role) => `role ${role.RoleName}`));
  const profiles = await aws.iam.send(new ListInstanceProfilesCommand({ PathPrefix, MaxItems: 1000 }));
  left.push(
    ...(profiles.InstanceProfiles ?? [])
      .filter((profile) => profile.InstanceProfileName?.startsWith(`${base}-`))
      .map((profile) => `instance profile ${profile.InstanceProfileName}`),
  );
  // Batch shows a deleted compute environment or queue as DELETED for a while.
  const environments = await aws.batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [resources.computeEnvironmentArn!] }));
  left.push(
    ...(environments.computeEnvironments ?? [])
      .filter((environment) => environment.status !== 'DELETED')
      .map((environment) => `compute environment ${environment.computeEnvironmentName}`),
  );
  const queues = await aws.batch.send(new DescribeJobQueuesCommand({ jobQueues: [resources.jobQueueArn!] }));
  left.push(...(queues.jobQueues ?? []).filter((queue) => queue.status !== 'DELETED').map((queue) => `job queue ${queue.jobQueueName}`));
  left.push(...(await ownSubnets(aws.ec2, name)).map((subnet) => `subnet ${subnet}`));
  left.push(...(await activeDefinitionsNaming(aws.batch, resources.jobRoleArn!)).map((arn) => `job definition ${arn}`));
  return left;
}

/**
 * Metaflow's job definitions (and the probe's) still ACTIVE that name a job role: the teardown deregisters
 * them, since definitions are account-wide and outlive the role they name.
 */
async function activeDefinitionsNaming(batch: BatchClient, jobRoleArn: string): Promise<string[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await batch.send(new DescribeJobDefinitionsCommand({ status: 'ACTIVE', maxResults: 100, nextToken }));
    for (const definition of page.jobDefinitions ?? []) {
      if (definition.jobDefinitionName?.startsWith('metaflow_') && definition.containerProperties?.jobRoleArn === jobRoleArn) {
        arns.push(definition.jobDefinitionArn ?? definition.jobDefinitionName);
      }
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return arns;
}

interface Aws {
  sts: STSClient;
  s3: S3Client;
  iam: IAMClient;
  batch: BatchClient;
  ec2: EC2Client;
  tagging: ResourceGroupsTaggingAPIClient;
}

/** One environment of the run: the one under test, and with --full a second one, the colleague's. */
interface Environment {
  name: string;
  /** After its checks' names: the first environment's keep their plain names. */
  suffix: string;
  /** Before its progress lines, when two environments are waited for at once. */
  label: string;
  created: boolean;
  ready?: any;
  resources: Record<string, string>;
  config?: Record<string, string>;
  role?: Credentials;
  taggedBefore: string[] | Error;
  deleted: boolean;
}

function environment(name: string, suffix: string, label: string): Environment {
  return { name, suffix, label, created: false, resources: {}, taggedBefore: [], deleted: false };
}

/** Names are 3 to 32 characters (lambdas/core/environment.ts): the second one keeps within them. */
const secondName = (name: string) => `${name.slice(0, 30)}-b`;

async function createStep(api: SignedApi, env: Environment): Promise<void> {
  env.ready = await check(`create → READY${env.suffix}`, async () => {
    const startedAt = Date.now();
    const posted = await api.post('/environments', { name: env.name, maxVcpus: 2, gpu: false });
    if (posted.status !== 202) throw new Error(`POST /environments answered ${posted.status}: ${posted.text.slice(0, 300)}`);
    env.created = true;
    const ready = await waitFor(api, env.name, (status, body) => status === 200 && body?.status !== 'CREATING', 45 * 60_000, env.label);
    if (ready.json?.status !== 'READY') throw new Error(`${env.name} is ${ready.json?.status}: ${ready.json?.statusReason}`);
    return { detail: `${env.suffix ? `${env.name} ` : ''}to READY ${seconds(startedAt)}`, value: ready.json };
  });
  env.resources = env.ready?.resources ?? {};
  env.config = env.ready?.config;
}

async function assumeStep(sts: STSClient, region: string, env: Environment): Promise<void> {
  const name = `assume access role${env.suffix}`;
  if (!env.ready) {
    report(name, 'SKIP', 'no READY environment');
    return;
  }
  const resources = env.resources;
  env.role = await check(name, async () => {
    const session = `smoke-${env.name}`.slice(0, 64);
    const startedAt = Date.now();
    let assumed;
    // A role's trust can take a few seconds to reach every STS endpoint after it is created.
    for (let attempt = 1; ; attempt += 1) {
      try {
        assumed = await sts.send(new AssumeRoleCommand({ RoleArn: resources.accessRoleArn, RoleSessionName: session, DurationSeconds: 3600 }));
        break;
      } catch (error: any) {
        if (error?.name !== 'AccessDenied' || attempt >= 12) throw error;
        await sleep(5_000);
      }
    }
    const credentials: Credentials = {
      accessKeyId: assumed.Credentials!.AccessKeyId!,
      secretAccessKey: assumed.Credentials!.SecretAccessKey!,
      sessionToken: assumed.Credentials!.SessionToken!,
    };
    const asRole = new STSClient({ region, credentials });
    const identity = await asRole.send(new GetCallerIdentityCommand({})).finally(() => asRole.destroy());
    const roleName = resources.accessRoleArn!.slice(resources.accessRoleArn!.lastIndexOf('/') + 1);
    if (!identity.Arn?.endsWith(`:assumed-role/${roleName}/${session}`)) {
      throw new Error(`GetCallerIdentity answered ${identity.Arn}, not a session of ${roleName}`);
    }
    return { detail: `${identity.Arn} (${seconds(startedAt)})`, value: credentials };
  });
}

async function deleteStep(api: SignedApi, env: Environment, keep: boolean): Promise<void> {
  const name = `delete → DELETED${env.suffix}`;
  if (!env.created) {
    report(name, 'SKIP', 'nothing was created');
    return;
  }
  if (keep) {
    report(name, 'SKIP', `--keep: ${env.name} left in place (DELETE /environments/${env.name}?purge=true when done)`);
    return;
  }
  env.deleted =
    (await check(name, async () => {
      const startedAt = Date.now();
      // A create that failed is still rolling back (DELETE answers 409 while CREATING): wait for it first.
      await waitFor(api, env.name, (status, body) => status !== 200 || body?.status !== 'CREATING', 45 * 60_000, env.label);
      const answer = await api.delete(`/environments/${env.name}?purge=true`);
      if (answer.status !== 202) throw new Error(`DELETE answered ${answer.status}: ${answer.text.slice(0, 300)}`);
      const final = await waitFor(
        api,
        env.name,
        (status, body) => status === 404 || (status === 200 && body?.status !== 'DELETING'),
        45 * 60_000,
        env.label,
      );
      if (final.status === 200 && final.json?.status !== 'DELETED') throw new Error(`${env.name} is ${final.json?.status}: ${final.json?.statusReason}`);
      return { detail: `${env.suffix ? `${env.name} ` : ''}teardown ${seconds(startedAt)}`, value: true };
    })) ?? false;
}

async function nothingLeftStep(aws: Aws, env: Environment): Promise<void> {
  const name = `nothing left${env.suffix}`;
  if (!env.deleted) {
    report(name, 'SKIP', 'no completed teardown to check');
    return;
  }
  await check(name, async () => {
    let left: string[] | undefined;
    let how = '';
    if (env.taggedBefore instanceof Error) {
      how = `the tagging API answered ${errorText(env.taggedBefore).slice(0, 120)}`;
    } else if (env.taggedBefore.length === 0) {
      how = 'the tagging API saw nothing of the environment while it existed';
    } else {
      try {
        // The tagging API's index lags behind deletions by a little on AWS.
        const deadline = Date.now() + 120_000;
        for (;;) {
          left = await taggedResources(aws.tagging, env.name);
          if (left.length === 0 || Date.now() > deadline) break;
          await sleep(10_000);
        }
        how = `GetResources ${ENVIRONMENT_TAG}=${env.name}, which saw ${env.taggedBefore.length} before the delete`;
      } catch (error) {
        how = `the tagging API answered ${errorText(error).slice(0, 120)}`;
      }
    }
    // The tagging API may not index every type (the emulator's covers buckets and subnets, not roles or
    // Batch), and job definitions carry no tags: each kind is also looked up where it lives.
    const direct = await leftoversDirectly(aws, env.name, env.resources);
    how += '; checked directly: bucket, roles, instance profiles, compute environment, queue, subnets, job definitions';
    const still = [...new Set([...(left ?? []), ...direct])];
    if (still.length > 0) throw new Error(`still there (${how}): ${still.join(', ')}`);
    return { detail: `nothing (${how})`, value: true };
  });
}

const PROOF = 'network isolation proof (a job elsewhere cannot read)';
const CONTROL = 'control: the same job in its own environment reads';
const FINISHED = new Set(['SUCCEEDED', 'FAILED']);
/** A queue's or role's name, from its ARN. */
const lastPart = (arn: string | undefined) => arn?.slice(arn.lastIndexOf('/') + 1) ?? '?';

/**
 * --full: the probe of infra/smoke_isolation.ts. `home` is the environment under test, `elsewhere` the
 * colleague's. Everything goes through the two access roles, with only what lambdas/core/policies.ts grants
 * them: the canary is written and the definition registered by home's role (its bucket; `metaflow_*`; its
 * own job role to pass), each job submitted by the role of the queue it goes to, and the logs read from
 * Batch's log group. Returns the definition's ARN, for the cleanup.
 */
async function isolationProof(
  opts: { region: string; probeMinutes: number },
  home: Environment,
  elsewhere: Environment,
  local: boolean,
  forcePathStyle: boolean,
): Promise<string | undefined> {
  const region = opts.region;
  const homeBatch = new BatchClient({ region, credentials: home.role });
  const elsewhereBatch = new BatchClient({ region, credentials: elsewhere.role });
  const homeS3 = new S3Client({ region, credentials: home.role, forcePathStyle });
  try {
    const definition = await check('probe job definition registered', async () => {
      const key = canaryKey();
      await homeS3.send(new PutObjectCommand({ Bucket: home.resources.bucket, Key: key, Body: `mfenv smoke canary for ${home.name}\n` }));
      const input = probeJobDefinition({ jobRoleArn: home.resources.jobRoleArn!, bucket: home.resources.bucket!, key, region });
      const registered = await homeBatch.send(new RegisterJobDefinitionCommand(input));
      const arn = registered.jobDefinitionArn!;
      return {
        detail: `${registered.jobDefinitionName}:${registered.revision} by ${home.name}'s access role: ${PROBE_IMAGE} reading s3://${home.resources.bucket}/${key} with job role ${home.resources.jobRoleArn}`,
        value: arn,
      };
    });
    if (!definition) {
      report(PROOF, 'SKIP', 'no probe job definition');
      return undefined;
    }

    const submitted: string[] = [];
    const jobs = await check('probe jobs submitted', async () => {
      const foreign = await elsewhereBatch.send(
        new SubmitJobCommand({ jobName: 'mfenv-smoke-foreign', jobQueue: elsewhere.resources.jobQueueArn, jobDefinition: definition }),
      );
      submitted.push(foreign.jobId!);
      const control = await homeBatch.send(new SubmitJobCommand({ jobName: 'mfenv-smoke-control', jobQueue: home.resources.jobQueueArn, jobDefinition: definition }));
      submitted.push(control.jobId!);
      // Where each job went and with which role, as Batch reports it, not as it was asked.
      let described = await describeJobs(homeBatch, submitted);
      for (let attempt = 1; described.size < submitted.length && attempt <= 5; attempt += 1) {
        await sleep(2_000);
        described = await describeJobs(homeBatch, submitted);
      }
      const jobRole = async (job: JobDetail | undefined) => job?.container?.jobRoleArn ?? (await definitionJobRole(homeBatch, job?.jobDefinition));
      const [foreignJob, controlJob] = [described.get(foreign.jobId!), described.get(control.jobId!)];
      const [foreignRole, controlRole] = [await jobRole(foreignJob), await jobRole(controlJob)];
      if (foreignJob?.jobQueue !== elsewhere.resources.jobQueueArn || foreignRole !== home.resources.jobRoleArn) {
        throw new Error(`Batch reports job ${foreign.jobId} on ${foreignJob?.jobQueue} with job role ${foreignRole}`);
      }
      if (controlJob?.jobQueue !== home.resources.jobQueueArn || controlRole !== home.resources.jobRoleArn) {
        throw new Error(`Batch reports job ${control.jobId} on ${controlJob?.jobQueue} with job role ${controlRole}`);
      }
      return {
        detail:
          `foreign job ${foreign.jobId} by ${elsewhere.name}'s access role on queue ${lastPart(elsewhere.resources.jobQueueArn)} with job role ${lastPart(foreignRole)}; ` +
          `control job ${control.jobId} by ${home.name}'s access role on queue ${lastPart(home.resources.jobQueueArn)}`,
        value: { foreign: foreign.jobId!, control: control.jobId! },
      };
    });
    if (!jobs) {
      // A job that went in before the failure would otherwise wait for a Spot instance for nothing.
      for (const jobId of submitted) await homeBatch.send(new TerminateJobCommand({ jobId, reason: 'mfenv smoke: not followed' })).catch(() => undefined);
      report(PROOF, 'SKIP', 'the probe jobs were not submitted as asked');
      return definition;
    }

    let ended: Map<string, JobDetail>;
    let waited: string;
    try {
      ({ ended, waited } = await waitForJobs(homeBatch, jobs, opts.probeMinutes * 60_000));
    } catch (error) {
      for (const jobId of submitted) await homeBatch.send(new TerminateJobCommand({ jobId, reason: 'mfenv smoke: not followed' })).catch(() => undefined);
      report(PROOF, 'FAIL', `following the jobs: ${errorText(error)}`);
      return definition;
    }
    const [foreignJob, controlJob] = [ended.get(jobs.foreign), ended.get(jobs.control)];

    if (local) {
      // The emulator walks every job to SUCCEEDED without a container and stores bucket policies without
      // evaluating them (infra/local/moto_server.py): its statuses say nothing either way.
      report(
        PROOF,
        'SKIP',
        `local mode: the emulator marks Batch jobs SUCCEEDED without running them and evaluates no bucket policy (it reports the job on ${elsewhere.name}'s queue ${foreignJob?.status}); on AWS that job must be denied`,
      );
      report(CONTROL, 'SKIP', `local mode: the emulator ran no container (it reports the job on ${home.name}'s queue ${controlJob?.status})`);
      return definition;
    }
    const logs = new CloudWatchLogsClient({ region, credentials: elsewhere.role });
    try {
      const foreign: Reading = classifyProbeJob(foreignJob, await jobLog(logs, foreignJob), waited);
      const control: Reading = classifyProbeJob(controlJob, await jobLog(logs, controlJob), waited);
      const verdicts = proofVerdicts(foreign, control, { home: home.name, elsewhere: elsewhere.name });
      report(PROOF, verdicts.proof.outcome, verdicts.proof.detail);
      report(CONTROL, verdicts.control.outcome, verdicts.control.detail);
    } finally {
      logs.destroy();
    }
    return definition;
  } finally {
    for (const client of [homeBatch, elsewhereBatch, homeS3]) client.destroy();
  }
}

async function describeJobs(batch: BatchClient, ids: string[]): Promise<Map<string, JobDetail>> {
  const answer = await batch.send(new DescribeJobsCommand({ jobs: ids }));
  return new Map((answer.jobs ?? []).map((job) => [job.jobId!, job]));
}

async function definitionJobRole(batch: BatchClient, arn: string | undefined): Promise<string | undefined> {
  if (!arn) return undefined;
  const answer = await batch.send(new DescribeJobDefinitionsCommand({ jobDefinitions: [arn] }));
  return answer.jobDefinitions?.[0]?.containerProperties?.jobRoleArn;
}

/**
 * Polls both jobs until they end or `timeoutMs` passes, printing each change of status; what is still
 * unfinished then is terminated (an access role may: `TerminateJob` takes no resource), so no Spot instance
 * keeps waiting for it.
 */
async function waitForJobs(batch: BatchClient, jobs: { foreign: string; control: string }, timeoutMs: number) {
  const startedAt = Date.now();
  const deadline = startedAt + timeoutMs;
  const names = new Map([
    [jobs.foreign, 'foreign job'],
    [jobs.control, 'control job'],
  ]);
  const last = new Map<string, string>();
  let pause = 250;
  let described: Map<string, JobDetail>;
  for (;;) {
    described = await describeJobs(batch, [...names.keys()]);
    for (const [id, label] of names) {
      const status = described.get(id)?.status ?? 'unknown';
      if (last.get(id) !== status) console.log(`      … ${label}: ${status} (${seconds(startedAt)})`);
      last.set(id, status);
    }
    if ([...names.keys()].every((id) => FINISHED.has(described.get(id)?.status ?? ''))) break;
    if (Date.now() > deadline) {
      for (const id of names.keys()) {
        if (!FINISHED.has(described.get(id)?.status ?? '')) {
          await batch.send(new TerminateJobCommand({ jobId: id, reason: 'mfenv smoke: gave up waiting' })).catch(() => undefined);
        }
      }
      break;
    }
    await sleep(pause);
    // The emulator ends jobs at once, AWS in minutes: start fast, then poll every 10 s.
    pause = Math.min(pause * 2, 10_000);
  }
  return { ended: described, waited: seconds(startedAt) };
}

/** The job's output in Batch's log group; undefined when it has none, or it cannot be read. */
async function jobLog(logs: CloudWatchLogsClient, job: JobDetail | undefined): Promise<string | undefined> {
  const logStreamName = job?.container?.logStreamName;
  if (!logStreamName || job?.container?.exitCode === undefined) return undefined;
  // Log delivery trails the job's end by a few seconds.
  for (let attempt = 1; attempt <= 6; attempt += 1) {
    try {
      const answer = await logs.send(new GetLogEventsCommand({ logGroupName: BATCH_JOB_LOG_GROUP, logStreamName, startFromHead: true, limit: 100 }));
      const text = (answer.events ?? []).map((event) => event.message ?? '').join('\n');
      if (text.trim()) return text;
    } catch (error: any) {
      if (error?.name !== 'ResourceNotFoundException') return undefined;
    }
    await sleep(5_000);
  }
  return undefined;
}

/**
 * The probe's definition is deregistered by the teardown of the environment whose job role it names; after
 * a --keep, or a teardown that did not, the owner's credentials do it (no access role may deregister).
 */
async function deregisterStep(batch: BatchClient, arn: string, home: Environment): Promise<void> {
  await check('probe job definition deregistered', async () => {
    const name = arn.slice(arn.lastIndexOf('/') + 1);
    const [definition] = (await batch.send(new DescribeJobDefinitionsCommand({ jobDefinitions: [arn] }))).jobDefinitions ?? [];
    if (definition && definition.status !== 'ACTIVE') return { detail: `${name} ${definition.status}: ${home.name}'s teardown deregistered it`, value: true };
    await batch.send(new DeregisterJobDefinitionCommand({ jobDefinition: arn }));
    return { detail: `${name} deregistered with the owner's credentials (${home.deleted ? 'the teardown left it ACTIVE' : `${home.name} was not torn down`})`, value: true };
  });
}

async function main(): Promise<number> {
  const opts = options();
  const overridden = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  const aws: Aws = {
    sts: new STSClient({ region: opts.region }),
    // An endpoint override is an emulator, which serves buckets by path only.
    s3: new S3Client({ region: opts.region, forcePathStyle: overridden }),
    iam: new IAMClient({ region: opts.region }),
    batch: new BatchClient({ region: opts.region }),
    ec2: new EC2Client({ region: opts.region }),
    tagging: new ResourceGroupsTaggingAPIClient({ region: opts.region }),
  };
  const ownerCredentials = () => aws.sts.config.credentials();
  const api = signedApi(opts.api, ownerCredentials, signingRegionOf(opts.api, opts.region));
  const home = environment(opts.name, '', opts.full ? `${opts.name}: ` : '');
  const second = opts.full ? environment(secondName(opts.name), ' (second environment)', `${secondName(opts.name)}: `) : undefined;
  const all = second ? [home, second] : [home];

  const owner = await aws.sts.send(new GetCallerIdentityCommand({}));
  console.log(`smoke: ${home.name}${second ? ` and ${second.name}` : ''} on ${opts.api} (${opts.region}), as ${owner.Arn}`);

  let definition: string | undefined;
  try {
    // 1. Create, and wait for READY: both at once with --full.
    await Promise.all(all.map((env) => createStep(api, env)));
    const { resources, config } = home;
    // Only the emulator needs the payload to name an S3 endpoint (README, "Use it from Metaflow").
    const local = Boolean(config?.METAFLOW_S3_ENDPOINT_URL);

    // 2. Assume the access roles, and be their sessions.
    for (const env of all) await assumeStep(aws.sts, opts.region, env);
    const role = home.role;

    // 3. A flow on the environment's Spot queue; against the emulator, on this machine instead.
    const batchCheck = 'Metaflow run --with batch';
    if (!role || !config) {
      report(batchCheck, 'SKIP', 'no access role session or no served config');
    } else if (local) {
      report(batchCheck, 'SKIP', 'local mode: the emulator accepts Batch jobs but runs no containers');
      await check('Metaflow run (local, no batch)', async () => ({ detail: await runFlow(opts.python, home.name, config, role, opts.region, false), value: true }));
    } else {
      await check(batchCheck, async () => ({ detail: await runFlow(opts.python, home.name, config, role, opts.region, true), value: true }));
    }

    // 4. Network isolation: the bucket policy's statements, then with --full the proof from a foreign job.
    const instanceRoleArn = (resources.instanceProfileArn ?? '').replace(':instance-profile/', ':role/');
    let isolated = false;
    if (!home.ready) {
      report('bucket policy isolation', 'SKIP', 'no READY environment');
    } else {
      const subnets = await ownSubnets(aws.ec2, home.name).catch(() => undefined);
      if (subnets === undefined || subnets.length === 0) {
        report('bucket policy isolation', 'SKIP', subnets ? 'network isolation is off: the environment has no subnets of its own' : 'cannot list subnets');
      } else {
        isolated = true;
        await check('bucket policy isolation', async () => ({
          detail: await checkIsolationStatements(aws.s3, resources.bucket!, [resources.jobRoleArn!, instanceRoleArn]),
          value: true,
        }));
      }
    }
    if (!second) report(PROOF, 'SKIP', 'needs a real Batch job on AWS in another environment: run with --full');
    else if (!home.role || !second.role) report(PROOF, 'SKIP', 'no access role session of one of the two environments');
    else if (!isolated) report(PROOF, 'SKIP', 'network isolation is off: nothing keeps a job elsewhere from the bucket but its role');
    else definition = await isolationProof(opts, home, second, local, overridden);
  } finally {
    // What the tagging API sees of each environment while it exists: a GetResources that finds nothing now
    // (an emulator that indexes none of these types) could not prove anything gone afterwards either.
    for (const env of all) {
      if (env.created && !opts.keep) env.taggedBefore = await taggedResources(aws.tagging, env.name).catch((error: unknown) => error as Error);
    }
    // 5. Delete with the data, and wait for DELETED: both at once.
    await Promise.all(all.map((env) => deleteStep(api, env, opts.keep)));
    // 6. Nothing tagged with either environment remains, nor the probe's job definition.
    for (const env of all) await nothingLeftStep(aws, env);
    if (definition) await deregisterStep(aws.batch, definition, home);
  }

  for (const client of Object.values(aws)) client.destroy();
  const count = (outcome: Outcome) => results.filter((result) => result.outcome === outcome).length;
  console.log(`smoke: ${count('PASS')} passed, ${count('FAIL')} failed, ${count('SKIP')} skipped`);
  return count('FAIL') === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`smoke: ${errorText(error)}`);
    process.exit(1);
  },
);
