/**
 * The deploy-time settings of the bootstrap stack: CDK context values (cdk.json, or `-c key=value` on the
 * command line), read and checked once. A wrong value stops the synth with a sentence that says which key
 * to fix, before anything reaches CloudFormation. The ranges match what the functions accept at run time
 * (lambdas/core/settings.ts), so a deployed function can never refuse its own configuration.
 */
import type { Node } from 'constructs';
import { AdminArn, IDENTITY_CENTER_ROLE_PREFIX, parsePrincipal } from '../lambdas/core/access';
import { S3_RESERVED_BUCKET_PREFIXES } from '../lambdas/core/naming';
import { blockCount } from '../lambdas/core/network';
import { TRUST_POLICY_MAX_LENGTH, accessRoleTrustPolicy } from '../lambdas/core/policies';
import { CONTAINER_REGISTRY_PATTERN, GPU_INSTANCE_FAMILY_PATTERN, IDLE_EXPIRY_MAX_DAYS, IDLE_EXPIRY_MAX_GRACE_DAYS, SETTING_DEFAULTS, SPOT_ALLOCATION_STRATEGIES, type SpotAllocationStrategy } from '../lambdas/core/settings';

export interface MfenvConfig {
  /** Name of the CloudFormation stack; also part of every fixed resource name and of the bucket-name hash. */
  stackName: string;
  /** Prefix of every per-environment name and of the IAM path `/<prefix>/`. */
  prefix: string;
  maxVcpusCeiling: number;
  maxEnvironments: number;
  maxEnvironmentsPerOwner: number;
  spotAllocationStrategy: SpotAllocationStrategy;
  /** Principal ARNs who see and manage every environment. */
  admins: string[];
  /** When set, callers from this AWS Organization are admitted too (aws:PrincipalOrgID). */
  organizationId?: string;
  /** When set, only callers whose principal ARN (aws:PrincipalArn: a role session's is its role's) matches one of these patterns. */
  callerPrincipalArns: string[];
  /** When set (`key=value`), only callers whose principal carries this tag. */
  callerPrincipalTag?: { key: string; value: string };
  /** When set, the stack uses this existing VPC (and its public subnets) instead of creating one. */
  vpcId?: string;
  /** When set, the new VPC gets one public subnet in each of these zones; otherwise the stack's zones. */
  availabilityZones: string[];
  /** Service role of every compute environment; when unset, none is named and Batch uses (or creates) its service-linked role. */
  batchServiceRoleArn?: string;
  /** Days a DELETED record stays readable before DynamoDB's TTL removes it. */
  deletedRecordRetentionDays: number;
  /** Each environment in subnets of its own, its bucket reachable by its roles only from them (default on). */
  networkIsolation: boolean;
  /** The IPv4 range environment subnets are carved from (a /23 per environment). */
  environmentSubnetRange: string;
  /** Registry of Metaflow's Batch task images (the payload's METAFLOW_BATCH_CONTAINER_REGISTRY). */
  batchContainerRegistry: string;
  /** EC2 instance families a GPU environment adds to `optimal`; preflight keeps those the region offers. */
  gpuInstanceFamilies: string[];
  /** Idle expiry: days without a job before a READY environment is announced, then torn down; 0 (default) = off, no checker at all. */
  idleExpiryDays: number;
  /** Idle expiry: days between the announcement and the teardown. */
  idleExpiryGraceDays: number;
  /** CloudWatch alarms on failed workflow executions and API 5xx (infra/alarms.ts); off by default, as alarms bill by the month. */
  alarms: boolean;
  /** SNS topic the alarms notify (only with `alarms`). */
  alarmTopicArn?: string;
}

