/**
 * The platform owner's post-deploy smoke test (infra/smoke.ts, `npm run smoke`) run against local mode, as
 * the owner would run it against a stack: a child process with nothing but an IAM user's keys (no policy at
 * all) and the emulator as every AWS endpoint. It must create, assume the access role, run the flow locally,
 * check the bucket's isolation statements, delete and find nothing left, and say why it skips what the
 * emulator cannot do (a Batch run, the proof from a foreign job).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMULATOR_REGION, PROJECT_ROOT, VENV_BIN } from '../../infra/local/emulator';
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

test('npm run smoke passes against local mode, skipping with a reason what the emulator cannot run', async () => {
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
  const result = await runSmoke(['--api', context.local.apiUrl, '--python', join(VENV_BIN, 'python'), '--name', 'smoke-test'], env);
  rmSync(home, { recursive: true, force: true });
  console.log(`smoke against local mode (${((Date.now() - started) / 1000).toFixed(1)} s):\n${result.stdout}${result.stderr}`);

  // assess
  expect(result.code).toBe(0);
  const lines = result.stdout.split('\n');
  expect(lines).toContain('smoke: 6 passed, 0 failed, 2 skipped');
  for (const passed of ['create → READY', 'assume access role', 'Metaflow run (local, no batch)', 'bucket policy isolation', 'delete → DELETED', 'nothing left']) {
    expect(lines.some((line) => line.startsWith(`PASS  ${passed} — `))).toBe(true);
  }
  const skipped = lines.filter((line) => line.startsWith('SKIP  '));
  expect(skipped).toEqual([
    expect.stringMatching(/^SKIP {2}Metaflow run --with batch — local mode: .*runs no containers/),
    expect.stringMatching(/^SKIP {2}network isolation proof .* — needs a real Batch job on AWS/),
  ]);
  expect(result.stdout).toMatch(/create → READY — to READY \d+\.\d s/);
  expect(result.stdout).toMatch(/delete → DELETED — teardown \d+\.\d s/);
  expect(result.stdout).toMatch(/nothing left — nothing \(GetResources .*; checked directly: bucket, roles/);
});

test('a failed check makes the exit code 1; --keep leaves the environment and skips what depends on its deletion', async () => {
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
  const result = await runSmoke(['--api', context.local.apiUrl, '--python', '/nonexistent/python', '--name', 'smoke-kept', '--keep'], env);

  // assess
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/^FAIL {2}Metaflow run \(local, no batch\) — /m);
  expect(result.stdout).toMatch(/^SKIP {2}delete → DELETED — --keep: smoke-kept left in place/m);
  expect(result.stdout).toMatch(/^SKIP {2}nothing left — /m);
  expect(result.stdout.split('\n')).toContain('smoke: 3 passed, 1 failed, 4 skipped');
});
