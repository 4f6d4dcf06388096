/**
 * The Lambda build: how the code of every MfenvFunction (infra/functions.ts) becomes the one file Lambda
 * loads. esbuild bundles the entry with everything it imports, the AWS SDK included (the version the lock
 * file pins and the tests ran; leaving it to the runtime measured 1.7 times slower to import), as a minified
 * ES module with a source map, tree-shaken so a function carries only the SDK commands its code sends.
 *
 * Besides the settings check injected at init (lambdas/core/init-check.ts), two changes make the bundle differ
 * from the source that local mode and the tests run (LAMBDA_ONLY_CHANGES), both for cold start and neither
 * for behaviour; `npm run bench` measures them against the build without them:
 * - the SDK's default credential chain is replaced by one that reads the environment only (LAMBDA_ALIASES);
 * - the SDK clients' schemas are read with literal trait keys (literalSchemaTraitKeys), so esbuild can drop
 *   the schemas of the operations a function never calls.
 *
 * The second needs an esbuild plugin, which only esbuild's asynchronous API runs, while CDK bundles an asset
 * synchronously: `bundleLambdaSync` runs this file in a child process for each function (`npm run synth`,
 * tests that build the bundles), and waits for it.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { type BuildOptions, type Plugin, build, buildSync } from 'esbuild';

/** The repository root: entries are given relative to it, and esbuild resolves packages from it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** The esbuild target of FUNCTION_RUNTIME (infra/functions.ts). */
export const ESBUILD_TARGET = 'node24';

/** The file Lambda loads: the handler is `index.handler`, and the `.mjs` makes Node read it as an ES module. */
export const BUNDLE_FILE = 'index.mjs';

/**
 * ESM output lets esbuild tree-shake the SDK; some dependencies are still CommonJS and call `require`,
 * which ESM lacks: the banner gives them one.
 */
const ESM_REQUIRE_SHIM = "import { createRequire as mfenvCreateRequire } from 'node:module'; const require = mfenvCreateRequire(import.meta.url);";

/**
 * esbuild aliases of the Lambda build only: the SDK's default credential chain is replaced by one that reads
 * the environment, where Lambda puts the function's credentials (lambdas/core/credentials-from-env.ts), so
 * the bundles neither carry nor load the providers (SSO, INI, process, IMDS...) a Lambda never uses.
 * Paths are relative to the project root, esbuild's working directory.
 */
export const LAMBDA_ALIASES: Record<string, string> = {
  '@aws-sdk/credential-provider-node': './lambdas/core/credentials-from-env.ts',
};

/** Runs first in every Lambda bundle: checks the function's settings at init (lambdas/core/init-check.ts). */
const INIT_CHECK = path.join(PROJECT_ROOT, 'lambdas/core/init-check.ts');

/** The schema files of the SDK's service clients (`@aws-sdk/client-*`), ES module build. */
export const SDK_SCHEMA_FILES = /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]dist-es[\\/]schemas[\\/][^\\/]+\.js$/;

/**
 * The text of an SDK client's schema file with its trait keys written as literals: `{ [_xN]: _bC }` becomes
 * `{ "xmlName": _bC }`, where the file declares `const _xN = "xmlName";`. The object is the same; but esbuild
 * must assume a computed key may run code (a getter, a toString), so it keeps every schema declaration that
 * has one, and with them every schema they point to: a function sending one EC2 command carried the schemas
 * of all of EC2's (about 540 KiB of its bundle). Keys whose name the file does not declare as a plain string
 * are left as they are. The SDK's generator is being changed to write literal keys
 * (https://github.com/aws/aws-sdk-js-v3/issues/7607, https://github.com/smithy-lang/smithy-typescript/pull/1889);
 * once it does, this finds nothing to change.
 */
