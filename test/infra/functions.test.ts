/**
 * The Lambda functions, bundled for real: runtime, architecture, tracing, logs; the bundles themselves
 * (ESM with the require shim, the SDK inside, source maps) load in Node; and each function is given
 * exactly the settings its code reads (lambdas/core/settings.ts), no more.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { FUNCTION_RUNTIME, LOG_RETENTION, type MfenvFunction } from '../../infra/functions';
import { SETTING, type SettingName } from '../../lambdas/core/settings';
import { API_FUNCTION, STEP_FUNCTIONS, STEP_FUNCTION_IDS, UNINSTALL_GUARD_FUNCTION } from '../../lambdas/steps/catalogue';
import { sampleEnvironmentOf } from '../support/function-environment';
import { settingsReadBy } from './sources';
import { PROJECT_ROOT, type Synthesized, bundleDirOf, logicalIdOf, resourcesOfType, synthesize } from './synth';

/**
 * Settings a function may read without being given them on AWS: the region comes from the Lambda runtime,
 * these two describe an S3-compatible emulator, so their defaults are right on AWS, and the Batch service
 * role is optional (given only with context mfenv:batchServiceRoleArn; see "the functions of a deployment
 * that names its Batch service role" in permissions.test.ts).
 */
const PROVIDED_OR_LOCAL_ONLY: SettingName[] = ['region', 's3ForcePathStyle', 'metaflowS3EndpointUrl', 'batchServiceRoleArn'];
/** Variables every function gets besides its settings. */
const COMMON_VARIABLES = ['NODE_OPTIONS', 'POWERTOOLS_SERVICE_NAME'];

