/**
 * Cold-start figures of every Lambda (DESIGN §10): builds the stack with its real esbuild bundles, then for
 * each function prints the bundle size (raw and gzipped, as Lambda downloads it zipped) and the time a fresh
 * Node process takes to import it — the median of several runs. A benchmark, not a test: it asserts nothing
 * and its numbers depend on the machine. Run with `npm run bench`.
 *
 * It builds every bundle twice, as `cdk synth` does: as deployed, with the Lambda build's aliases
 * (LAMBDA_ALIASES: the credential chain read from the environment only), and once without them (the SDK's
 * full default chain). Runs of the two alternate, so a machine getting busier slows both alike; the table
 * gives both medians and their ratio.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Stack } from 'aws-cdk-lib';
import { LAMBDA_ALIASES, MfenvFunction } from '../../infra/functions';
import { synthesize } from '../infra/synth';
import { sampleEnvironmentOf } from '../support/function-environment';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);

const LOADER = [
  'const started = performance.now();',
  'const module = await import(process.argv[1]);',
  'if (typeof module.handler !== "function") throw new Error("no handler");',
  'console.log(performance.now() - started);',
].join('\n');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Each function's bundle file, built as `cdk synth` builds it, and the environment the stack gives it. */
function bundles(): Map<string, { file: string; env: Record<string, string> }> {
  const { app, stack, json } = synthesize({}, { bundle: true });
  const functions = stack.node.findAll().filter((construct): construct is MfenvFunction => construct instanceof MfenvFunction);
  return new Map(
    functions.map((fn) => {
      const logicalId = Stack.of(fn).getLogicalId(fn.node.defaultChild as import('aws-cdk-lib').CfnElement);
      const key = json.Resources[logicalId]!.Properties!.Code.S3Key as string;
      // A function made inside a construct of its own (the uninstall guard's, the idle check's) is named after it.
      const name = fn.node.id === 'Function' ? fn.node.scope!.node.id : fn.node.id;
      return [name, { file: path.join(app.outdir, `asset.${key.replace(/\.zip$/, '')}`, 'index.mjs'), env: sampleEnvironmentOf(json, logicalId) }];
    }),
  );
}

/** The same bundles without the Lambda build's aliases: what the functions would ship with the SDK's own chain. */
function bundlesWithoutAliases(): ReturnType<typeof bundles> {
  const saved = { ...LAMBDA_ALIASES };
  for (const name of Object.keys(LAMBDA_ALIASES)) delete LAMBDA_ALIASES[name];
  try {
    return bundles();
  } finally {
    Object.assign(LAMBDA_ALIASES, saved);
  }
}

/** Milliseconds a fresh Node takes to import the bundle, given the function's settings (it checks them as it loads). */
function importMs(file: string, env: Record<string, string>): number {
  return Number(
    execFileSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', LOADER, file], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, ...env },
    }).trim(),
  );
}

const kib = (bytes: number) => Math.round(bytes / 1024);

function main(): void {
  const deployed = bundles();
  const withoutAliases = bundlesWithoutAliases();
  const rows = [...deployed].map(([id, { file, env }]) => {
    const plain = withoutAliases.get(id)!.file;
    const timesDeployed: number[] = [];
    const timesPlain: number[] = [];
    for (let run = 0; run < RUNS; run += 1) {
      timesPlain.push(importMs(plain, env));
      timesDeployed.push(importMs(file, env));
    }
    const ms = median(timesDeployed);
    const plainMs = median(timesPlain);
    return {
      function: id,
      'bundle KiB': kib(statSync(file).size),
      'gzip KiB': kib(gzipSync(readFileSync(file)).length),
      'full-chain KiB': kib(statSync(plain).size),
      [`import ms (median of ${RUNS})`]: Math.round(ms),
      'full-chain ms': Math.round(plainMs),
      ratio: Number((ms / plainMs).toFixed(2)),
    };
  });
  console.log(`Node ${process.version}, ${process.arch}; import time of each bundle as deployed, and with the SDK's full credential chain`);
  console.table(rows);
  console.log(`Median ratio over the functions: ${median(rows.map((row) => row.ratio)).toFixed(2)} (aliased import time / full-chain import time).`);
}

main();