/** Context keys, so README, cdk.json and this file agree on the spelling. */
export const CONTEXT = {
  stackName: 'mfenv:stackName',
  prefix: 'mfenv:prefix',
  maxVcpusCeiling: 'mfenv:maxVcpusCeiling',
  maxEnvironments: 'mfenv:maxEnvironments',
  maxEnvironmentsPerOwner: 'mfenv:maxEnvironmentsPerOwner',
  spotAllocationStrategy: 'mfenv:spotAllocationStrategy',
  admins: 'mfenv:admins',
  organizationId: 'mfenv:organizationId',
  callerPrincipalArns: 'mfenv:callerPrincipalArns',
  callerPrincipalTag: 'mfenv:callerPrincipalTag',
  vpcId: 'mfenv:vpcId',
  availabilityZones: 'mfenv:availabilityZones',
  batchServiceRoleArn: 'mfenv:batchServiceRoleArn',
  deletedRecordRetentionDays: 'mfenv:deletedRecordRetentionDays',
  networkIsolation: 'mfenv:networkIsolation',
  environmentSubnetRange: 'mfenv:environmentSubnetRange',
  batchContainerRegistry: 'mfenv:batchContainerRegistry',
  gpuInstanceFamilies: 'mfenv:gpuInstanceFamilies',
  idleExpiryDays: 'mfenv:idleExpiryDays',
  idleExpiryGraceDays: 'mfenv:idleExpiryGraceDays',
  alarms: 'mfenv:alarms',
  alarmTopicArn: 'mfenv:alarmTopicArn',
} as const satisfies Record<keyof MfenvConfig, string>;

/**
 * Address space of the shared VPC, the one the stack creates and the one local mode creates in the
 * emulator: a /20 per zone leaves room for thousands of Batch instances.
 */
export const VPC_CIDR = '10.20.0.0/16';

/**
 * The range each environment's own subnets are carved from when the stack creates the VPC: the upper half
 * of VPC_CIDR, clear of the shared /20 subnets at its start: 64 blocks of /23, one per environment.
 */
export const DEFAULT_ENVIRONMENT_SUBNET_RANGE = `${VPC_CIDR.split('.').slice(0, 2).join('.')}.128.0/17`;

/** The functions' own defaults (lambdas/core/settings.ts), so a setting left out means the same everywhere. */
export const DEFAULT_CONFIG: MfenvConfig = {
  stackName: SETTING_DEFAULTS.stackName,
  prefix: SETTING_DEFAULTS.prefix,
  maxVcpusCeiling: Number(SETTING_DEFAULTS.maxVcpusCeiling),
  maxEnvironments: Number(SETTING_DEFAULTS.maxEnvironments),
  maxEnvironmentsPerOwner: Number(SETTING_DEFAULTS.maxEnvironmentsPerOwner),
  spotAllocationStrategy: SETTING_DEFAULTS.spotAllocationStrategy,
  admins: [],
  callerPrincipalArns: [],
  availabilityZones: [],
  deletedRecordRetentionDays: Number(SETTING_DEFAULTS.deletedRecordRetentionDays),
  networkIsolation: SETTING_DEFAULTS.networkIsolation === 'true',
  environmentSubnetRange: DEFAULT_ENVIRONMENT_SUBNET_RANGE,
  batchContainerRegistry: SETTING_DEFAULTS.batchContainerRegistry,
  gpuInstanceFamilies: SETTING_DEFAULTS.gpuInstanceFamilies.split(','),
  idleExpiryDays: Number(SETTING_DEFAULTS.idleExpiryDays),
  idleExpiryGraceDays: Number(SETTING_DEFAULTS.idleExpiryGraceDays),
  alarms: false,
};

/** A deploy-time setting is wrong. The message names the context key and what it accepts. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * No hyphen in the prefix: per-environment names are `<prefix>-<name>`, and the provisioning roles are
 * granted `<prefix>-*`. With a hyphen, prefix `mf` would also match every name of a deployment with prefix
 * `mf-team`. Short enough that the longest bucket and role names still fit AWS's limits.
 */
const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,15}$/;

