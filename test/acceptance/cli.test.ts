/**
 * Acceptance of the teammate's command line (cli/): the `mfenv` command, installed into the project's .venv
 * as a teammate installs it, drives local mode from a clean home directory that holds nothing but an IAM
 * user's keys in the environment (which hold no policy at all):
 *
 *   mfenv create demo --wait          → READY, with progress on stderr
 *   mfenv run demo -- python flow.py  → a real Metaflow flow, its artifacts in demo's bucket; the emulator's
 *                                       request recorder shows every S3 request signed by a session of
 *                                       demo's access role, none by the teammate's own key
 *   mfenv resize demo --max-vcpus 8   → UPDATING, then READY with the new vCPUs (--wait)
 *   mfenv show demo (someone else)    → one line, not found, non-zero
 *   mfenv delete demo --purge --wait  → DELETED, nothing of demo left
 *
 * The command line's unit tests (pytest, cli/tests) run here too, so that `npm test` covers them.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchClient, DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { GetRoleCommand, IAMClient, ListInstanceProfilesCommand, ListRolesCommand } from '@aws-sdk/client-iam';
import { ListBucketsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { EMULATOR_ADMIN_CREDENTIALS, EMULATOR_REGION, PROJECT_ROOT, VENV_BIN } from '../../infra/local/emulator';
import type { LocalUser } from '../../infra/local/runtime';
import { useLocalMode } from '../support/local-mode';
import { type ProcessResult, runPython } from '../support/metaflow';
import { apiClient } from '../support/signed-client';

// The handlers log every step; this test reports its own figures instead.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
jest.setTimeout(120_000);

// moto's request recorder appends to this file (its default is ./moto_recording in the emulator's working
// directory, the project root). The emulator inherits process.env when local mode starts it below.
const scratch = mkdtempSync(join(tmpdir(), 'mfenv-cli-test-'));
process.env.MOTO_RECORDER_FILEPATH = join(scratch, 'recording.jsonl');

const context = useLocalMode();

const CLI_DIR = join(PROJECT_ROOT, 'cli');
const MFENV = join(VENV_BIN, 'mfenv');
const NAME = 'demo';
const timings: Record<string, number> = {};

let teammate: LocalUser;
let home: string;
let aws: { s3: S3Client; iam: IAMClient; batch: BatchClient };

async function timed<T>(label: string, run: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await run();
  } finally {
    timings[label] = Math.round((Date.now() - started) / 100) / 10;
  }
}

/** The venv's Python, with nothing of this process's environment. */
function pythonEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: `${VENV_BIN}:/usr/bin:/bin`,
    HOME: scratch,
    LANG: 'C.UTF-8',
    TMPDIR: tmpdir(),
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    ...extra,
  };
}

/**
 * Installs cli/ into .venv unless the installed copy is already these sources. `--no-index`: the package
 * needs nothing to build (cli/_backend) and its one dependency, botocore, is in .venv already, so pip never
 * has to reach an index and the test runs offline. `--force-reinstall` replaces a stale copy of the same
 * version; `--no-deps` keeps that from reinstalling botocore as well.
 */
async function ensureCli(): Promise<'installed' | 'up to date'> {
  const probe = await runPython(
    ['-c', 'import mfenv, os, sys; d = os.path.dirname(mfenv.__file__); print(d); sys.exit(0 if os.path.exists(sys.argv[1]) else 1)', MFENV],
    { cwd: scratch, env: pythonEnv(), timeoutMs: 30_000 },
  );
  if (probe.code === 0) {
    const installed = probe.stdout.trim();
    const sources = readdirSync(join(CLI_DIR, 'src', 'mfenv')).filter((file) => file.endsWith('.py'));
    const same = sources.every((file) => {
      try {
        return readFileSync(join(installed, file), 'utf8') === readFileSync(join(CLI_DIR, 'src', 'mfenv', file), 'utf8');
      } catch {
        return false;
      }
    });
    if (same) return 'up to date';
  }
  const install = await runPython(
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-index', '--force-reinstall', '--no-deps', CLI_DIR],
    { cwd: scratch, env: pythonEnv(), timeoutMs: 120_000 },
  );
  if (install.code !== 0) throw new Error(`pip install ./cli failed (exit ${install.code}):\n${install.stdout}\n${install.stderr}`);
  return 'installed';
}