export function withLiteralTraitKeys(source: string): string {
  const strings = new Map([...source.matchAll(/^const (_\w+) = ("[^"\\\n]*");$/gm)].map(([, name, literal]) => [name!, literal!]));
  return source.replace(/\[(_\w+)\]:/g, (key, name: string) => {
    const literal = strings.get(name);
    return literal === undefined ? key : `${literal}:`;
  });
}

/** The esbuild plugin that reads the SDK clients' schema files through withLiteralTraitKeys. */
export const literalSchemaTraitKeys: Plugin = {
  name: 'literal-schema-trait-keys',
  setup(builder) {
    builder.onLoad({ filter: SDK_SCHEMA_FILES }, async (args) => ({
      contents: withLiteralTraitKeys(await readFile(args.path, 'utf8')),
      loader: 'js',
    }));
  },
};

/** What makes the Lambda build differ from the source local mode runs; each for cold start, none for behaviour. */
export const LAMBDA_ONLY_CHANGES = ['credentials-from-environment', 'literal-schema-trait-keys'] as const;
export type LambdaOnlyChange = (typeof LAMBDA_ONLY_CHANGES)[number];

export interface LambdaBundleRequest {
  /** Source file, relative to the project root; it exports `handler`. */
  entry: string;
  /** Where BUNDLE_FILE and its source map are written. */
  outdir: string;
  /** The settings the function's code reads, checked at init (lambdas/core/init-check.ts). */
  requiredSettings: readonly string[];
  /**
   * The Lambda-only changes to make (default: all, as deployed). `npm run bench` builds without some or all
   * of them, to measure what each is worth.
   */
  changes?: readonly LambdaOnlyChange[];
}

/** The esbuild options of one function's bundle. */
export function lambdaBuildOptions(request: LambdaBundleRequest): BuildOptions {
  const changes = new Set(request.changes ?? LAMBDA_ONLY_CHANGES);
  return {
    entryPoints: [path.join(PROJECT_ROOT, request.entry)],
    absWorkingDir: PROJECT_ROOT,
    outfile: path.join(request.outdir, BUNDLE_FILE),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ESBUILD_TARGET,
    mainFields: ['module', 'main'],
    minify: true,
    // Stack traces need the mappings only; leaving the sources out halves the map Node loads at cold start.
    sourcemap: true,
    sourcesContent: false,
    banner: { js: ESM_REQUIRE_SHIM },
    // The settings check runs at init, before the handler module (lambdas/core/init-check.ts).
    inject: [INIT_CHECK],
    // A string expression: the names comma separated.
    define: { MFENV_REQUIRED_SETTINGS: JSON.stringify(request.requiredSettings.join(',')) },
    alias: changes.has('credentials-from-environment') ? LAMBDA_ALIASES : {},
    plugins: changes.has('literal-schema-trait-keys') ? [literalSchemaTraitKeys] : [],
    logLevel: 'warning',
  };
}

/** Builds one function's bundle into `request.outdir`. */
export async function bundleLambda(request: LambdaBundleRequest): Promise<void> {
  await build(lambdaBuildOptions(request));
}

/** bundleLambda, for CDK's synchronous bundling: run in a child process (tsx, as this is TypeScript), waited for. */
export function bundleLambdaSync(request: LambdaBundleRequest): void {
  execFileSync(process.execPath, [require.resolve('tsx/cli'), __filename, JSON.stringify(request)], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/**
 * The code of each project file that survives tree-shaking in a bundle of `entry` (esbuild marks each file's
 * code with a `// <path>` line when it does not minify): what the function can actually run.
 */
export function treeShakenSections(entry: string): { file: string; code: string }[] {
  const { outputFiles } = buildSync({
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    write: false,
    treeShaking: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
  });
  const parts = outputFiles[0]!.text.split(/^\/\/ (\S+)$/m);
  const sections: { file: string; code: string }[] = [];
  for (let index = 1; index < parts.length; index += 2) {
    if (parts[index]!.startsWith('lambdas/')) sections.push({ file: parts[index]!, code: parts[index + 1]! });
  }
  return sections;
}

if (require.main === module) {
  bundleLambda(JSON.parse(process.argv[2]!) as LambdaBundleRequest).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