/**
 * The S3-reserved bucket-name prefix that buckets `<prefix>-<name>-<hash>` of this prefix could start with, if
 * any (`sthree` makes `sthree-…`, `amzn` makes `amzn-s3-demo-…` with the environment `s3-demo-x`). Refused
 * whatever the environment names: `xn` is refused too, though no name (they start with a letter) makes
 * `xn--`, so the rule does not hang on the environment-name pattern. Reserved suffixes cannot occur: every
 * bucket ends with `-` and 8 hex characters, and each reserved suffix puts a hyphen, a dot or a letter past
 * `f` where those hex characters are.
 */
export function reservedBucketPrefixFor(prefix: string): string | undefined {
  const start = `${prefix}-`;
  return S3_RESERVED_BUCKET_PREFIXES.find((reserved) => start.startsWith(reserved) || reserved.startsWith(start));
}

function bucketPrefix(read: ContextReader): string {
  const prefix =
    text(read, 'prefix', PREFIX_PATTERN, '2 to 16 lower-case letters and digits, starting with a letter (no hyphen)') ??
    DEFAULT_CONFIG.prefix;
  const reserved = reservedBucketPrefixFor(prefix);
  if (reserved !== undefined) {
    throw new ConfigError(
      `Context ${CONTEXT.prefix} is ${JSON.stringify(prefix)}; bucket names <prefix>-<environment>-<hash> could then start with ` +
        `"${reserved}", a start of bucket names reserved by S3: choose another prefix.`,
    );
  }
  return prefix;
}

/** CloudFormation's stack-name rule, kept short so `<stack>-provision` and log group names stay readable. */
const STACK_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9-]{0,39}$/;
const ORGANIZATION_ID_PATTERN = /^o-[a-z0-9]{10,32}$/;
const VPC_ID_PATTERN = /^vpc-[0-9a-f]{8,17}$/;
const CIDR_PATTERN = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;
const AVAILABILITY_ZONE_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/;
const SNS_TOPIC_ARN_PATTERN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/;
const ROLE_ARN_PATTERN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
/** An IAM user or role ARN pattern as ArnLike reads it: `*` and `?` anywhere in the name or path. */
const PRINCIPAL_ARN_PATTERN = /^arn:(aws[a-z-]*|\*):iam::(\d{12}|\*):(user|role|root|\*)([\w+=,.@/*?-]*)$/;
/** `key=value`: an IAM tag key (no `=` in it here) and value. */
const PRINCIPAL_TAG_PATTERN = /^([\w .:/+@-]{1,128})=([\w .:/=+@-]{0,256})$/;

/** Context lookups answer strings from the command line and JSON values from cdk.json: accept both. */
type ContextReader = (key: string) => unknown;

/** What a value must match: a pattern, or a schema shared with the functions (so both accept the same). */
type Rule = RegExp | { safeParse(value: unknown): { success: boolean } };

const matches = (rule: Rule, value: string) => (rule instanceof RegExp ? rule.test(value) : rule.safeParse(value).success);

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

function text(read: ContextReader, key: keyof MfenvConfig, pattern: RegExp, accepts: string): string | undefined {
  const value = read(CONTEXT[key]);
  if (isUnset(value)) return undefined;
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new ConfigError(`Context ${CONTEXT[key]} is ${JSON.stringify(value)}; it must be ${accepts}.`);
  }
  return value;
}

function flag(read: ContextReader, key: keyof MfenvConfig, fallback: boolean): boolean {
  const value = read(CONTEXT[key]);
  if (isUnset(value)) return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new ConfigError(`Context ${CONTEXT[key]} is ${JSON.stringify(value)}; it must be true or false.`);
}

function integer(read: ContextReader, key: keyof MfenvConfig, min: number, max: number, fallback: number): number {
  const value = read(CONTEXT[key]);
  if (isUnset(value)) return fallback;
  const number = typeof value === 'string' ? Number(value.trim()) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw new ConfigError(`Context ${CONTEXT[key]} is ${JSON.stringify(value)}; it must be a whole number from ${min} to ${max}.`);
  }
  return number;
}

