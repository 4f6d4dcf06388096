/**
 * The two Lambda-only changes of the Lambda build (infra/lambda-bundle.ts, DESIGN §10, cold start), checked in
 * the bundles `cdk synth` stages: the credentials come from the environment only (an esbuild alias swaps
 * the SDK's default chain for lambdas/core/credentials-from-env.ts, checked to behave as the chain does on
 * Lambda), and the SDK clients' schemas are read with literal trait keys, so a bundle carries only the
 * schemas of the commands its code sends. That the bundles still work is shown against the emulator, in
 * test/integration/lambda-bundles.test.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { MfenvFunction } from '../../infra/functions';
import { BUNDLE_FILE, LAMBDA_ALIASES, withLiteralTraitKeys } from '../../infra/lambda-bundle';
import { credentialsTreatedAsExpired, credentialsWillNeedRefresh, defaultProvider } from '../../lambdas/core/credentials-from-env';
import { STEP_FUNCTION_IDS } from '../../lambdas/steps/catalogue';
import { PROJECT_ROOT, type Synthesized, bundleDirOf, synthesize } from './synth';

/** Text only the SDK's full chain carries (its final error), and text only the environment provider carries. */
const FULL_CHAIN_MARK = 'Could not load credentials from any providers';
const FROM_ENV_MARK = 'Unable to find environment variable credentials';

describe('the Lambda build', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize({}, { bundle: true });
  }, 180_000);

  const bundleOf = (fn: MfenvFunction) => readFileSync(path.join(bundleDirOf(synthesized, fn), BUNDLE_FILE), 'utf8');

  it('aliases the SDK default credential chain to the environment-only provider', () => {
    // prepare
    const expected = { '@aws-sdk/credential-provider-node': './lambdas/core/credentials-from-env.ts' };

    // act
    const aliases = { ...LAMBDA_ALIASES };

    // assess
    expect(aliases).toEqual(expected);
  });

  it('ships every function with the environment provider and without the full chain, the SDK still inside', () => {
    // prepare
    const { stack } = synthesized;
    const functions = [...STEP_FUNCTION_IDS.map((id) => stack.workflows.stepFunctions[id]), stack.apiFunction];

    // act
    const bundles = functions.map((fn) => ({ id: fn.node.id, code: bundleOf(fn) }));

    // assess
    expect(bundles.length).toBeGreaterThan(5);
    for (const { id, code } of bundles) {
      expect({ id, fullChain: code.includes(FULL_CHAIN_MARK), fromEnv: code.includes(FROM_ENV_MARK), sdk: code.includes('aws-sdk-js') }).toEqual({
        id,
        fullChain: false,
        fromEnv: true,
        sdk: true,
      });
    }
  });

  it('ships the EC2 schemas of the commands a function sends, not those of the hundreds it never sends', () => {
    // prepare: DescribeSubnets is sent by the API (preflight), the network and the Batch steps; no function
    // allocates addresses or withdraws address ranges
    const { stack } = synthesized;
    const ec2Users = [stack.apiFunction, stack.workflows.stepFunctions.network, stack.workflows.stepFunctions.batch];

    // act
    const bundles = ec2Users.map((fn) => ({ id: fn.node.id, code: bundleOf(fn) }));

    // assess
    for (const { id, code } of bundles) {
      expect({ id, sent: code.includes('"DescribeSubnetsResult"'), unsent: ['"AllocateAddressResult"', '"WithdrawByoipCidrResult"'].filter((name) => code.includes(name)) }).toEqual({
        id,
        sent: true,
        unsent: [],
      });
    }
  });
});

describe('literal trait keys', () => {
  it('become literals where the file declares the key as a plain string, and stay as they are otherwise', () => {
    // prepare
    const source = [
      'const _xN = "xmlName";',
      'const _q = "say \\"hi\\"";',
      'export var A$ = [3, n0, _A, 0, [_B], [[() => B$, { [_xN]: _bC, [_q]: 1, [other]: 2 }]]];',
    ].join('\n');

    // act
    const rewritten = withLiteralTraitKeys(source);

    // assess
    expect(rewritten.split('\n')[2]).toBe('export var A$ = [3, n0, _A, 0, [_B], [[() => B$, { "xmlName": _bC, [_q]: 1, [other]: 2 }]]];');
  });

  it('leave no computed trait key in the schemas of any SDK client the project installs (an SDK change in their form fails here)', () => {
    // prepare
    const sdk = path.join(PROJECT_ROOT, 'node_modules', '@aws-sdk');
    const schemaFiles = readdirSync(sdk)
      .filter((name) => name.startsWith('client-'))
      .flatMap((client) => {
        const dir = path.join(sdk, client, 'dist-es', 'schemas');
        return readdirSync(dir).filter((file) => file.endsWith('.js')).map((file) => path.join(dir, file));
      });

    // act
    const left = schemaFiles.map((file) => ({ file: path.relative(sdk, file), computed: (withLiteralTraitKeys(readFileSync(file, 'utf8')).match(/\[_\w+\]:/g) ?? []).length }));

    // assess
    expect(schemaFiles.length).toBeGreaterThanOrEqual(8);
    expect(left.filter(({ computed }) => computed > 0)).toEqual([]);
  });
});

describe('the environment-only credential provider', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('answers the credentials Lambda puts in the environment', async () => {
    // prepare
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' });

    // act
    const credentials = await defaultProvider()();

    // assess
    expect(credentials).toMatchObject({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' });
    expect(credentialsWillNeedRefresh(credentials)).toBe(false);
  });

  it('fails saying so when the environment has none, and treats credentials about to expire as expired', async () => {
    // prepare
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const soon = { expiration: new Date(Date.now() + 60_000) };
    const later = { expiration: new Date(Date.now() + 3_600_000) };

    // act
    const missing = defaultProvider()();

    // assess
    await expect(missing).rejects.toThrow(FROM_ENV_MARK);
    expect([credentialsTreatedAsExpired(soon), credentialsTreatedAsExpired(later), credentialsWillNeedRefresh(later)]).toEqual([true, false, true]);
  });
});
