/**
 * Cold-start figures of every Lambda (DESIGN §10): builds the stack with its real bundles, then for each
 * function prints the bundle size (raw and gzipped, as Lambda downloads it zipped) and the time a fresh Node
 * process takes to import it — the median of several runs. A benchmark, not a test: it asserts nothing and
 * its numbers depend on the machine. Run with `npm run bench`.
 *
 * Each function is built three ways with the one Lambda build (infra/lambda-bundle.ts): as `cdk synth`
 * deploys it; with the credential alias only; and without either Lambda-only change, the build as it was
 * before them. Runs of the three alternate, so a machine getting busier slows all alike; the table gives
 * the medians and the ratio of deployed to before.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { MfenvFunction, settingsReadByEntry } from '../../infra/functions';
import { BUNDLE_FILE, type LambdaOnlyChange, bundleLambda } from '../../infra/lambda-bundle';
import { bundleDirOf, logicalIdOf, synthesize } from '../infra/synth';
import { sampleEnvironmentOf } from '../support/function-environment';
import { removeScratchDirs, scratchDir } from '../support/scratch';

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

interface Deployed {
  entry: string;
  file: string;
  env: Record<string, string>;
}

/** Each function's bundle file, built as `cdk synth` builds it, its entry and the environment the stack gives it. */
function deployedBundles(): Map<string, Deployed> {
  const synthesized = synthesize({}, { bundle: true });
  const { stack, json } = synthesized;
  const functions = stack.node.findAll().filter((construct): construct is MfenvFunction => construct instanceof MfenvFunction);
  return new Map(
    functions.map((fn) => {
      const logicalId = logicalIdOf(fn);
      // A function made inside a construct of its own (the uninstall guard's, the idle check's) is named after it.
      const name = fn.node.id === 'Function' ? fn.node.scope!.node.id : fn.node.id;
      return [name, { entry: fn.entry, file: path.join(bundleDirOf(synthesized, fn), BUNDLE_FILE), env: sampleEnvironmentOf(json, logicalId) }];
    }),
  );
}

/** The same function's bundle with only `changes` of the Lambda-only ones. */
async function bundleWith(entry: string, changes: LambdaOnlyChange[], outdir: string): Promise<string> {
  await bundleLambda({ entry, outdir, requiredSettings: settingsReadByEntry(entry), changes });
  return path.join(outdir, BUNDLE_FILE);
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

async function main(): Promise<void> {
  const scratch = scratchDir('bench');
  try {
    const rows = [];
    for (const [id, { entry, file, env }] of deployedBundles()) {
      const before = await bundleWith(entry, [], path.join(scratch, id, 'before'));
      const aliasOnly = await bundleWith(entry, ['credentials-from-environment'], path.join(scratch, id, 'alias'));
      const times = { deployed: [] as number[], aliasOnly: [] as number[], before: [] as number[] };
      for (let run = 0; run < RUNS; run += 1) {
        times.before.push(importMs(before, env));
        times.aliasOnly.push(importMs(aliasOnly, env));
        times.deployed.push(importMs(file, env));
      }
      const ms = median(times.deployed);
      const beforeMs = median(times.before);
      rows.push({
        function: id,
        'bundle KiB': kib(statSync(file).size),
        'gzip KiB': kib(gzipSync(readFileSync(file)).length),
        [`import ms (median of ${RUNS})`]: Math.round(ms),
        'alias only ms': Math.round(median(times.aliasOnly)),
        'before ms': Math.round(beforeMs),
        'before KiB': kib(statSync(before).size),
        ratio: Number((ms / beforeMs).toFixed(2)),
      });
    }
    console.log(`Node ${process.version}, ${process.arch}; import time of each bundle as deployed, with the credential alias only, and before both Lambda-only changes`);
    console.table(rows);
    console.log(`Median ratio over the functions: ${median(rows.map((row) => row.ratio)).toFixed(2)} (deployed import time / import time before the Lambda-only changes).`);
  } finally {
    removeScratchDirs();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
