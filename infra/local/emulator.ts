/**
 * The moto AWS emulator's lifecycle: install it (pinned, into .venv), start `moto_server` on 127.0.0.1,
 * configure it, reset it, stop it. Used by `npm start` and by every test that talks to AWS.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
export const VENV_BIN = join(PROJECT_ROOT, '.venv', 'bin');

/** Region and account the emulator answers for (moto's default account). */
export const EMULATOR_REGION = 'us-east-1';
export const EMULATOR_ACCOUNT_ID = '123456789012';

/** Credentials of the emulator's root (not an IAM user): what bootstrap and tests use to set things up. */
export const EMULATOR_ADMIN_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;

export interface Emulator {
  endpoint: string;
  port: number;
  /** Clears every resource (POST /moto-api/reset) and re-applies the configuration. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Installs the pinned Python requirements into .venv if they are not there yet. */
export function ensurePythonEnvironment(): void {
  execFileSync('bash', [join(PROJECT_ROOT, 'infra', 'local', 'install-python.sh')], { stdio: 'inherit' });
}

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function configure(endpoint: string): Promise<void> {
  // Batch jobs are accepted and walked through their states without Docker.
  const response = await fetch(`${endpoint}/moto-api/config`, {
    method: 'POST',
    body: JSON.stringify({ batch: { use_docker: false } }),
  });
  if (!response.ok) throw new Error(`The emulator refused its configuration (HTTP ${response.status}).`);
}

async function waitUntilUp(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`The emulator exited with code ${child.exitCode} while starting:\n${output()}`);
    }
    try {
      const response = await fetch(`${endpoint}/moto-api/data.json`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 150));
  }
  throw new Error(`The emulator did not answer on ${endpoint} within 60 seconds:\n${output()}`);
}

/** Starts moto_server on 127.0.0.1:port (a free port when none is given) and waits until it answers. */
export async function startEmulator(options: { port?: number; quiet?: boolean } = {}): Promise<Emulator> {
  ensurePythonEnvironment();
  const python = join(VENV_BIN, 'python');
  if (!existsSync(python)) throw new Error('python is missing from .venv; delete .venv and try again.');
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  // moto_server with DynamoDB requests serialized, as DynamoDB's transactions need (see moto_server.py).
  const child = spawn(python, [join(PROJECT_ROOT, 'infra', 'local', 'moto_server.py'), '-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, MOTO_IAM_LOAD_MANAGED_POLICIES: 'true', PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
    if (!options.quiet && process.env.MFENV_EMULATOR_LOG === '1') process.stderr.write(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  try {
    await waitUntilUp(endpoint, child, () => log);
    await configure(endpoint);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    endpoint,
    port,
    async reset() {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`The emulator could not reset (HTTP ${response.status}).`);
      await configure(endpoint);
    },
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
