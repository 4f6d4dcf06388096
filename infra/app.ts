/**
 * The CDK app (cdk.json: `npx tsx infra/app.ts`). Settings are context values; see infra/config.ts and the
 * README. Synthesizes offline, without credentials, unless context mfenv:vpcId asks to look up a VPC.
 */
import { App } from 'aws-cdk-lib';
import { ConfigError } from './config';
import { buildMfenvApp } from './stack';

const app = new App();
try {
  buildMfenvApp(app);
  app.synth();
} catch (error) {
  if (error instanceof ConfigError) {
    // A settings mistake: the sentence is the whole story, a stack trace would only hide it.
    console.error(`mfenv: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
