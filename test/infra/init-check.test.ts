/**
 * Each Lambda checks its own settings while it initializes (lambdas/core/init-check.ts, injected into every
 * bundle): loaded with every variable the stack gives it, it loads; with one missing, the load itself fails
 * with a ConfigurationError naming the variable, before any request.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { type MfenvFunction, settingsReadByEntry } from '../../infra/functions';
import { BUNDLE_FILE } from '../../infra/lambda-bundle';
import { SETTING } from '../../lambdas/core/settings';
import { API_FUNCTION, STEP_FUNCTIONS } from '../../lambdas/steps/catalogue';
import { sampleEnvironmentOf } from '../support/function-environment';
import { type Synthesized, bundleDirOf, logicalIdOf, synthesize } from './synth';

const LOADER = 'const module = await import(process.argv[1]); console.log(typeof module.handler);';

describe('the settings check at init', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize({}, { bundle: true });
  }, 180_000);

  /** Imports the function's bundle in a fresh Node with `env`: its output, or the error it failed with. */
  function load(fn: MfenvFunction, env: Record<string, string>): { ok: boolean; output: string } {
    const file = path.join(bundleDirOf(synthesized, fn), BUNDLE_FILE);
    try {
      const output = execFileSync(process.execPath, ['--input-type=module', '-e', LOADER, file], { encoding: 'utf8', stdio: 'pipe', env: { PATH: process.env.PATH, ...env } });
      return { ok: true, output: output.trim() };
    } catch (error) {
      return { ok: false, output: String((error as { stderr?: string }).stderr) };
    }
  }

  it.each([
    ['registry', SETTING.tableName],
    ['batch', SETTING.securityGroupId],
    ['api', SETTING.provisionStateMachineArn],
  ] as const)('fails the %s function at load when %s is missing, naming it', (id, variable) => {
    // prepare
    const { stack, json } = synthesized;
    const fn = id === 'api' ? stack.apiFunction : stack.workflows.stepFunctions[id];
    const complete = sampleEnvironmentOf(json, logicalIdOf(fn));
    const { [variable]: _left, ...missingOne } = complete;

    // act
    const loaded = load(fn, complete);
    const failed = load(fn, missingOne);

    // assess
    expect(complete[variable]).toBeDefined();
    expect(loaded).toEqual({ ok: true, output: 'function' });
    expect(failed.ok).toBe(false);
    expect(failed.output).toContain('ConfigurationError');
    expect(failed.output).toContain(`The setting ${variable} is missing from this function's environment.`);
  });

  it('checks the settings the code reads, and those only', () => {
    // prepare
    const entries = { api: API_FUNCTION.entry, registry: STEP_FUNCTIONS.registry.entry };

    // act
    const read = { api: settingsReadByEntry(entries.api), registry: settingsReadByEntry(entries.registry) };

    // assess
    expect(read.api).toEqual(expect.arrayContaining(['tableName', 'provisionStateMachineArn', 'admins', 'prefix', 'region']));
    expect(read.api).not.toContain('permissionsBoundaryArn');
    expect(read.registry).toEqual(expect.arrayContaining(['tableName', 'teardownStateMachineArn']));
    expect(read.registry).not.toContain('provisionStateMachineArn');
  });
});
