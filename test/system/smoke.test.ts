/**
 * The platform owner's post-deploy smoke test (infra/smoke.ts, `npm run smoke`) run against local mode, as
 * the owner would run it against a stack: a child process with nothing but an IAM user's keys (no policy at
 * all) and the emulator as every AWS endpoint. With --full it must create both environments, assume both
 * access roles, run the flow locally, check the bucket's isolation statements, register the probe and submit
 * it to both queues, delete both and find nothing left, and say why it skips what the emulator cannot do (a
 * Batch run, the verdict on the probe's jobs). The verdict itself, which only AWS can give, is read from
 * DescribeJobs answers of each kind a real account gives.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchClient, DescribeJobDefinitionsCommand, DescribeJobsCommand, type JobDetail } from '@aws-sdk/client-batch';
import { EMULATOR_REGION, PROJECT_ROOT, VENV_BIN } from '../../infra/local/emulator';
import { classifyProbeJob, PROBE_IMAGE, proofVerdicts, type Reading } from '../../infra/smoke_isolation';
import { useLocalMode } from '../support/local-mode';

// The handlers log every step; the script's own output is what this test reads.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
jest.setTimeout(120_000);

const context = useLocalMode();
const TSX = join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runSmoke(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(TSX, ['infra/smoke.ts', ...args], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 100_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('npm run smoke --full passes against local mode, skipping with a reason what the emulator cannot run', async () => {
  // prepare: a platform owner's keys, and the emulator for every AWS endpoint; nothing of this process's
  // environment (no AWS_PROFILE, no METAFLOW_*) reaches the script
  const owner = await context.local.createUser('platform-owner');
  const home = mkdtempSync(join(tmpdir(), 'mfenv-smoke-test-'));
  const env: NodeJS.ProcessEnv = {
    PATH: `${VENV_BIN}:${process.env.PATH}`,
    HOME: home,
    LANG: 'C.UTF-8',
    TMPDIR: tmpdir(),
    AWS_ACCESS_KEY_ID: owner.accessKeyId,
    AWS_SECRET_ACCESS_KEY: owner.secretAccessKey,
    AWS_REGION: EMULATOR_REGION,
    AWS_ENDPOINT_URL: context.local.emulatorEndpoint,
  };

  // act
  const started = Date.now();
  const result = await runSmoke(['--api', context.local.apiUrl, '--python', join(VENV_BIN, 'python'), '--name', 'smoke-test', '--full'], env);
  rmSync(home, { recursive: true, force: true });
  console.log(`smoke --full against local mode (${((Date.now() - started) / 1000).toFixed(1)} s):\n${result.stdout}${result.stderr}`);

  // assess: every check, then what the emulator holds of the probe
  expect(result.code).toBe(0);
  const lines = result.stdout.split('\n');
  expect(lines).toContain('smoke: 13 passed, 0 failed, 3 skipped');
  const passes = [
    'create → READY',
    'create → READY (second environment)',
    'assume access role',
    'assume access role (second environment)',
    'Metaflow run (local, no batch)',
    'bucket policy isolation',
    'probe job definition registered',
    'probe jobs submitted',
    'delete → DELETED',
    'delete → DELETED (second environment)',
    'nothing left',
    'nothing left (second environment)',
    'probe job definition deregistered',
  ];
  expect(lines.filter((line) => line.startsWith('PASS  ')).map((line) => line.slice('PASS  '.length, line.indexOf(' — '))).sort()).toEqual(passes.sort());
  const skipped = lines.filter((line) => line.startsWith('SKIP  '));
  expect(skipped).toEqual([
    expect.stringMatching(/^SKIP {2}Metaflow run --with batch — local mode: .*runs no containers/),
    expect.stringMatching(
      /^SKIP {2}network isolation proof \(a job elsewhere cannot read\) — local mode: the emulator marks Batch jobs SUCCEEDED without running them and evaluates no bucket policy \(it reports the job on smoke-test-b's queue SUCCEEDED\); on AWS that job must be denied$/,
    ),
    expect.stringMatching(/^SKIP {2}control: the same job in its own environment reads — local mode: the emulator ran no container/),
  ]);
  expect(result.stdout).toMatch(/create → READY — to READY \d+\.\d s/);
  expect(result.stdout).toMatch(/create → READY \(second environment\) — smoke-test-b to READY \d+\.\d s/);
  expect(result.stdout).toMatch(/assume access role \(second environment\) — arn:aws:sts::\d+:assumed-role\/mfenv-smoke-test-b-access\//);
  expect(result.stdout).toMatch(
    /probe job definition registered — metaflow_mfenv_smoke_[0-9a-f]{8}:1 by smoke-test's access role: \S+ reading s3:\/\/mfenv-smoke-test-[0-9a-f]+\/mfenv-smoke\/canary-[0-9a-f]{8}\.txt with job role arn:aws:iam::\d+:role\/mfenv\/mfenv-smoke-test-job$/m,
  );
  const submitted = /^PASS {2}probe jobs submitted — foreign job (\S+) by smoke-test-b's access role on queue mfenv-smoke-test-b with job role mfenv-smoke-test-job; control job (\S+) by smoke-test's access role on queue mfenv-smoke-test$/m.exec(result.stdout);
  expect(submitted).not.toBeNull();
  expect(result.stdout).toMatch(/delete → DELETED \(second environment\) — smoke-test-b teardown \d+\.\d s/);
  expect(result.stdout).toMatch(/nothing left — nothing \(GetResources .*; checked directly: bucket, roles, .*, job definitions\)/);
  expect(result.stdout).toMatch(/nothing left \(second environment\) — nothing \(GetResources mfenv:environment=smoke-test-b, which saw \d+ before the delete;/);
  expect(result.stdout).toMatch(/probe job definition deregistered — metaflow_mfenv_smoke_[0-9a-f]{8}:1 INACTIVE: smoke-test's teardown deregistered it$/m);

  // With the owner's keys, as the script saw the emulator.
  const batch = new BatchClient({
    region: EMULATOR_REGION,
    endpoint: context.local.emulatorEndpoint,
    credentials: { accessKeyId: owner.accessKeyId, secretAccessKey: owner.secretAccessKey },
  });
  try {
    const [foreignId, controlId] = [submitted![1]!, submitted![2]!];
    const jobs = new Map(((await batch.send(new DescribeJobsCommand({ jobs: [foreignId, controlId] }))).jobs ?? []).map((job) => [job.jobId, job]));
    expect(jobs.get(foreignId)?.jobQueue).toMatch(/:job-queue\/mfenv-smoke-test-b$/);
    expect(jobs.get(controlId)?.jobQueue).toMatch(/:job-queue\/mfenv-smoke-test$/);
    // Both jobs of one definition, with no override: they differ only in their queue.
    expect(jobs.get(foreignId)?.jobDefinition).toBe(jobs.get(controlId)?.jobDefinition);
    const [definition] = (await batch.send(new DescribeJobDefinitionsCommand({ jobDefinitions: [jobs.get(foreignId)!.jobDefinition!] }))).jobDefinitions ?? [];
    expect(definition?.status).toBe('INACTIVE');
    expect(definition?.containerProperties?.image).toBe(PROBE_IMAGE);
    expect(definition?.containerProperties?.jobRoleArn).toMatch(/:role\/mfenv\/mfenv-smoke-test-job$/);
    expect(definition?.containerProperties?.command).toEqual(expect.arrayContaining(['s3api', 'get-object']));
  } finally {
    batch.destroy();
  }
});

test('a failed check makes the exit code 1; --keep leaves both environments, and the probe definition is deregistered with the owner\'s keys', async () => {
  // prepare: a Python that does not exist, so the flow check fails
  const owner = await context.local.createUser('another-owner');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: tmpdir(),
    AWS_ACCESS_KEY_ID: owner.accessKeyId,
    AWS_SECRET_ACCESS_KEY: owner.secretAccessKey,
    AWS_REGION: EMULATOR_REGION,
    AWS_ENDPOINT_URL: context.local.emulatorEndpoint,
  };

  // act
  const result = await runSmoke(['--api', context.local.apiUrl, '--python', '/nonexistent/python', '--name', 'smoke-kept', '--keep', '--full'], env);

  // assess
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/^FAIL {2}Metaflow run \(local, no batch\) — /m);
  expect(result.stdout).toMatch(/^SKIP {2}delete → DELETED — --keep: smoke-kept left in place/m);
  expect(result.stdout).toMatch(/^SKIP {2}delete → DELETED \(second environment\) — --keep: smoke-kept-b left in place/m);
  expect(result.stdout).toMatch(/^SKIP {2}nothing left — /m);
  expect(result.stdout).toMatch(/^SKIP {2}nothing left \(second environment\) — /m);
  expect(result.stdout).toMatch(
    /^PASS {2}probe job definition deregistered — metaflow_mfenv_smoke_[0-9a-f]{8}:1 deregistered with the owner's credentials \(smoke-kept was not torn down\)$/m,
  );
  expect(result.stdout.split('\n')).toContain('smoke: 8 passed, 1 failed, 7 skipped');
});

/** A probe job as DescribeJobs reports it on AWS, ended. */
function job(fields: Partial<JobDetail>): JobDetail {
  return { jobId: 'j-1', jobName: 'mfenv-smoke-foreign', jobQueue: 'q', jobDefinition: 'd', status: 'FAILED', startedAt: 1, ...fields } as JobDetail;
}
const DENIED_LOG = 'An error occurred (AccessDenied) when calling the GetObject operation: User: arn:aws:sts::1:assumed-role/mfenv-a-job/x is not authorized to perform: s3:GetObject with an explicit deny in a resource-based policy';
const READ: Reading = { kind: 'read', detail: 'SUCCEEDED (exit 0)' };
const names = { home: 'alice', elsewhere: 'alice-b' };

