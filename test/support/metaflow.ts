/**
 * Running the real Metaflow client (the pinned PyPI package in .venv) from tests, the way a teammate would:
 * a private METAFLOW_HOME holding config_<profile>.json, METAFLOW_PROFILE=<profile>, and a working directory
 * of its own (the local metadata of runs lives in `.metaflow` there).
 *
 * The child environment is built from nothing rather than copied from this process, so no METAFLOW_* variable
 * (from a developer's shell or from another test helper) can configure Metaflow behind the payload's back.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMULATOR_REGION, PROJECT_ROOT, VENV_BIN } from '../../infra/local/emulator';

export const FLOWS_DIR = join(PROJECT_ROOT, 'test', 'acceptance', 'flows');
export const PYTHON = join(VENV_BIN, 'python');

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface MetaflowProfile {
  /** The profile name: config_<name>.json, METAFLOW_PROFILE=<name>. */
  name: string;
  /** METAFLOW_HOME: holds only config_<name>.json. */
  home: string;
  /** Working directory of flow runs and Client API reads. */
  workdir: string;
  /** The child process environment. */
  env: NodeJS.ProcessEnv;
  /** Removes the temporary directories. */
  dispose(): void;
}

export interface ProfileOptions {
  /** The profile name, as a teammate would use their environment's name. */
  name: string;
  /** The Metaflow config file: the body exactly as the API served it (a string, saved verbatim) or an object. */
  config: string | Record<string, unknown>;
  /** The teammate's own AWS keys (an IAM user of the emulator). */
  credentials: Credentials;
  /**
   * The environment's access role. Given, the teammate's keys go only into a source profile of
   * ~/.aws/credentials, and Metaflow runs under an AWS profile that assumes the role from them (as a
   * teammate configures it once): every AWS call it makes is the role's. Not given, Metaflow gets the keys
   * themselves in its environment.
   */
  accessRoleArn?: string;
  /** The emulator's endpoint, for the AWS Batch API only (see below). */
  emulatorEndpoint: string;
  /** Flow files copied into the working directory. */
  flows?: string[];
  /**
   * More service endpoints of the teammate's machine, as boto3's AWS_ENDPOINT_URL_<SERVICE> variables: scheduled
   * flows reach Step Functions (local mode's endpoint) and EventBridge (the emulator) through them.
   */
  endpoints?: Record<string, string>;
}

/**
 * A teammate's machine in miniature. Besides what the payload carries, Metaflow gets only what any AWS user
 * has in their shell: their access keys and a region (Metaflow's Batch client needs one), and the endpoint of
 * the one AWS API the payload cannot point elsewhere. Metaflow has no setting for the Batch endpoint, so boto3's
 * service-specific AWS_ENDPOINT_URL_BATCH sends Batch calls to the emulator. S3 traffic is deliberately left
 * without an SDK endpoint: it must reach the emulator through the payload's METAFLOW_S3_ENDPOINT_URL, or fail.
 * No USER/USERNAME either, so the run's user can only come from the payload's METAFLOW_USER.
 */
export function createMetaflowProfile(options: ProfileOptions): MetaflowProfile {
  const root = mkdtempSync(join(tmpdir(), `mfenv-metaflow-${options.name}-`));
  const home = join(root, 'metaflow-home');
  const workdir = join(root, 'work');
  const userHome = join(root, 'user-home');
  for (const dir of [home, workdir, userHome]) mkdirSync(dir);
  const configText = typeof options.config === 'string' ? options.config : JSON.stringify(options.config, null, 2);
  writeFileSync(join(home, `config_${options.name}.json`), configText);
  for (const flow of options.flows ?? ['shard_flow.py']) copyFileSync(join(FLOWS_DIR, flow), join(workdir, flow));

  const env: NodeJS.ProcessEnv = {
    PATH: `${VENV_BIN}:/usr/bin:/bin`,
    // An empty home: no ~/.metaflowconfig or ~/.aws of the machine's user can leak in.
    HOME: userHome,
    LANG: 'C.UTF-8',
    TMPDIR: tmpdir(),
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    METAFLOW_HOME: home,
    METAFLOW_PROFILE: options.name,
    AWS_DEFAULT_REGION: EMULATOR_REGION,
    AWS_ENDPOINT_URL_BATCH: options.emulatorEndpoint,
    ...options.endpoints,
    ...(options.accessRoleArn
      ? assumeRoleProfile(userHome, options.name, options.credentials, options.accessRoleArn, options.emulatorEndpoint)
      : { AWS_ACCESS_KEY_ID: options.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: options.credentials.secretAccessKey }),
  };
  return { name: options.name, home, workdir, env, dispose: () => rmSync(root, { recursive: true, force: true }) };
}

/** The AWS profile a teammate's Metaflow runs under: `mfenv-<name>`, assuming the access role. */
export const accessProfileName = (name: string) => `mfenv-${name}`;