/** A list: a JSON array (cdk.json, or `-c key='["a","b"]'`) or a comma-separated string (`-c key=a,b`). */
function list(read: ContextReader, key: keyof MfenvConfig, rule: Rule, accepts: string): string[] {
  const value = read(CONTEXT[key]);
  if (isUnset(value)) return [];
  let items: unknown = value;
  if (typeof value === 'string') {
    const trimmed = value.trim();
    if (trimmed.startsWith('[')) {
      try {
        items = JSON.parse(trimmed);
      } catch {
        throw new ConfigError(`Context ${CONTEXT[key]} starts like a JSON list but is not valid JSON; write '["${accepts}", ...]' or a comma-separated list.`);
      }
    } else {
      items = trimmed.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
    }
  }
  if (!Array.isArray(items)) {
    throw new ConfigError(`Context ${CONTEXT[key]} must be a list of ${accepts}s (a JSON array or a comma-separated string).`);
  }
  for (const item of items) {
    if (typeof item !== 'string' || !matches(rule, item)) {
      throw new ConfigError(`Context ${CONTEXT[key]} holds ${JSON.stringify(item)}, which is not ${accepts}.`);
    }
  }
  return [...new Set(items as string[])];
}

/**
 * The longest trust policy an access role can get with these admins (lambdas/core/policies.ts), in the
 * characters IAM counts (no whitespace): the owner with the longest conditions is an IAM Identity Center
 * session with the longest permission set and session names IAM allows. The owners are in `aws-us-gov`, the
 * longest partition name, so the bound holds whichever partition the stack is deployed in (the conditions
 * name the owner's own partition).
 */
export function longestAccessRoleTrust(admins: readonly string[]): number {
  const account = '123456789012';
  const owners = [
    { owner: `arn:aws-us-gov:sts::${account}:assumed-role/AWSReservedSSO_${'p'.repeat(32)}_0123456789abcdef/${'s'.repeat(64)}` },
    { owner: `arn:aws-us-gov:iam::${account}:role/${'r'.repeat(64)}`, ownerUniqueId: `AROA${'X'.repeat(17)}` },
    { owner: `arn:aws-us-gov:iam::${account}:user/${'u'.repeat(64)}`, ownerUniqueId: `AIDA${'X'.repeat(17)}` },
  ];
  return Math.max(...owners.map((owner) => JSON.stringify(accessRoleTrustPolicy({ ...owner, admins })).length));
}

function principalTag(read: ContextReader): MfenvConfig['callerPrincipalTag'] {
  const value = read(CONTEXT.callerPrincipalTag);
  if (isUnset(value)) return undefined;
  const match = typeof value === 'string' ? PRINCIPAL_TAG_PATTERN.exec(value.trim()) : null;
  if (!match) {
    throw new ConfigError(
      `Context ${CONTEXT.callerPrincipalTag} is ${JSON.stringify(value)}; it must be key=value, an IAM principal tag like team=data-science.`,
    );
  }
  return { key: match[1]!.trim(), value: match[2]! };
}

/** ArnLike: `*` matches any run of characters, `?` any one, within the ARN's last part (and whole parts elsewhere). */
export function arnLike(pattern: string, arn: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return regex.test(arn);
}

/** The aws:PrincipalArn an admin entry's requests carry (a role session's is its role's; the path is unknown, so none). */
function adminPrincipalArn(admin: string): string {
  const principal = parsePrincipal(admin);
  if (principal?.kind === 'role-session') {
    const path = principal.name.startsWith(IDENTITY_CENTER_ROLE_PREFIX) ? 'aws-reserved/sso.amazonaws.com/' : '';
    return `arn:${principal.partition}:iam::${principal.accountId}:role/${path}${principal.name}`;
  }
  return principal?.id ?? admin;
}