/** `mfenv --api <local API> ...` as the teammate: their keys in the environment, an otherwise empty home. */
function mfenv(args: string[], options: { user?: LocalUser; cwd?: string; timeoutMs?: number } = {}): Promise<ProcessResult> {
  const user = options.user ?? teammate;
  const endpoint = context.local.emulatorEndpoint;
  return runPython([MFENV, '--api', context.local.apiUrl, ...args], {
    cwd: options.cwd ?? home,
    env: pythonEnv({
      HOME: user === teammate ? home : join(scratch, `home-${user.name}`),
      AWS_ACCESS_KEY_ID: user.accessKeyId,
      AWS_SECRET_ACCESS_KEY: user.secretAccessKey,
      AWS_DEFAULT_REGION: EMULATOR_REGION,
      // What the payload cannot point at the emulator: STS (the role is assumed there) and Batch, as in
      // test/support/metaflow.ts. S3 is reached through the payload's METAFLOW_S3_ENDPOINT_URL.
      AWS_ENDPOINT_URL_STS: endpoint,
      AWS_ENDPOINT_URL_BATCH: endpoint,
    }),
    timeoutMs: options.timeoutMs ?? 90_000,
  });
}

/** The exit code must be `code`; otherwise the failure shows everything the command printed. */
function expectExit(result: ProcessResult, code: number): void {
  if (result.code !== code) {
    throw new Error(`expected exit ${code}, got ${result.code}${result.timedOut ? ' (timed out)' : ''}\n--- stdout\n${result.stdout.slice(-3000)}\n--- stderr\n${result.stderr.slice(-3000)}`);
  }
}

/** One request as moto's recorder keeps it. */
interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  body_encoded: boolean;
}

async function recorder(action: 'reset-recording' | 'start-recording' | 'stop-recording'): Promise<void> {
  const response = await fetch(`${context.local.emulatorEndpoint}/moto-api/recorder/${action}`, { method: 'POST' });
  if (!response.ok) throw new Error(`moto recorder ${action}: HTTP ${response.status}`);
}

async function recording(): Promise<RecordedRequest[]> {
  const response = await fetch(`${context.local.emulatorEndpoint}/moto-api/recorder/download-recording`);
  const text = await response.text();
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as RecordedRequest);
}

const header = (request: RecordedRequest, name: string) =>
  Object.entries(request.headers).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];

/** The access key and service of a SigV4 Authorization header. */
function signer(request: RecordedRequest): { accessKeyId: string; service: string } | undefined {
  const match = /Credential=([^/,\s]+)\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(header(request, 'Authorization') ?? '');
  return match ? { accessKeyId: match[1]!, service: match[2]! } : undefined;
}

const bodyOf = (request: RecordedRequest) => (request.body_encoded ? Buffer.from(request.body, 'base64').toString('utf8') : request.body ?? '');

beforeAll(async () => {
  const installed = await timed('install', ensureCli);
  console.log(`mfenv command line: ${installed} (${MFENV})`);
  teammate = await context.local.createUser('demo-user');
  home = join(scratch, 'home-demo-user');
  mkdirSync(home);
  // The emulator's root, which sees everything. (Not emulatorClientConfig: importing bootstrap.ts loads the
  // handlers' logger before POWERTOOLS_LOG_LEVEL above is set, and every step would log.)
  const config = { endpoint: context.local.emulatorEndpoint, region: EMULATOR_REGION, credentials: EMULATOR_ADMIN_CREDENTIALS };
  aws = { s3: new S3Client({ ...config, forcePathStyle: true }), iam: new IAMClient(config), batch: new BatchClient(config) };
}, 180_000);

afterAll(() => {
  for (const client of Object.values(aws ?? {})) client.destroy();
  rmSync(scratch, { recursive: true, force: true });
  delete process.env.MOTO_RECORDER_FILEPATH;
  console.log(`mfenv command line, seconds per phase: ${JSON.stringify(timings)}`);
});

test("the command line's unit tests pass (pytest cli/tests)", async () => {
  // act
  const result = await timed('pytest', () =>
    runPython(['-m', 'pytest', join(CLI_DIR, 'tests'), '-q', '-p', 'no:cacheprovider'], { cwd: CLI_DIR, env: pythonEnv(), timeoutMs: 90_000 }),
  );

  // assess
  const summary = result.stdout.trim().split('\n').pop() ?? '';
  console.log(`pytest cli/tests: ${summary}`);
  expectExit(result, 0);
  expect(summary).toMatch(/^\d+ passed/);
});

