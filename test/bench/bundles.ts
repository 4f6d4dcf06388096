/**
 * Cold-start figures of every Lambda (DESIGN §10): builds the stack with its real esbuild bundles, then for
 * each function prints the bundle size (raw and gzipped, as Lambda downloads it zipped) and the time a fresh
 * Node process takes to import it — the median of several runs. A benchmark, not a test: it asserts nothing
 * and its numbers depend on the machine. Run with `npm run bench`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Stack } from 'aws-cdk-lib';
import { MfenvFunction } from '../../infra/functions';
import { synthesize } from '../infra/synth';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

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

function main(): void {
  const { app, stack, json } = synthesize({}, { bundle: true });
  const functions = stack.node.findAll().filter((construct): construct is MfenvFunction => construct instanceof MfenvFunction);
  const rows = functions.map((fn) => {
    const resource = fn.node.defaultChild as import('aws-cdk-lib').CfnElement;
    const key = json.Resources[Stack.of(fn).getLogicalId(resource)]!.Properties!.Code.S3Key as string;
    const file = path.join(app.outdir, `asset.${key.replace(/\.zip$/, '')}`, 'index.mjs');
    const code = readFileSync(file);
    const importMs = Array.from({ length: RUNS }, () =>
      Number(
        execFileSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', LOADER, file], {
          encoding: 'utf8',
          env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1' },
        }).trim(),
      ),
    );
    return {
      function: fn.node.id,
      'bundle KiB': Math.round(statSync(file).size / 1024),
      'gzip KiB': Math.round(gzipSync(code).length / 1024),
      [`import ms (median of ${RUNS})`]: Math.round(median(importMs)),
    };
  });
  console.log(`Node ${process.version}, ${process.arch}`);
  console.table(rows);
}

main();
