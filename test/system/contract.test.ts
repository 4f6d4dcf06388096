/**
 * The API against its own OpenAPI document, by fuzzing: schemathesis reads the document local mode serves
 * (GET /openapi.json), generates requests for every operation (the document's examples, boundary and
 * negative cases, random ones, and sequences that follow the responses, such as a create then a get), sends
 * them signed with SigV4 as a teammate's user (test/support/schemathesis_sigv4.py) and checks every answer:
 * no 5xx, a documented status, a documented content type, a body that matches the documented schema, the
 * documented headers. The run is seeded at random (MFENV_CONTRACT_SEED repeats one) and printed with its
 * figures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, VENV_BIN, ensurePythonEnvironment } from '../../infra/local/emulator';
import type { LocalUser } from '../../infra/local/runtime';
import { useLocalMode } from '../support/local-mode';

// Each refused case would be a log line; the figures below say what happened.
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
jest.setTimeout(240_000);

/** What every answer is checked for (schemathesis' names). */
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
];
/** Cases per operation and phase: a few hundred requests in all, well under a minute on two cores. */
const MAX_EXAMPLES = 20;

/** How many answers of each status the API gave during the run (local mode's request log). */
const answers = new Map<number, number>();
const context = useLocalMode({ onRequest: ({ status }) => void answers.set(status, (answers.get(status) ?? 0) + 1) });
let fuzzer: LocalUser;

beforeAll(async () => {
  fuzzer = await context.local.createUser('fuzzer');
});

interface Report {
  running_time: number;
  exit_code: number;
  operations: { total: number; tested: number; errored: number };
  test_cases: { generated: number; with_failures: number; unique_failures: number; errored: number };
  failures: unknown[];
  errors: unknown[];
}

/** Runs schemathesis to the end (asynchronously: the API it calls is served by this very process). */
function schemathesis(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(VENV_BIN, 'schemathesis'), args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the API against its OpenAPI document', () => {
  it('answers every generated request as the document says, signed as a teammate', async () => {
    // prepare
    ensurePythonEnvironment();
    const workDir = mkdtempSync(join(tmpdir(), 'mfenv-contract-'));
    const seed = process.env.MFENV_CONTRACT_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
    const { apiUrl, region } = context.local;
    const args = [
      'run',
      `${apiUrl}/openapi.json`,
      '--url',
      apiUrl,
      '--checks',
      CHECKS.join(','),
      '--phases',
      'examples,coverage,fuzzing,stateful',
      '--max-examples',
      String(MAX_EXAMPLES),
      // One worker: hypothesis describes its strategies with ast.parse, which Python 3.11 does not run safely in parallel threads.
      '--workers',
      '1',
      '--seed',
      seed,
      '--generation-database',
      'none',
      '--request-timeout',
      '30',
      '--no-color',
      '--report',
      'json',
      '--report-dir',
      workDir,
    ];
    const env = {
      PATH: process.env.PATH,
      HOME: workDir,
      PYTHONPATH: join(PROJECT_ROOT, 'test', 'support'),
      // No __pycache__ left in the source tree.
      PYTHONDONTWRITEBYTECODE: '1',
      SCHEMATHESIS_HOOKS: 'schemathesis_sigv4',
      AWS_ACCESS_KEY_ID: fuzzer.accessKeyId,
      AWS_SECRET_ACCESS_KEY: fuzzer.secretAccessKey,
      AWS_REGION: region,
    };
    const started = Date.now();

    // act
    const run = await schemathesis(args, env, workDir);

    // assess
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const reportFile = readdirSync(workDir).find((file) => file.startsWith('json-'));
    const report = reportFile ? (JSON.parse(readFileSync(join(workDir, reportFile), 'utf8')) as Report) : undefined;
    rmSync(workDir, { recursive: true, force: true });
    const statuses = [...answers].sort(([a], [b]) => a - b).map(([status, count]) => `${status}×${count}`).join(' ');
    console.log(
      [
        `contract (schemathesis, seed ${seed}): ${report?.operations.tested ?? '?'} of ${report?.operations.total ?? '?'} operations, ` +
          `${report?.test_cases.generated ?? '?'} cases, ${report?.test_cases.unique_failures ?? '?'} failures, ` +
          `${report?.test_cases.errored ?? '?'} errors, in ${seconds} s`,
        `answers: ${statuses}`,
      ].join('\n'),
    );
    if (run.code !== 0 || !report || report.failures.length > 0 || report.errors.length > 0) {
      throw new Error(`schemathesis found the API and its document disagree (exit ${run.code}; repeat with MFENV_CONTRACT_SEED=${seed}):\n${run.output}`);
    }
    expect(report.operations.tested).toBe(report.operations.total);
    expect([...answers.keys()].filter((status) => status >= 500)).toEqual([]);
  });
});