test('mfenv create --wait shows progress and exits 0 once the environment is READY', async () => {
  // act
  const result = await timed('create --wait', () => mfenv(['create', NAME, '--max-vcpus', '4', '--no-gpu', '--wait']));

  // assess: one plain line per change (stderr is not a terminal here), then the end
  expectExit(result, 0);
  expect(result.stderr).toMatch(new RegExp(`^\\[0:\\d\\d\\] ${NAME} CREATING`, 'm'));
  expect(result.stderr).toMatch(new RegExp(`^${NAME} is READY after \\d+:\\d\\d\\.$`, 'm'));
  const listed = await mfenv(['list', '--json']);
  expectExit(listed, 0);
  expect(JSON.parse(listed.stdout).environments).toEqual([expect.objectContaining({ name: NAME, status: 'READY', owner: teammate.arn })]);
});

test("mfenv run runs a real Metaflow flow as the access role's session, never with the teammate's own key", async () => {
  // prepare: the flow in a working directory; the emulator records every request from now on
  const workdir = join(home, 'work');
  mkdirSync(workdir);
  copyFileSync(join(CLI_DIR, 'tests', 'flows', 'hello_flow.py'), join(workdir, 'hello_flow.py'));
  const environment = (await apiClient(context.local.apiUrl, teammate).get(`/environments/${NAME}`)).json;
  const served = await apiClient(context.local.apiUrl, teammate).get(`/environments/${NAME}/config`);
  const { bucket, accessRoleArn } = environment.resources as { bucket: string; accessRoleArn: string };
  await recorder('reset-recording');
  await recorder('start-recording');

  // act
  let result: ProcessResult;
  try {
    result = await timed('run flow', () =>
      mfenv(['run', NAME, '--', 'python', 'hello_flow.py', '--no-pylint', 'run', '--run-id-file', 'run-id'], { cwd: workdir }),
    );
  } finally {
    await recorder('stop-recording');
  }
  const requests = await recording();

  // assess: the flow ran, with the files the command line wrote and nothing else
  expectExit(result, 0);
  expect(result.stdout + result.stderr).toContain('Done!');
  const runId = readFileSync(join(workdir, 'run-id'), 'utf8').trim();
  expect(readFileSync(join(home, '.metaflowconfig', `config_${NAME}.json`), 'utf8')).toBe(served.text);
  const awsConfig = readFileSync(join(home, '.aws', 'config'), 'utf8');
  expect(awsConfig).toContain(`[profile mfenv-${NAME}]\n# written by mfenv`);
  expect(awsConfig).toMatch(new RegExp(`^credential_process = \\S*python\\S* -m mfenv credentials ${NAME} --role-arn ${accessRoleArn} --region`, 'm'));

  // its run records and artifacts are in demo's bucket
  const records = (await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `metaflow/HelloFlow/${runId}/` }))).Contents ?? [];
  expect(records.length).toBeGreaterThan(0);
  const artifacts = (await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'metaflow/HelloFlow/data/' }))).Contents ?? [];
  expect(artifacts.length).toBeGreaterThan(0);

  // every request to demo's bucket was signed, for S3, by a temporary key (ASIA…), never the teammate's
  const toBucket = requests.filter((request) => new URL(request.url).pathname.startsWith(`/${bucket}`));
  expect(toBucket.length).toBeGreaterThan(0);
  const bucketSigners = toBucket.map(signer);
  expect(bucketSigners.every((s) => s?.service === 's3' && /^ASIA/.test(s.accessKeyId))).toBe(true);
  expect(bucketSigners.map((s) => s?.accessKeyId)).not.toContain(teammate.accessKeyId);

  // ... and the emulator's STS says whose those keys are: sessions of demo's access role
  const sessions = new Map<string, string | undefined>();
  for (const request of toBucket) sessions.set(signer(request)!.accessKeyId, header(request, 'X-Amz-Security-Token'));
  for (const [accessKeyId, sessionToken] of sessions) {
    const sts = new STSClient({ endpoint: context.local.emulatorEndpoint, region: EMULATOR_REGION, credentials: { accessKeyId, secretAccessKey: 'unused', sessionToken } });
    const { Arn } = await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
    expect(Arn).toBe(`arn:aws:sts::${context.local.accountId}:assumed-role/${accessRoleArn.split('/').pop()}/${NAME}`);
  }

  // the teammate's own key signed STS calls only: the AssumeRole of the credential process, and the API
  // gateway's look-up of who is calling (GetCallerIdentity)
  const byTeammate = requests.filter((request) => signer(request)?.accessKeyId === teammate.accessKeyId);
  expect(byTeammate.length).toBeGreaterThan(0);
  const actions = new Set(byTeammate.map((request) => `${signer(request)!.service}:${/Action=(\w+)/.exec(bodyOf(request))?.[1]}`));
  expect([...actions].sort()).toEqual(expect.arrayContaining(['sts:AssumeRole']));
  for (const action of actions) expect(['sts:AssumeRole', 'sts:GetCallerIdentity']).toContain(action);
  console.log(`recorded ${requests.length} requests: ${toBucket.length} to ${bucket} by ${sessions.size} access-role session key(s); the teammate's key: ${[...actions].join(', ')}`);
});

