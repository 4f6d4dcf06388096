/**
 * The Lambda bundles resolve credentials from the environment only (DESIGN §10, cold start): the esbuild
 * alias of the Lambda build swaps the SDK's default chain for lambdas/core/credentials-from-env.ts. Checked
 * in the bundles `cdk synth` stages, and the stand-in checked to behave as the chain does on Lambda.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LAMBDA_ALIASES, type MfenvFunction } from '../../infra/functions';
import { credentialsTreatedAsExpired, credentialsWillNeedRefresh, defaultProvider } from '../../lambdas/core/credentials-from-env';
import { STEP_FUNCTION_IDS } from '../../lambdas/steps/catalogue';
import { type Synthesized, logicalIdOf, synthesize } from './synth';

/** Text only the SDK's full chain carries (its final error), and text only the environment provider carries. */
const FULL_CHAIN_MARK = 'Could not load credentials from any providers';
const FROM_ENV_MARK = 'Unable to find environment variable credentials';

describe('the Lambda build', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize({}, { bundle: true });
  }, 180_000);

  const bundleOf = (fn: MfenvFunction) => {
    const key = synthesized.json.Resources[logicalIdOf(fn)]!.Properties!.Code.S3Key as string;
    return readFileSync(path.join(synthesized.app.outdir, `asset.${key.replace(/\.zip$/, '')}`, 'index.mjs'), 'utf8');
  };

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
