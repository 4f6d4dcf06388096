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
 * Options: --api URL (or MFENV_API), --name, --python PATH (default python3), --region, --keep (no delete),
 * --full (also the network-isolation proof from a foreign job: not implemented yet, reported as skipped).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BatchClient, DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient, ListInstanceProfilesCommand, ListRolesCommand } from '@aws-sdk/client-iam';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { GetBucketPolicyCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type Credentials, type SignedApi, signedApi, signingRegionOf } from './signed-api';

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
    },
  });
  const api = values.api ?? process.env.MFENV_API;
  if (!api) {
    console.error('smoke: --api <ApiUrl> (or MFENV_API) is required: the ApiUrl output of the stack.');
    process.exit(2);
  }
  const region = values.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? signingRegionOf(api, 'us-east-1');
  return { ...values, api, region, name: values.name ?? `smoke-${randomBytes(3).toString('hex')}`, python: values.python! };
}

/** GETs the environment until `done` says so, printing each new progress step; the last answer. */
async function waitFor(api: SignedApi, name: string, done: (status: number, body: any) => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let lastStep = '';
  let pause = 250;
  for (;;) {
    const response = await api.get(`/environments/${name}`);
    if (done(response.status, response.json)) return response;
    if (response.status !== 200) throw new Error(`GET /environments/${name} answered ${response.status}: ${response.text.slice(0, 300)}`);
    const step = response.json?.progress?.step;
    if (step && step !== lastStep) console.log(`      … ${step}`);
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
  return left;
}

interface Aws {
  sts: STSClient;
  s3: S3Client;
  iam: IAMClient;
  batch: BatchClient;
  ec2: EC2Client;
  tagging: ResourceGroupsTaggingAPIClient;
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
  const name = opts.name;

  const owner = await aws.sts.send(new GetCallerIdentityCommand({}));
  console.log(`smoke: ${name} on ${opts.api} (${opts.region}), as ${owner.Arn}`);

  // 1. Create, and wait for READY.
  let created = false;
  const environment = await check('create → READY', async () => {
    const startedAt = Date.now();
    const posted = await api.post('/environments', { name, maxVcpus: 2, gpu: false });
    if (posted.status !== 202) throw new Error(`POST /environments answered ${posted.status}: ${posted.text.slice(0, 300)}`);
    created = true;
    const ready = await waitFor(api, name, (status, body) => status === 200 && body?.status !== 'CREATING', 45 * 60_000);
    if (ready.json?.status !== 'READY') throw new Error(`${name} is ${ready.json?.status}: ${ready.json?.statusReason}`);
    return { detail: `to READY ${seconds(startedAt)}`, value: ready.json };
  });
  const resources: Record<string, string> = environment?.resources ?? {};
  const config: Record<string, string> | undefined = environment?.config;
  // Only the emulator needs the payload to name an S3 endpoint (README, "Use it from Metaflow").
  const local = Boolean(config?.METAFLOW_S3_ENDPOINT_URL);

  // 2. Assume the access role, and be its session.
  const role = !environment
    ? (report('assume access role', 'SKIP', 'no READY environment'), undefined)
    : await check('assume access role', async () => {
        const session = `smoke-${name}`.slice(0, 64);
        const startedAt = Date.now();
        let assumed;
        // A role's trust can take a few seconds to reach every STS endpoint after it is created.
        for (let attempt = 1; ; attempt += 1) {
          try {
            assumed = await aws.sts.send(new AssumeRoleCommand({ RoleArn: resources.accessRoleArn, RoleSessionName: session, DurationSeconds: 3600 }));
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
        const asRole = new STSClient({ region: opts.region, credentials });
        const identity = await asRole.send(new GetCallerIdentityCommand({})).finally(() => asRole.destroy());
        const roleName = resources.accessRoleArn!.slice(resources.accessRoleArn!.lastIndexOf('/') + 1);
        if (!identity.Arn?.endsWith(`:assumed-role/${roleName}/${session}`)) {
          throw new Error(`GetCallerIdentity answered ${identity.Arn}, not a session of ${roleName}`);
        }
        return { detail: `${identity.Arn} (${seconds(startedAt)})`, value: credentials };
      });

  // 3. A flow on the environment's Spot queue; against the emulator, on this machine instead.
  const batchCheck = 'Metaflow run --with batch';
  if (!role || !config) {
    report(batchCheck, 'SKIP', 'no access role session or no served config');
  } else if (local) {
    report(batchCheck, 'SKIP', 'local mode: the emulator accepts Batch jobs but runs no containers');
    await check('Metaflow run (local, no batch)', async () => ({ detail: await runFlow(opts.python, name, config, role, opts.region, false), value: true }));
  } else {
    await check(batchCheck, async () => ({ detail: await runFlow(opts.python, name, config, role, opts.region, true), value: true }));
  }

  // 4. Network isolation: the bucket policy's statements, then (one day) the proof from a foreign job.
  const instanceRoleArn = (resources.instanceProfileArn ?? '').replace(':instance-profile/', ':role/');
  if (!environment) {
    report('bucket policy isolation', 'SKIP', 'no READY environment');
  } else {
    const subnets = await ownSubnets(aws.ec2, name).catch(() => undefined);
    if (subnets === undefined || subnets.length === 0) {
      report('bucket policy isolation', 'SKIP', subnets ? 'network isolation is off: the environment has no subnets of its own' : 'cannot list subnets');
    } else {
      await check('bucket policy isolation', async () => ({
        detail: await checkIsolationStatements(aws.s3, resources.bucket!, [resources.jobRoleArn!, instanceRoleArn]),
        value: true,
      }));
    }
  }
  const proof = 'network isolation proof (a job elsewhere cannot read)';
  if (!opts.full) report(proof, 'SKIP', 'needs a real Batch job on AWS in another environment: run with --full');
  else report(proof, 'SKIP', 'not implemented yet');

  // What the tagging API sees of the environment while it exists: a GetResources that finds nothing now
  // (an emulator that indexes none of these types) could not prove anything gone afterwards either.
  const taggedBefore = created && !opts.keep ? await taggedResources(aws.tagging, name).catch((error: unknown) => error as Error) : [];

  // 5. Delete with the data, and wait for DELETED.
  let deleted = false;
  if (!created) {
    report('delete → DELETED', 'SKIP', 'nothing was created');
  } else if (opts.keep) {
    report('delete → DELETED', 'SKIP', `--keep: ${name} left in place (DELETE /environments/${name}?purge=true when done)`);
  } else {
    deleted =
      (await check('delete → DELETED', async () => {
        const startedAt = Date.now();
        // A create that failed is still rolling back (DELETE answers 409 while CREATING): wait for it first.
        await waitFor(api, name, (status, body) => status !== 200 || body?.status !== 'CREATING', 45 * 60_000);
        const answer = await api.delete(`/environments/${name}?purge=true`);
        if (answer.status !== 202) throw new Error(`DELETE answered ${answer.status}: ${answer.text.slice(0, 300)}`);
        const final = await waitFor(api, name, (status, body) => status === 404 || (status === 200 && body?.status !== 'DELETING'), 45 * 60_000);
        if (final.status === 200 && final.json?.status !== 'DELETED') throw new Error(`${name} is ${final.json?.status}: ${final.json?.statusReason}`);
        return { detail: `teardown ${seconds(startedAt)}`, value: true };
      })) ?? false;
  }

  // 6. Nothing tagged with the environment remains.
  if (!deleted) {
    report('nothing left', 'SKIP', 'no completed teardown to check');
  } else {
    await check('nothing left', async () => {
      let left: string[] | undefined;
      let how = '';
      if (taggedBefore instanceof Error) {
        how = `the tagging API answered ${errorText(taggedBefore).slice(0, 120)}`;
      } else if (taggedBefore.length === 0) {
        how = 'the tagging API saw nothing of the environment while it existed';
      } else {
        try {
          // The tagging API's index lags behind deletions by a little on AWS.
          const deadline = Date.now() + 120_000;
          for (;;) {
            left = await taggedResources(aws.tagging, name);
            if (left.length === 0 || Date.now() > deadline) break;
            await sleep(10_000);
          }
          how = `GetResources ${ENVIRONMENT_TAG}=${name}, which saw ${taggedBefore.length} before the delete`;
        } catch (error) {
          how = `the tagging API answered ${errorText(error).slice(0, 120)}`;
        }
      }
      // The tagging API may not index every type (the emulator's covers buckets and subnets, not roles or
      // Batch): each kind is also looked up where it lives.
      const direct = await leftoversDirectly(aws, name, resources);
      how += '; checked directly: bucket, roles, instance profiles, compute environment, queue, subnets';
      const still = [...new Set([...(left ?? []), ...direct])];
      if (still.length > 0) throw new Error(`still there (${how}): ${still.join(', ')}`);
      return { detail: `nothing (${how})`, value: true };
    });
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