test('mfenv resize --max-vcpus --wait shows UPDATING, exits 0 once READY with the new vCPUs, the queue and bucket unchanged', async () => {
  // prepare
  const before = (await apiClient(context.local.apiUrl, teammate).get(`/environments/${NAME}`)).json;

  // act
  const result = await timed('resize --wait', () => mfenv(['resize', NAME, '--max-vcpus', '8', '--wait', '--json']));

  // assess
  expectExit(result, 0);
  expect(result.stderr).toMatch(new RegExp(`^\\[0:\\d\\d\\] ${NAME} UPDATING`, 'm'));
  const after = JSON.parse(result.stdout);
  expect(after).toMatchObject({ status: 'READY', spec: { maxVcpus: 8, gpu: false }, resources: before.resources });
  const { computeEnvironments = [] } = await aws.batch.send(
    new DescribeComputeEnvironmentsCommand({ computeEnvironments: [before.resources.computeEnvironmentArn] }),
  );
  expect(computeEnvironments[0]?.computeResources?.maxvCpus).toBe(8);
});

test("someone else's mfenv show demo: one line saying it is not found, non-zero exit", async () => {
  // prepare
  const colleague = await context.local.createUser('colleague');
  mkdirSync(join(scratch, `home-${colleague.name}`));

  // act
  const result = await mfenv(['show', NAME], { user: colleague });

  // assess
  expectExit(result, 1);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^mfenv: .*not found/i);
  expect(lines[0]).toContain(`"${NAME}"`);
});

test('mfenv delete --purge --wait exits 0 once DELETED, and nothing of the environment is left', async () => {
  // prepare
  const { bucket } = (await apiClient(context.local.apiUrl, teammate).get(`/environments/${NAME}`)).json.resources as { bucket: string };

  // act
  const result = await timed('delete --purge --wait', () => mfenv(['delete', NAME, '--purge', '--wait']));

  // assess
  expectExit(result, 0);
  expect(result.stderr).toMatch(new RegExp(`^${NAME} is DELETED after \\d+:\\d\\d\\.$`, 'm'));
  const buckets = (await aws.s3.send(new ListBucketsCommand({}))).Buckets ?? [];
  expect(buckets.map((b) => b.Name)).not.toContain(bucket);
  const roles = (await aws.iam.send(new ListRolesCommand({ PathPrefix: '/mfenv/' }))).Roles ?? [];
  expect(roles.map((role) => role.RoleName)).toEqual([]);
  await expect(aws.iam.send(new GetRoleCommand({ RoleName: `mfenv-${NAME}-access` }))).rejects.toThrow(/not found|cannot be found/i);
  const profiles = (await aws.iam.send(new ListInstanceProfilesCommand({ PathPrefix: '/mfenv/' }))).InstanceProfiles ?? [];
  expect(profiles).toEqual([]);
  const queues = (await aws.batch.send(new DescribeJobQueuesCommand({}))).jobQueues ?? [];
  expect(queues.map((queue) => queue.jobQueueName)).not.toContain(`mfenv-${NAME}`);
  const computeEnvironments = (await aws.batch.send(new DescribeComputeEnvironmentsCommand({}))).computeEnvironments ?? [];
  expect(computeEnvironments.map((ce) => ce.computeEnvironmentName)).not.toContain(`mfenv-${NAME}`);
});