/** The GPU families: a list of family names (unset: the functions' default); an empty list is refused, as the functions refuse it. */
function gpuInstanceFamilies(read: ContextReader): string[] {
  const families = list(read, 'gpuInstanceFamilies', GPU_INSTANCE_FAMILY_PATTERN, 'an EC2 instance family like g5 (no size)');
  if (families.length === 0 && !isUnset(read(CONTEXT.gpuInstanceFamilies))) {
    throw new ConfigError(`Context ${CONTEXT.gpuInstanceFamilies} is empty; list at least one EC2 instance family like g5, or leave it out.`);
  }
  return families.length > 0 ? families : DEFAULT_CONFIG.gpuInstanceFamilies;
}

/** Reads and checks every setting. `node` is the app's (or a test's) construct node. */
export function readConfig(node: Pick<Node, 'tryGetContext'>): MfenvConfig {
  const read: ContextReader = (key) => node.tryGetContext(key);

  const spotAllocationStrategy = read(CONTEXT.spotAllocationStrategy) ?? DEFAULT_CONFIG.spotAllocationStrategy;
  if (!(SPOT_ALLOCATION_STRATEGIES as readonly unknown[]).includes(spotAllocationStrategy)) {
    throw new ConfigError(
      `Context ${CONTEXT.spotAllocationStrategy} is ${JSON.stringify(spotAllocationStrategy)}; it must be one of ${SPOT_ALLOCATION_STRATEGIES.join(', ')}.`,
    );
  }

  const config: MfenvConfig = {
    stackName:
      text(read, 'stackName', STACK_NAME_PATTERN, 'a letter followed by up to 39 letters, digits or hyphens') ??
      DEFAULT_CONFIG.stackName,
    prefix: bucketPrefix(read),
    maxVcpusCeiling: integer(read, 'maxVcpusCeiling', 1, 10_000, DEFAULT_CONFIG.maxVcpusCeiling),
    // AWS Batch allows 50 compute environments and 50 job queues per account and region.
    maxEnvironments: integer(read, 'maxEnvironments', 1, 50, DEFAULT_CONFIG.maxEnvironments),
    maxEnvironmentsPerOwner: integer(read, 'maxEnvironmentsPerOwner', 1, 50, DEFAULT_CONFIG.maxEnvironmentsPerOwner),
    spotAllocationStrategy: spotAllocationStrategy as SpotAllocationStrategy,
    admins: list(
      read,
      'admins',
      AdminArn,
      'an IAM user or role ARN (a role session only for an IAM Identity Center role, AWSReservedSSO_*: for any other role, name the role)',
    ),
    organizationId: text(read, 'organizationId', ORGANIZATION_ID_PATTERN, 'an AWS Organization id like o-abcd123456'),
    callerPrincipalArns: list(
      read,
      'callerPrincipalArns',
      PRINCIPAL_ARN_PATTERN,
      'an IAM user or role ARN pattern like arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_DataScience_*',
    ),
    callerPrincipalTag: principalTag(read),
    vpcId: text(read, 'vpcId', VPC_ID_PATTERN, 'a VPC id like vpc-0123456789abcdef0'),
    availabilityZones: list(read, 'availabilityZones', AVAILABILITY_ZONE_PATTERN, 'an availability zone name like us-east-1a'),
    batchServiceRoleArn: text(read, 'batchServiceRoleArn', ROLE_ARN_PATTERN, 'an IAM role ARN'),
    deletedRecordRetentionDays: integer(read, 'deletedRecordRetentionDays', 1, 3650, DEFAULT_CONFIG.deletedRecordRetentionDays),
    networkIsolation: flag(read, 'networkIsolation', DEFAULT_CONFIG.networkIsolation),
    environmentSubnetRange:
      text(read, 'environmentSubnetRange', CIDR_PATTERN, 'an IPv4 range like 10.20.128.0/17 (a /23 per environment)') ??
      DEFAULT_CONFIG.environmentSubnetRange,
    batchContainerRegistry:
      text(read, 'batchContainerRegistry', CONTAINER_REGISTRY_PATTERN, 'a registry host and path without a scheme, like public.ecr.aws/docker/library') ??
      DEFAULT_CONFIG.batchContainerRegistry,
    gpuInstanceFamilies: gpuInstanceFamilies(read),
    idleExpiryDays: integer(read, 'idleExpiryDays', 0, IDLE_EXPIRY_MAX_DAYS, DEFAULT_CONFIG.idleExpiryDays),
    idleExpiryGraceDays: integer(read, 'idleExpiryGraceDays', 1, IDLE_EXPIRY_MAX_GRACE_DAYS, DEFAULT_CONFIG.idleExpiryGraceDays),
    alarms: flag(read, 'alarms', DEFAULT_CONFIG.alarms),
    alarmTopicArn: text(read, 'alarmTopicArn', SNS_TOPIC_ARN_PATTERN, 'an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:mfenv-alarms'),
  };
  if (config.alarmTopicArn && !config.alarms) {
    throw new ConfigError(`Context ${CONTEXT.alarmTopicArn} is set but ${CONTEXT.alarms} is not true: there would be no alarm to notify it. Set ${CONTEXT.alarms}=true, or leave the topic out.`);
  }

  const trustLength = longestAccessRoleTrust(config.admins);
  if (trustLength > TRUST_POLICY_MAX_LENGTH) {
    throw new ConfigError(
      `Context ${CONTEXT.admins} lists so many principals that an access role's trust policy could reach ${trustLength} characters, ` +
        `over IAM's limit of ${TRUST_POLICY_MAX_LENGTH}: list fewer admins (one role that the admins assume covers them all).`,
    );
  }
  if (config.maxEnvironmentsPerOwner > config.maxEnvironments) {
    throw new ConfigError(
      `Context ${CONTEXT.maxEnvironmentsPerOwner} (${config.maxEnvironmentsPerOwner}) is larger than ${CONTEXT.maxEnvironments} (${config.maxEnvironments}); lower it or raise the account-wide limit.`,
    );
  }
  const lockedOut = config.admins.filter(
    (admin) => config.callerPrincipalArns.length > 0 && !config.callerPrincipalArns.some((pattern) => arnLike(pattern, adminPrincipalArn(admin))),
  );
  if (lockedOut.length > 0) {
    throw new ConfigError(
      `Context ${CONTEXT.callerPrincipalArns} admits none of these admins: ${lockedOut.join(', ')}. Add a pattern that matches them, ` +
        'or they cannot call the API.',
    );
  }
  if (config.vpcId && config.availabilityZones.length > 0) {
    throw new ConfigError(
      `Context ${CONTEXT.availabilityZones} applies only to a VPC the stack creates; with ${CONTEXT.vpcId} the existing VPC's public subnets are used. Remove one of the two.`,
    );
  }
  if (config.availabilityZones.length === 1) {
    throw new ConfigError(
      `Context ${CONTEXT.availabilityZones} lists one zone; list at least two, so Spot capacity can come from more than one zone.`,
    );
  }
  if (config.networkIsolation) {
    if (config.vpcId && isUnset(read(CONTEXT.environmentSubnetRange))) {
      throw new ConfigError(
        `Context ${CONTEXT.environmentSubnetRange} is needed with ${CONTEXT.vpcId}: name a free range of that VPC for the environments' own subnets ` +
          `(a /23 per environment), or turn ${CONTEXT.networkIsolation} off.`,
      );
    }
    let blocks: number;
    try {
      blocks = blockCount(config.environmentSubnetRange);
    } catch (error) {
      throw new ConfigError(`Context ${CONTEXT.environmentSubnetRange}: ${(error as Error).message}`);
    }
    if (blocks < config.maxEnvironments) {
      throw new ConfigError(
        `Context ${CONTEXT.environmentSubnetRange} (${config.environmentSubnetRange}) holds ${blocks} blocks of /23, fewer than ${CONTEXT.maxEnvironments} (${config.maxEnvironments}): give a larger range or lower the limit.`,
      );
    }
  }
  return config;
}
