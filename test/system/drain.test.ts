/**
 * `npm run drain` against local mode, run as the platform owner runs it: a child process signing with an
 * admin's keys from the environment (the SDK's default chain). Two teammates hold an environment each; a dry
 * run lists both and changes nothing; with --yes both end DELETED and the summary says so.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LocalUser } from '../../infra/local/runtime';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, apiClient, waitWhile } from '../support/signed-client';

process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, '../..');
const ADMIN_ARN = 'arn:aws:iam::123456789012:user/dana';
const local = useLocalMode({ admins: [ADMIN_ARN] });
let admin: LocalUser;
let asAdmin: ApiClient;

/** Runs the drain script with only the admin's keys: nothing of the test's own AWS settings leaks into it. */
async function drain(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: admin.accessKeyId,
    AWS_SECRET_ACCESS_KEY: admin.secretAccessKey,
    AWS_REGION: local.local.region,
    // No shared config file of the machine's may supply another identity.
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  });
  // Asynchronous: the API it calls runs in this very process.
  const run = promisify(execFile);
  const tsx = path.join(ROOT, 'node_modules/.bin/tsx');
  try {
    const { stdout, stderr } = await run(tsx, ['infra/drain.ts', '--api', local.local.apiUrl, '--interval', '0.2', ...args], { cwd: ROOT, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function statusOf(name: string): Promise<string> {
  return (await asAdmin.get(`/environments/${name}`)).json.status;
}

beforeAll(async () => {
  admin = await local.local.createUser('dana');
  expect(admin.arn).toBe(ADMIN_ARN);
  asAdmin = apiClient(local.local.apiUrl, admin);
  for (const name of ['alice', 'bob']) {
    const teammate = apiClient(local.local.apiUrl, await local.local.createUser(name));
    expect((await teammate.post('/environments', { name, maxVcpus: 4 })).status).toBe(202);
    expect((await waitWhile(teammate, name, 'CREATING')).json.status).toBe('READY');
  }
}, 120_000);

describe('npm run drain', () => {
  it('without --yes lists every environment and changes nothing', async () => {
    // prepare
    expect([await statusOf('alice'), await statusOf('bob')]).toEqual(['READY', 'READY']);

    // act
    const result = await drain();

    // assess
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('would alice (arn:aws:iam::123456789012:user/alice): delete (READY)');
    expect(result.stdout).toContain('would bob (arn:aws:iam::123456789012:user/bob): delete (READY)');
    expect(result.stdout).toContain('2 environment(s) to delete; nothing was changed');
    expect(result.stderr).toContain('you see 2 environment(s); if you are not listed in mfenv:admins');
    expect([await statusOf('alice'), await statusOf('bob')]).toEqual(['READY', 'READY']);
  });

  it('with --yes deletes every teammate\'s environment and reports them', async () => {
    // act
    const started = Date.now();
    const result = await drain('--yes');

    // assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/alice: READY → DELETING/);
    expect(result.stdout).toMatch(/bob: READY → DELETING/);
    expect(result.stdout.trim().split('\n').at(-1)).toBe('drain: 2 deleted, 0 failed, 0 kept buckets');
    expect([await statusOf('alice'), await statusOf('bob')]).toEqual(['DELETED', 'DELETED']);
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});
