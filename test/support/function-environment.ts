/**
 * A function's environment variables as the sample deployment would give them (test/support/concrete-template.ts):
 * a bundle checks its settings when it loads (lambdas/core/init-check.ts), so a test or benchmark that
 * imports a bundle gives it these, as Lambda would.
 */
import { type Synthesized, readable } from '../infra/synth';
import { SAMPLE } from './concrete-template';

/** Every variable of the function `logicalId`, references replaced by sample text (pseudo parameters by the sample's values). */
export function sampleEnvironmentOf(json: Synthesized['json'], logicalId: string): Record<string, string> {
  const pseudo: Record<string, string> = { 'AWS::AccountId': SAMPLE.accountId, 'AWS::Region': SAMPLE.region, 'AWS::Partition': SAMPLE.partition };
  const variables = (json.Resources[logicalId]!.Properties!.Environment?.Variables ?? {}) as Record<string, unknown>;
  const text = (value: unknown) =>
    typeof value === 'string'
      ? value
      : (JSON.parse(JSON.stringify(readable(value)).replace(/\$\{([A-Za-z0-9:]+)(?:\.\w+)?\}/g, (_, id: string) => pseudo[id] ?? id)) as string);
  return { AWS_REGION: SAMPLE.region, ...Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, text(value)])) };
}
