/**
 * Preflight of POST /environments (DESIGN §4): before anything is recorded, read what would make the new
 * environment useless or limited, so a teammate hears it at once, in a sentence, instead of from a workflow
 * that fails minutes later or from jobs that stay RUNNABLE for ever.
 *
 * Two halves. `readFacts` makes the read-only calls, all at once and within PREFLIGHT_TIMEOUT_MS; each one
 * that fails (denied, unreachable, slow) becomes a fact "unknown, because ...", never an error: preflight is
 * a courtesy, and a create must not depend on a service it only reads from. `judge` is pure: facts in, a
 * refusal or warnings out.
 *
 * - Refused (409, nothing recorded): a standard Spot vCPU quota of 0 (no job could ever run); the region's
 *   Batch compute environments or job queues at AWS's limit (the workflow would fail at its compute
 *   environment); with network isolation off, shared subnets that give instances no public address (no NAT
 *   by design: instances never join their cluster).
 * - Created with warnings: a Spot quota below maxVcpus; GPUs asked for (the default) but no G and VT Spot
 *   quota, or none of the deployment's GPU families offered in the region (the environment still runs CPU
 *   jobs, and `gpu` defaulting to true must not turn a CPU user away); a check that could not be made.
 *
 * With GPUs, the families the compute environment will use are the deployment's that the region offers;
 * they are recorded in the spec, so the workflow launches exactly what was checked.
 */
import { DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { DescribeInstanceTypeOfferingsCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import { GetAWSDefaultServiceQuotaCommand, GetServiceQuotaCommand } from '@aws-sdk/client-service-quotas';
import { batchClient, ec2Client, serviceQuotasClient } from './clients';
import type { Spec } from './environment';
import { BatchLimitReachedError, DeploymentMisconfiguredError, type MfenvError, SpotQuotaZeroError, messageOf } from './errors';
import { logger } from './logger';
import { settings } from './settings';

/** The EC2 Spot vCPU quotas an environment draws on ([Spot quotas](https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html)). */
export const SPOT_QUOTAS = {
  /** Default 5 vCPUs in a new account: `optimal` instances (m, c, r families) count against it. */
  standard: { serviceCode: 'ec2', quotaCode: 'L-34B43A08', name: 'All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests' },
  /** Default 0 vCPUs in a new account: the g4dn, g5, g6 families count against it. */
  gpu: { serviceCode: 'ec2', quotaCode: 'L-3819A6DF', name: 'All G and VT Spot Instance Requests' },
} as const;
export type SpotQuota = (typeof SPOT_QUOTAS)[keyof typeof SPOT_QUOTAS];

/** AWS Batch allows this many compute environments, and as many job queues, per account and region. */
export const BATCH_REGION_LIMIT = 50;
const BATCH_QUOTAS_URL = 'https://docs.aws.amazon.com/batch/latest/userguide/service_limits.html';

/** However slow a service is, a create waits no longer than this for its preflight; what is unread by then is unknown. */
export const PREFLIGHT_TIMEOUT_MS = 3_000;

/** A fact read from AWS, or why it could not be. */
export type Reading<T> = { known: true; value: T } | { known: false; reason: string };
const known = <T>(value: T): Reading<T> => ({ known: true, value });

export interface SubnetFact {
  id: string;
  mapsPublicIp: boolean;
}

/** Everything judge() decides on. Optional facts are read only when they matter. */
export interface PreflightFacts {
  region: string;
  spec: Pick<Spec, 'maxVcpus' | 'gpu'>;
  /** vCPUs of SPOT_QUOTAS.standard. */
  standardSpotVcpus: Reading<number>;
  /** vCPUs of SPOT_QUOTAS.gpu; only with `gpu`. */
  gpuSpotVcpus?: Reading<number>;
  /** Only with `gpu`: the deployment's GPU families, and every family the region offers. */
  gpuFamilies?: { configured: string[]; offered: Reading<string[]> };
  /** Only with network isolation off: the shared subnets the compute environments would launch into. */
  sharedSubnets?: Reading<SubnetFact[]>;
  /** Batch objects in the region (every team's and tool's), each counted up to BATCH_REGION_LIMIT. */
  batch: Reading<{ computeEnvironments: number; jobQueues: number }>;
}

export interface PreflightVerdict {
  /** Set when the environment would be useless: the answer to give; nothing may be recorded. */
  refusal?: MfenvError;
  /** What limits the environment, each with how to lift it. */
  warnings: string[];
  /** With `gpu`: the GPU families the compute environment uses (possibly none). */
  gpuInstanceFamilies?: string[];
}

const consoleUrl = (quota: SpotQuota, region: string) =>
  `https://${region}.console.aws.amazon.com/servicequotas/home/services/${quota.serviceCode}/quotas/${quota.quotaCode}`;

/** How the platform owner raises a quota: the CLI command and the console page. */
function howToRaise(quota: SpotQuota, region: string, desired: number): string {
  return (
    `aws service-quotas request-service-quota-increase --service-code ${quota.serviceCode} --quota-code ${quota.quotaCode} ` +
    `--desired-value ${desired} --region ${region}, or the Service Quotas console (${consoleUrl(quota, region)})`
  );
}

const quotaLabel = (quota: SpotQuota) => `"${quota.name}" (${quota.serviceCode} ${quota.quotaCode})`;

function uncheckable(what: string, reason: string, then: string): string {
  return `${what} could not be checked (${reason}); the environment is created anyway. ${then}`;
}

/** The refusal for subnets without public addresses, or undefined. */
function subnetRefusal(subnets: SubnetFact[]): MfenvError | undefined {
  const closed = subnets.filter((subnet) => !subnet.mapsPublicIp).map((subnet) => subnet.id);
  if (closed.length === 0) return undefined;
  return new DeploymentMisconfiguredError(
    `This deployment cannot make working environments: its shared subnet${closed.length === 1 ? '' : 's'} ${closed.join(', ')} ` +
      `give${closed.length === 1 ? 's' : ''} instances no public IP address, and with no NAT gateway (none, by design) Batch instances there could never join ` +
      'their cluster. Nothing was created; ask the platform owner to fix the deployment, then create it again. ' +
      `Platform owner: turn on auto-assign public IPv4 (aws ec2 modify-subnet-attribute --subnet-id ${closed[0]} --map-public-ip-on-launch), ` +
      'or deploy with mfenv:networkIsolation=true, which gives each environment public subnets of its own.',
  );
}

function batchRefusal(region: string, counts: { computeEnvironments: number; jobQueues: number }): MfenvError | undefined {
  const full = [
    ...(counts.computeEnvironments >= BATCH_REGION_LIMIT ? ['compute environments'] : []),
    ...(counts.jobQueues >= BATCH_REGION_LIMIT ? ['job queues'] : []),
  ];
  if (full.length === 0) return undefined;
  return new BatchLimitReachedError(
    `The region ${region} already holds ${BATCH_REGION_LIMIT} AWS Batch ${full.join(' and ')}, the most AWS allows per account ` +
      `and region (${BATCH_QUOTAS_URL}), so this environment's could not be made; nothing was created. Delete an environment ` +
      'you no longer use (DELETE /environments/{name}), or ask the platform owner to free one: those of other teams and tools in the account count too.',
  );
}

/** Pure: what the facts say about a new environment (see the module comment for the rules). */
export function judge(facts: PreflightFacts): PreflightVerdict {
  const { region, spec } = facts;
  const warnings: string[] = [];
  const refusals: (MfenvError | undefined)[] = [];

  // The deployment's own fault first: it is what the teammate must hand on.
  if (facts.sharedSubnets?.known) refusals.push(subnetRefusal(facts.sharedSubnets.value));
  else if (facts.sharedSubnets) {
    warnings.push(
      uncheckable('Whether the shared subnets give instances public addresses', facts.sharedSubnets.reason, 'If jobs stay RUNNABLE, tell the platform owner.'),
    );
  }

  if (facts.batch.known) refusals.push(batchRefusal(region, facts.batch.value));
  else {
    warnings.push(
      uncheckable(
        `How many AWS Batch compute environments the region holds (at most ${BATCH_REGION_LIMIT})`,
        facts.batch.reason,
        'If the environment ends CREATE_FAILED, its statusReason says why.',
      ),
    );
  }

  const standard = SPOT_QUOTAS.standard;
  if (facts.standardSpotVcpus.known) {
    const vcpus = facts.standardSpotVcpus.value;
    if (vcpus <= 0) {
      refusals.push(
        new SpotQuotaZeroError(
          `This account's EC2 Spot quota ${quotaLabel(standard)} is 0 vCPUs in ${region}, so the environment could run no job; ` +
            `nothing was created. Ask the platform owner to raise it to at least ${spec.maxVcpus}: ${howToRaise(standard, region, spec.maxVcpus)}. ` +
            'Then create it again.',
        ),
      );
    } else if (vcpus < spec.maxVcpus) {
      warnings.push(
        `This account's EC2 Spot quota ${quotaLabel(standard)} is ${vcpus} vCPUs in ${region}, below this environment's maxVcpus ` +
          `(${spec.maxVcpus}) and shared with every Spot instance of the account: its jobs get at most ${vcpus} vCPUs at once. ` +
          `The platform owner can raise it: ${howToRaise(standard, region, spec.maxVcpus)}.`,
      );
    }
  } else {
    warnings.push(
      uncheckable(
        `The Spot vCPU quota ${quotaLabel(standard)}`,
        facts.standardSpotVcpus.reason,
        `If jobs stay RUNNABLE, ask the platform owner to look at it in the Service Quotas console (${consoleUrl(standard, region)}).`,
      ),
    );
  }

  let gpuInstanceFamilies: string[] | undefined;
  if (spec.gpu && facts.gpuFamilies) {
    const { configured, offered } = facts.gpuFamilies;
    if (offered.known) {
      gpuInstanceFamilies = configured.filter((family) => offered.value.includes(family));
      const missing = configured.filter((family) => !gpuInstanceFamilies!.includes(family));
      if (gpuInstanceFamilies.length === 0) {
        warnings.push(
          `None of the GPU instance families this deployment uses (${configured.join(', ')}) is offered in ${region}: the environment ` +
            'is made for CPU jobs only. Create it with "gpu": false to say so, or ask the platform owner to set mfenv:gpuInstanceFamilies ' +
            'to GPU families this region offers.',
        );
      } else if (missing.length > 0) {
        warnings.push(
          `The GPU instance famil${missing.length === 1 ? 'y' : 'ies'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not offered in ${region}: ` +
            `GPU jobs run on ${gpuInstanceFamilies.join(', ')} only.`,
        );
      }
    } else {
      gpuInstanceFamilies = [...configured];
      warnings.push(
        uncheckable(
          `Which GPU instance families ${region} offers`,
          offered.reason,
          'If the environment ends CREATE_FAILED naming an instance type, create it again, or with "gpu": false.',
        ),
      );
    }
    // The GPU quota matters only when the environment can launch GPU instances at all.
    const gpu = SPOT_QUOTAS.gpu;
    if (gpuInstanceFamilies.length > 0 && facts.gpuSpotVcpus) {
      if (!facts.gpuSpotVcpus.known) {
        warnings.push(
          uncheckable(
            `The GPU Spot vCPU quota ${quotaLabel(gpu)}`,
            facts.gpuSpotVcpus.reason,
            `If GPU jobs stay RUNNABLE, ask the platform owner to look at it in the Service Quotas console (${consoleUrl(gpu, region)}).`,
          ),
        );
      } else if (facts.gpuSpotVcpus.value <= 0) {
        warnings.push(
          `GPU jobs cannot start: this account's EC2 Spot quota ${quotaLabel(gpu)} is 0 vCPUs in ${region} (a new account's default); ` +
            `CPU jobs run as usual. The platform owner can raise it: ${howToRaise(gpu, region, spec.maxVcpus)}. ` +
            'Or create the environment with "gpu": false.',
        );
      } else if (facts.gpuSpotVcpus.value < spec.maxVcpus) {
        warnings.push(
          `This account's EC2 Spot quota ${quotaLabel(gpu)} is ${facts.gpuSpotVcpus.value} vCPUs in ${region}, below this environment's ` +
            `maxVcpus (${spec.maxVcpus}): its GPU jobs get at most ${facts.gpuSpotVcpus.value} vCPUs at once. ` +
            `The platform owner can raise it: ${howToRaise(gpu, region, spec.maxVcpus)}.`,
        );
      }
    }
  }

  const refusal = refusals.find((candidate) => candidate !== undefined);
  return { ...(refusal ? { refusal } : {}), warnings, ...(gpuInstanceFamilies ? { gpuInstanceFamilies } : {}) };
}

// ---- Reading the facts: read-only calls, each turned into a Reading.

const errorName = (error: unknown) => (error as { name?: string })?.name;

function unknownBecause(error: unknown, abortSignal: AbortSignal): Reading<never> {
  if (abortSignal.aborted) return { known: false, reason: `no answer within ${PREFLIGHT_TIMEOUT_MS / 1000} s` };
  const name = errorName(error);
  return { known: false, reason: name && name !== 'Error' ? `${name}: ${messageOf(error)}` : messageOf(error) };
}

/** Runs one read; whatever it throws becomes an unknown fact, logged for the platform owner. */
async function reading<T>(what: string, abortSignal: AbortSignal, read: () => Promise<T>): Promise<Reading<T>> {
  try {
    return known(await read());
  } catch (error) {
    logger.warn('preflight could not read a fact', { what, error: error as Error });
    return unknownBecause(error, abortSignal);
  }
}

/**
 * A quota's value as it applies to the account: the applied value, or AWS's default when the quota was
 * never changed (Service Quotas then answers NoSuchResourceException for the applied value).
 */
async function spotQuotaVcpus(quota: SpotQuota, abortSignal: AbortSignal): Promise<number> {
  const codes = { ServiceCode: quota.serviceCode, QuotaCode: quota.quotaCode };
  let value: number | undefined;
  try {
    value = (await serviceQuotasClient().send(new GetServiceQuotaCommand(codes), { abortSignal })).Quota?.Value;
  } catch (error) {
    if (errorName(error) !== 'NoSuchResourceException') throw error;
    value = (await serviceQuotasClient().send(new GetAWSDefaultServiceQuotaCommand(codes), { abortSignal })).Quota?.Value;
  }
  if (value === undefined) throw new Error(`Service Quotas gave no value for ${quota.quotaCode}`);
  return value;
}

/** The instance families offered in the region (`g5` of `g5.xlarge`), every page. */
async function offeredFamilies(abortSignal: AbortSignal): Promise<string[]> {
  const families = new Set<string>();
  let NextToken: string | undefined;
  do {
    const page = await ec2Client().send(
      // No instance-type filter: AWS's wildcards there are not the emulator's, and two pages hold every type.
      new DescribeInstanceTypeOfferingsCommand({ LocationType: 'region', MaxResults: 1000, NextToken }),
      { abortSignal },
    );
    for (const offering of page.InstanceTypeOfferings ?? []) {
      if (offering.InstanceType) families.add(offering.InstanceType.split('.')[0]!);
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return [...families];
}

async function sharedSubnets(abortSignal: AbortSignal): Promise<SubnetFact[]> {
  const { Subnets = [] } = await ec2Client().send(new DescribeSubnetsCommand({ SubnetIds: settings.subnetIds() }), { abortSignal });
  return Subnets.map((subnet) => ({ id: subnet.SubnetId!, mapsPublicIp: subnet.MapPublicIpOnLaunch === true }));
}

/** Counts a paginated Batch listing, stopping once the limit is reached (more pages change nothing). */
async function countUpToLimit(list: (nextToken: string | undefined) => Promise<{ count: number; nextToken?: string }>): Promise<number> {
  let count = 0;
  let nextToken: string | undefined;
  do {
    const page = await list(nextToken);
    count += page.count;
    nextToken = page.nextToken;
  } while (nextToken && count < BATCH_REGION_LIMIT);
  return count;
}

async function batchCounts(abortSignal: AbortSignal): Promise<{ computeEnvironments: number; jobQueues: number }> {
  const [computeEnvironments, jobQueues] = await Promise.all([
    countUpToLimit(async (nextToken) => {
      const page = await batchClient().send(new DescribeComputeEnvironmentsCommand({ maxResults: 100, nextToken }), { abortSignal });
      return { count: page.computeEnvironments?.length ?? 0, nextToken: page.nextToken };
    }),
    countUpToLimit(async (nextToken) => {
      const page = await batchClient().send(new DescribeJobQueuesCommand({ maxResults: 100, nextToken }), { abortSignal });
      return { count: page.jobQueues?.length ?? 0, nextToken: page.nextToken };
    }),
  ]);
  return { computeEnvironments, jobQueues };
}

/** Reads every fact a create of `spec` needs, in parallel, within PREFLIGHT_TIMEOUT_MS. */
export async function readFacts(spec: Pick<Spec, 'maxVcpus' | 'gpu'>): Promise<PreflightFacts> {
  const abortSignal = AbortSignal.timeout(PREFLIGHT_TIMEOUT_MS);
  const none = Promise.resolve(undefined);
  const [standardSpotVcpus, gpuSpotVcpus, offered, subnets, batch] = await Promise.all([
    reading('standard Spot quota', abortSignal, () => spotQuotaVcpus(SPOT_QUOTAS.standard, abortSignal)),
    spec.gpu ? reading('GPU Spot quota', abortSignal, () => spotQuotaVcpus(SPOT_QUOTAS.gpu, abortSignal)) : none,
    spec.gpu ? reading('GPU instance families offered', abortSignal, () => offeredFamilies(abortSignal)) : none,
    // With network isolation, each environment makes public subnets of its own: the shared ones do not matter.
    settings.networkIsolation() ? none : reading('shared subnets', abortSignal, () => sharedSubnets(abortSignal)),
    reading('Batch objects in the region', abortSignal, () => batchCounts(abortSignal)),
  ]);
  return {
    region: settings.region(),
    spec: { maxVcpus: spec.maxVcpus, gpu: spec.gpu },
    standardSpotVcpus,
    ...(gpuSpotVcpus ? { gpuSpotVcpus } : {}),
    ...(offered ? { gpuFamilies: { configured: settings.gpuInstanceFamilies(), offered } } : {}),
    ...(subnets ? { sharedSubnets: subnets } : {}),
    batch,
  };
}

/**
 * Preflight of a create: throws the refusal (nothing may be recorded after it), or answers the warnings
 * and, with `gpu`, the GPU families to record.
 */
export async function preflight(spec: Pick<Spec, 'maxVcpus' | 'gpu'>): Promise<Omit<PreflightVerdict, 'refusal'>> {
  const startedAt = Date.now();
  const { refusal, ...verdict } = judge(await readFacts(spec));
  logger.info('preflight done', { ms: Date.now() - startedAt, refused: refusal?.name, warnings: verdict.warnings.length });
  if (refusal) throw refusal;
  return verdict;
}
