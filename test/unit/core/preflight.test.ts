/**
 * The preflight decision (lambdas/core/preflight.ts, judge): facts in, a refusal or warnings out. Pure: the
 * facts are written here; reading them from AWS is covered against the emulator (test/integration/api/preflight.test.ts).
 */
import { BATCH_REGION_LIMIT, type PreflightFacts, type Reading, SPOT_QUOTAS, judge } from '../../../lambdas/core/preflight';

const known = <T>(value: T): Reading<T> => ({ known: true, value });
const unknown = (reason: string): Reading<never> => ({ known: false, reason });

/** A healthy account: generous quotas, every family offered, room for Batch objects, isolation on (no subnet fact). */
function facts(overrides: Partial<PreflightFacts> = {}): PreflightFacts {
  return {
    region: 'eu-west-1',
    spec: { maxVcpus: 64, gpu: true },
    standardSpotVcpus: known(256),
    gpuSpotVcpus: known(256),
    gpuFamilies: { configured: ['g4dn', 'g5', 'g6'], offered: known(['m6i', 'c6i', 'g4dn', 'g5', 'g6', 'p5']) },
    batch: known({ computeEnvironments: 3, jobQueues: 3 }),
    ...overrides,
  };
}

describe('judge', () => {
  it('passes a healthy account without a word, keeping every configured GPU family', () => {
    // act
    const verdict = judge(facts());
    // assess
    expect(verdict).toEqual({ warnings: [], gpuInstanceFamilies: ['g4dn', 'g5', 'g6'] });
  });

  it('records no GPU families for a CPU environment', () => {
    // act
    const verdict = judge(facts({ spec: { maxVcpus: 8, gpu: false }, gpuSpotVcpus: undefined, gpuFamilies: undefined }));
    // assess
    expect(verdict).toEqual({ warnings: [] });
  });

  it('refuses a standard Spot quota of 0 (a new account), naming the quota and the command that raises it', () => {
    // act
    const verdict = judge(facts({ standardSpotVcpus: known(0) }));
    // assess
    expect(verdict.refusal?.name).toBe('SpotQuotaZeroError');
    expect(verdict.refusal?.message).toContain(SPOT_QUOTAS.standard.name);
    expect(verdict.refusal?.message).toContain(
      'aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-34B43A08 --desired-value 64 --region eu-west-1',
    );
    expect(verdict.refusal?.message).toContain('https://eu-west-1.console.aws.amazon.com/servicequotas/home/services/ec2/quotas/L-34B43A08');
  });

  it('warns when the standard quota is below maxVcpus (5, a new account), and creates', () => {
    // act
    const verdict = judge(facts({ standardSpotVcpus: known(5) }));
    // assess
    expect(verdict.refusal).toBeUndefined();
    expect(verdict.warnings).toEqual([expect.stringMatching(/L-34B43A08\) is 5 vCPUs in eu-west-1, below this environment's maxVcpus \(64\).*--desired-value 64/)]);
  });

  it('creates a GPU environment with a warning when the G and VT quota is 0, telling how to raise it or to ask for gpu false', () => {
    // act
    const verdict = judge(facts({ gpuSpotVcpus: known(0) }));
    // assess
    expect(verdict.refusal).toBeUndefined();
    expect(verdict.gpuInstanceFamilies).toEqual(['g4dn', 'g5', 'g6']);
    expect(verdict.warnings).toEqual([expect.stringMatching(/^GPU jobs cannot start: .*L-3819A6DF\) is 0 vCPUs.*--quota-code L-3819A6DF.*"gpu": false/)]);
  });

  it('warns when the G and VT quota is above 0 but below maxVcpus', () => {
    // act
    const verdict = judge(facts({ gpuSpotVcpus: known(8) }));
    // assess
    expect(verdict.warnings).toEqual([expect.stringContaining('its GPU jobs get at most 8 vCPUs at once')]);
  });

  it('keeps only the GPU families the region offers, and says which are missing', () => {
    // act
    const verdict = judge(facts({ gpuFamilies: { configured: ['g4dn', 'g5', 'g6'], offered: known(['g4dn', 'm6i']) } }));
    // assess
    expect(verdict.gpuInstanceFamilies).toEqual(['g4dn']);
    expect(verdict.warnings).toEqual(['The GPU instance families g5, g6 are not offered in eu-west-1: GPU jobs run on g4dn only.']);
  });

  it('creates a GPU environment for CPU jobs only when the region offers none of the families, and then says nothing of the GPU quota', () => {
    // act
    const verdict = judge(facts({ gpuSpotVcpus: known(0), gpuFamilies: { configured: ['g4dn', 'g5', 'g6'], offered: known(['m6i']) } }));
    // assess
    expect(verdict.refusal).toBeUndefined();
    expect(verdict.gpuInstanceFamilies).toEqual([]);
    expect(verdict.warnings).toEqual([expect.stringMatching(/^None of the GPU instance families .* is offered in eu-west-1: .*CPU jobs only.*mfenv:gpuInstanceFamilies/)]);
  });

  it('keeps the configured GPU families, with a warning, when the offerings could not be read', () => {
    // act
    const verdict = judge(facts({ gpuFamilies: { configured: ['g5'], offered: unknown('UnauthorizedOperation: denied') } }));
    // assess
    expect(verdict.gpuInstanceFamilies).toEqual(['g5']);
    expect(verdict.warnings).toEqual([expect.stringContaining('could not be checked (UnauthorizedOperation: denied); the environment is created anyway')]);
  });

  it('never refuses for a quota it could not read: it warns that it could not check', () => {
    // act
    const verdict = judge(facts({ standardSpotVcpus: unknown('AccessDeniedException: no'), gpuSpotVcpus: unknown('AccessDeniedException: no') }));
    // assess
    expect(verdict.refusal).toBeUndefined();
    expect(verdict.warnings).toHaveLength(2);
    expect(verdict.warnings.join('\n')).toMatch(/L-34B43A08\) could not be checked \(AccessDeniedException: no\)/);
    expect(verdict.warnings.join('\n')).toMatch(/L-3819A6DF\) could not be checked/);
  });

  it.each([
    ['compute environments', { computeEnvironments: BATCH_REGION_LIMIT, jobQueues: 10 }],
    ['job queues', { computeEnvironments: 10, jobQueues: BATCH_REGION_LIMIT }],
  ])('refuses when the region holds %s at AWS’s limit, saying how to free one', (what, counts) => {
    // act
    const verdict = judge(facts({ batch: known(counts) }));
    // assess
    expect(verdict.refusal?.name).toBe('BatchLimitReachedError');
    expect(verdict.refusal?.message).toContain(`already holds 50 AWS Batch ${what}`);
    expect(verdict.refusal?.message).toContain('DELETE /environments/{name}');
  });

  it('admits one below the Batch limit', () => {
    // act
    const verdict = judge(facts({ batch: known({ computeEnvironments: BATCH_REGION_LIMIT - 1, jobQueues: BATCH_REGION_LIMIT - 1 }) }));
    // assess
    expect(verdict.refusal).toBeUndefined();
  });

  it('refuses shared subnets without public addresses as the deployment’s fault, telling the owner what to set', () => {
    // act
    const verdict = judge(
      facts({ sharedSubnets: known([{ id: 'subnet-open', mapsPublicIp: true }, { id: 'subnet-closed', mapsPublicIp: false }]) }),
    );
    // assess
    expect(verdict.refusal?.name).toBe('DeploymentMisconfiguredError');
    expect(verdict.refusal?.message).toContain('subnet subnet-closed gives instances no public IP address');
    expect(verdict.refusal?.message).not.toContain('subnet-open');
    expect(verdict.refusal?.message).toContain('aws ec2 modify-subnet-attribute --subnet-id subnet-closed --map-public-ip-on-launch');
    expect(verdict.refusal?.message).toContain('mfenv:networkIsolation=true');
  });

  it('admits shared subnets that all give public addresses', () => {
    // act
    const verdict = judge(facts({ sharedSubnets: known([{ id: 'subnet-a', mapsPublicIp: true }]) }));
    // assess
    expect(verdict).toEqual({ warnings: [], gpuInstanceFamilies: ['g4dn', 'g5', 'g6'] });
  });

  it('names the deployment’s fault first when several things refuse', () => {
    // act
    const verdict = judge(
      facts({
        standardSpotVcpus: known(0),
        batch: known({ computeEnvironments: 50, jobQueues: 50 }),
        sharedSubnets: known([{ id: 'subnet-closed', mapsPublicIp: false }]),
      }),
    );
    // assess
    expect(verdict.refusal?.name).toBe('DeploymentMisconfiguredError');
  });
});