describe('the functions', () => {
  let synthesized: Synthesized;
  let functions: [string, MfenvFunction][];
  beforeAll(() => {
    synthesized = synthesize({}, { bundle: true });
    const { stack } = synthesized;
    functions = [
      ...STEP_FUNCTION_IDS.map((id) => [STEP_FUNCTIONS[id].entry, stack.workflows.stepFunctions[id]] as [string, MfenvFunction]),
      [API_FUNCTION.entry, stack.apiFunction],
      [UNINSTALL_GUARD_FUNCTION.entry, stack.uninstallGuard.function],
    ];
  }, 180_000);

  const resourceOf = (fn: MfenvFunction) => synthesized.json.Resources[logicalIdOf(fn)]!;
  const bundleDir = (fn: MfenvFunction) => bundleDirOf(synthesized, fn);

  it('are every Lambda of the stack: one per step Lambda of the catalogue, the API and the uninstall guard', () => {
    // prepare
    const { json } = synthesized;

    // act
    const ids = resourcesOfType(json, 'AWS::Lambda::Function').map(([id]) => id).sort();

    // assess
    expect(ids).toEqual(functions.map(([, fn]) => logicalIdOf(fn)).sort());
  });

  it('run on the newest Node.js runtime, on arm64, traced, with the fixed defaults', () => {
    // prepare
    const expectedRuntime = FUNCTION_RUNTIME.name;

    // act
    const properties = functions.map(([, fn]) => resourceOf(fn).Properties!);

    // assess
    expect(expectedRuntime).toBe('nodejs24.x');
    for (const fn of properties) {
      expect(fn).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        MemorySize: 256,
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
      });
      expect(fn.Environment.Variables).toMatchObject({ NODE_OPTIONS: '--enable-source-maps', POWERTOOLS_SERVICE_NAME: 'mfenv' });
      expect(fn.Timeout).toBeLessThanOrEqual(100);
    }
  });

  it('log to their own log group, with retention', () => {
    // prepare
    const { json } = synthesized;

    // act
    const logGroups = functions.map(([, fn]) => resourceOf(fn).Properties!.LoggingConfig.LogGroup.Ref as string);

    // assess
    expect(new Set(logGroups).size).toBe(functions.length);
    for (const logGroup of logGroups) {
      expect(json.Resources[logGroup]!.Type).toBe('AWS::Logs::LogGroup');
      expect(json.Resources[logGroup]!.Properties!.RetentionInDays).toBe(LOG_RETENTION);
    }
    // ... and so does everything else that logs.
    for (const [, logGroup] of resourcesOfType(json, 'AWS::Logs::LogGroup')) expect(logGroup.Properties!.RetentionInDays).toBe(LOG_RETENTION);
  });

  it('are minified ESM bundles with the require shim, the SDK inside and a source map without sources', () => {
    // prepare
    const entries = functions;

    // act
    const bundles = entries.map(([entry, fn]) => ({ entry, dir: bundleDir(fn) }));

    // assess
    for (const { dir } of bundles) {
      const code = readFileSync(path.join(dir, 'index.mjs'), 'utf8');
      expect(code.startsWith("import { createRequire as mfenvCreateRequire } from 'node:module'; const require = mfenvCreateRequire(import.meta.url);")).toBe(true);
      expect(code).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
      expect(code).not.toMatch(/from\s*"@aws-sdk\//);
      // minified: long lines, not one statement per line
      expect(code.length / code.split('\n').length).toBeGreaterThan(1000);
      const map = JSON.parse(readFileSync(path.join(dir, 'index.mjs.map'), 'utf8'));
      expect(map.sourcesContent).toBeUndefined();
      expect(map.sources).toEqual(expect.arrayContaining([expect.stringContaining('lambdas/')]));
    }
  });

  it('load in Node and export a handler (the cold-start import, measured)', () => {
    // prepare
    const loader = [
      'const started = performance.now();',
      'const module = await import(process.argv[1]);',
      'console.log(JSON.stringify({ handler: typeof module.handler, ms: Math.round(performance.now() - started) }));',
    ].join('\n');

    // act
    const loaded = functions.map(([entry, fn]) => {
      const file = path.join(bundleDir(fn), 'index.mjs');
      const output = execFileSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', loader, file], {
        encoding: 'utf8',
        // Its settings, as Lambda gives them: the bundle checks them as it loads (lambdas/core/init-check.ts).
        env: { PATH: process.env.PATH, ...sampleEnvironmentOf(synthesized.json, logicalIdOf(fn)) },
      });
      return { entry, bytes: statSync(file).size, ...JSON.parse(output.trim().split('\n').pop()!) };
    });

    // assess
    for (const bundle of loaded) {
      expect(bundle).toMatchObject({ handler: 'function' });
      expect(bundle.bytes).toBeLessThan(3_000_000);
    }
    console.info(loaded.map((b) => `${b.entry}: ${(b.bytes / 1024).toFixed(0)} KiB, imported in ${b.ms} ms`).join('\n'));
  });

  it('are given exactly the settings their code reads', async () => {
    // prepare
    const expected = await Promise.all(
      functions.map(async ([entry]) => (await settingsReadBy(entry)).filter((name) => !PROVIDED_OR_LOCAL_ONLY.includes(name)).map((name) => SETTING[name])),
    );

    // act
    const given = functions.map(([, fn]) =>
      Object.keys(resourceOf(fn).Properties!.Environment.Variables)
        .filter((variable) => !COMMON_VARIABLES.includes(variable))
        .sort(),
    );

    // assess
    expect(Object.fromEntries(functions.map(([entry], index) => [entry, given[index]]))).toEqual(
      Object.fromEntries(functions.map(([entry], index) => [entry, [...expected[index]!].sort()])),
    );
  });
});

describe('the function entries', () => {
  it('exist for every step Lambda of the catalogue, the API and the uninstall guard', () => {
    // prepare
    const entries = [...STEP_FUNCTION_IDS.map((id) => STEP_FUNCTIONS[id].entry), API_FUNCTION.entry, UNINSTALL_GUARD_FUNCTION.entry];

    // act
    const missing = entries.filter((entry) => !existsSync(path.join(PROJECT_ROOT, entry)));

    // assess
    expect(missing).toEqual([]);
  });
});