test.each([
  {
    case: 'refused by the service with AccessDenied, the control read: PASS',
    foreign: job({ container: { exitCode: 254, logStreamName: 's' } }),
    log: DENIED_LOG,
    kind: 'denied',
    proof: ['PASS', /^on alice-b's queue with alice's job role: FAILED, exit 254: An error occurred \(AccessDenied\).*explicit deny in a resource-based policy$/],
  },
  {
    case: 'the job read the bucket: isolation broken',
    foreign: job({ status: 'SUCCEEDED', container: { exitCode: 0 } }),
    log: undefined,
    kind: 'read',
    proof: ['FAIL', /^ISOLATION BROKEN: a job with alice's job role read alice's bucket from alice-b's queue/],
  },
  {
    case: 'never given an instance: points at the quotas',
    foreign: job({ status: 'RUNNABLE', startedAt: undefined }),
    log: undefined,
    kind: 'never-ran',
    proof: ['FAIL', /never ran, still RUNNABLE after 15 min: no Spot instance came for it: the Spot vCPU quota or Spot capacity \(README, 'Deploying to a real account'/],
  },
  {
    case: 'the image could not be pulled: never ran, with Batch\'s reason',
    foreign: job({ startedAt: undefined, statusReason: 'Task failed to start', container: { reason: 'CannotPullContainerError: pull access denied' } }),
    log: undefined,
    kind: 'never-ran',
    proof: ['FAIL', /never ran: FAILED before it started: Task failed to start; CannotPullContainerError: pull access denied$/],
  },
  {
    case: 'the service answered another error: not a refusal',
    foreign: job({ container: { exitCode: 254, logStreamName: 's' } }),
    log: 'An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist.',
    kind: 'failed',
    proof: ['FAIL', /proved nothing: FAILED, exit 254: An error occurred \(NoSuchKey\)/],
  },
  {
    case: 'S3 not reached at all: not a refusal',
    foreign: job({ container: { exitCode: 255, logStreamName: 's' } }),
    log: 'Could not connect to the endpoint URL: "https://bucket.s3.us-east-1.amazonaws.com/key"',
    kind: 'failed',
    proof: ['FAIL', /proved nothing: FAILED, exit 255: log: Could not connect to the endpoint URL/],
  },
  {
    case: 'the service-error exit with no log to say which error: not taken for a refusal',
    foreign: job({ container: { exitCode: 254, logStreamName: 's' } }),
    log: undefined,
    kind: 'failed',
    proof: ['FAIL', /proved nothing: FAILED, exit 254: its log could not be read$/],
  },
  {
    case: 'still running when the wait ended',
    foreign: job({ status: 'RUNNING' }),
    log: undefined,
    kind: 'unfinished',
    proof: ['FAIL', /proved nothing: still RUNNING after 15 min$/],
  },
])('the verdict on the foreign job: $case', ({ foreign, log, kind, proof }) => {
  // prepare: the foreign job as given, and a control that read

  // act
  const reading = classifyProbeJob(foreign, log, '15 min');
  const verdicts = proofVerdicts(reading, READ, names);

  // assess
  expect(reading.kind).toBe(kind);
  expect(verdicts.proof.outcome).toBe(proof[0]);
  expect(verdicts.proof.detail).toMatch(proof[1] as RegExp);
  expect(verdicts.control.outcome).toBe('PASS');
});

test('a refusal proves nothing when the same job in its own environment did not read either', () => {
  // prepare: the foreign job refused, the control refused too (a broken job definition, say)
  const denied = classifyProbeJob(job({ container: { exitCode: 254, logStreamName: 's' } }), DENIED_LOG, '2 min');
  const control = classifyProbeJob(job({ jobName: 'mfenv-smoke-control', container: { exitCode: 254, logStreamName: 's' } }), DENIED_LOG, '2 min');

  // act
  const verdicts = proofVerdicts(denied, control, names);

  // assess
  expect(verdicts.proof).toEqual({ outcome: 'FAIL', detail: expect.stringMatching(/^refused on alice-b's queue, but the control did not read either, so the refusal proves nothing/) });
  expect(verdicts.control).toEqual({ outcome: 'FAIL', detail: expect.stringMatching(/^the same job on alice's queue did not read the object: FAILED, exit 254: An error occurred \(AccessDenied\)/) });
});