/**
 * Writes ~/.aws/credentials (the teammate's own keys, as profile `teammate`) and ~/.aws/config (profile
 * mfenv-<name>: role_arn + source_profile), and returns the variables that select it. No key goes into
 * the environment: botocore prefers AWS_ACCESS_KEY_ID over AWS_PROFILE, which would silently skip the
 * role. The emulator's STS answers the AssumeRole (AWS_ENDPOINT_URL_STS), as AWS's would.
 */
function assumeRoleProfile(userHome: string, name: string, credentials: Credentials, roleArn: string, emulatorEndpoint: string) {
  const aws = join(userHome, '.aws');
  mkdirSync(aws);
  writeFileSync(
    join(aws, 'credentials'),
    `[teammate]\naws_access_key_id = ${credentials.accessKeyId}\naws_secret_access_key = ${credentials.secretAccessKey}\n`,
  );
  writeFileSync(
    join(aws, 'config'),
    `[profile ${accessProfileName(name)}]\nrole_arn = ${roleArn}\nsource_profile = teammate\nrole_session_name = ${name}\nregion = ${EMULATOR_REGION}\n`,
  );
  return { AWS_PROFILE: accessProfileName(name), AWS_ENDPOINT_URL_STS: emulatorEndpoint };
}

/** Who the profile's credentials are, as STS sees them (boto3 in the profile's environment). */
export async function callerArnOf(profile: MetaflowProfile): Promise<string> {
  const result = await runPython(['-c', "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"], {
    cwd: profile.workdir,
    env: profile.env,
    timeoutMs: 60_000,
  });
  if (result.code !== 0) throw new Error(`get_caller_identity failed (exit ${result.code}):\n${result.stderr.slice(-2000)}`);
  return result.stdout.trim();
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds. */
  elapsedMs: number;
  /** True when the deadline passed and the process group was killed. */
  timedOut: boolean;
}

/**
 * Runs the venv's Python in its own process group, so that on a deadline the whole tree (Metaflow forks a
 * process per task, plus log and S3 workers) is stopped with one signal and nothing outlives the test.
 */
export function runPython(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<ProcessResult> {
  const started = Date.now();
  return new Promise((resolveRun, reject) => {
    const child = spawn(PYTHON, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    const deadline = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 5_000).unref();
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(deadline);
      // Metaflow's workers are children of the run: make sure none is left behind.
      killGroup('SIGKILL');
      resolveRun({ code, signal, stdout, stderr, elapsedMs: Date.now() - started, timedOut });
    });
  });
}

export interface FlowRun extends ProcessResult {
  /** From --run-id-file: written by Metaflow as soon as the run has an id, even if it then fails. */
  runId: string | undefined;
  /** stdout and stderr together, for failure messages. */
  output: string;
}

/** `python <flow> run [args]` in the profile's working directory. */
export async function runFlow(
  profile: MetaflowProfile,
  options: { flow?: string; args?: string[]; timeoutMs?: number } = {},
): Promise<FlowRun> {
  const runIdFile = join(profile.workdir, `run-id-${Date.now()}`);
  const result = await runPython(
    [options.flow ?? 'shard_flow.py', '--no-pylint', 'run', '--run-id-file', runIdFile, ...(options.args ?? [])],
    { cwd: profile.workdir, env: profile.env, timeoutMs: options.timeoutMs ?? 180_000 },
  );
  let runId: string | undefined;
  try {
    runId = readFileSync(runIdFile, 'utf8').trim() || undefined;
  } catch {
    runId = undefined;
  }
  return { ...result, runId, output: `${result.stdout}\n${result.stderr}` };
}

/** What read_run.py reports about a ShardFlow run, read back through Metaflow's Client API. */
export interface RunReport {
  namespace: string;
  latestRunId: string | null;
  runId: string;
  successful: boolean;
  finished: boolean;
  steps: string[];
  seed: number;
  shards: number;
  blobs: Array<{ task: string; shard: number; sha: string; dsType: string; location: string; length: number; sha256: string }>;
  digests: Record<string, string>;
  expectedDigests: Record<string, string>;
  total: number;
  expectedTotal: number;
  largestSha256: string;
  summary: { shards: number; total: number };
}

/** Reads a ShardFlow run back with the Client API, in the profile's working directory. */
export async function readShardFlowRun(profile: MetaflowProfile, runId: string): Promise<RunReport> {
  const result = await runPython([join(FLOWS_DIR, 'read_run.py'), runId], {
    cwd: profile.workdir,
    env: profile.env,
    timeoutMs: 120_000,
  });
  if (result.code !== 0) {
    throw new Error(`read_run.py failed (exit ${result.code}):\n${result.stderr.slice(-3000)}`);
  }
  const lastLine = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(lastLine) as RunReport;
}

/** The Metaflow version the venv holds (reported by the acceptance test). */
export async function metaflowVersion(): Promise<string> {
  const result = await runPython(['-c', 'import metaflow; print(metaflow.__version__)'], {
    cwd: tmpdir(),
    env: { PATH: `${VENV_BIN}:/usr/bin:/bin`, HOME: tmpdir() },
    timeoutMs: 60_000,
  });
  return result.stdout.trim();
}
