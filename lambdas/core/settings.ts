/**
 * Every setting a Lambda (or local mode) reads, in one table: the environment variable that carries it,
 * and how to parse it. CDK sets these variables on each function (see infra/functions.ts); local mode
 * sets them on its own process (see infra/local/runtime.ts). Nothing else in lambdas/ reads process.env,
 * so "what can be configured" has one answer, and AWS and local mode differ only here.
 */
import { AdminArn } from './access';
import { ConfigurationError } from './errors';
import { DEFAULT_PARTITION, type Deployment, PARTITION_PATTERN } from './naming';

export const SETTING = {
  /** DynamoDB table holding the environment registry and idempotency records. */
  tableName: 'MFENV_TABLE_NAME',
  /** Prefix of every per-environment resource name and the IAM path (`/<prefix>/`). */
  prefix: 'MFENV_PREFIX',
  /** Name of the bootstrap stack: part of the bucket-name hash, so two stacks never collide. */
  stackName: 'MFENV_STACK_NAME',
  /** Account that owns the per-environment resources (ARNs are built from it). */
  accountId: 'MFENV_ACCOUNT_ID',
  /** The region: set by the Lambda runtime on AWS, by local mode on this machine. */
  region: 'AWS_REGION',
  /**
   * The partition of the account and region (aws, aws-cn, aws-us-gov): the first field of every ARN the
   * functions build. The stack sets it from its own (`AWS::Partition`); local mode to `aws`, the emulator's.
   */
  partition: 'MFENV_PARTITION',
  /** Comma-separated ids of the shared public subnets (one per availability zone). */
  subnetIds: 'MFENV_SUBNET_IDS',
  /**
   * Whether each environment gets subnets of its own and a bucket policy that admits its job and instance
   * roles only from them, through the S3 gateway endpoint (network isolation, on by default).
   */
  networkIsolation: 'MFENV_NETWORK_ISOLATION',
  /** The shared VPC. */
  vpcId: 'MFENV_VPC_ID',
  /** The IPv4 range environment subnets are carved from (a /23 block per environment). */
  environmentSubnetRange: 'MFENV_ENVIRONMENT_SUBNET_RANGE',
  /** The route table environment subnets join: the internet gateway and the S3 gateway endpoint. */
  routeTableId: 'MFENV_ROUTE_TABLE_ID',
  /** The S3 gateway endpoint of the shared VPC (vpce-...). */
  s3EndpointId: 'MFENV_S3_ENDPOINT_ID',
  /** Security group of the Batch instances: no ingress, open egress. */
  securityGroupId: 'MFENV_SECURITY_GROUP_ID',
  /** Launch template of the Batch instances (IMDSv2 required). Optional: unset, Batch's default launch. */
  launchTemplateId: 'MFENV_LAUNCH_TEMPLATE_ID',
  /**
   * Service role of every compute environment. Optional: unset, the steps name none and Batch uses its
   * service-linked role (AWSServiceRoleForBatch), creating it on first use. The emulator needs one named.
   */
  batchServiceRoleArn: 'MFENV_BATCH_SERVICE_ROLE_ARN',
  /** Permissions boundary that every role the workflows create must carry. */
  permissionsBoundaryArn: 'MFENV_PERMISSIONS_BOUNDARY_ARN',
  /** SPOT_CAPACITY_OPTIMIZED (default, as the origin) or SPOT_PRICE_CAPACITY_OPTIMIZED. */
  spotAllocationStrategy: 'MFENV_SPOT_ALLOCATION_STRATEGY',
  /**
   * Comma-separated EC2 instance families a compute environment adds when its spec asks for GPUs. Preflight
   * (lambdas/core/preflight.ts) keeps only those the region offers: Batch refuses a type it does not know.
   */
  gpuInstanceFamilies: 'MFENV_GPU_INSTANCE_FAMILIES',
  /** Largest maxVcpus a teammate may ask for. */
  maxVcpusCeiling: 'MFENV_MAX_VCPUS_CEILING',
  /** Environments allowed at once in the account and region (Batch allows 50 CEs and 50 queues). */
  maxEnvironments: 'MFENV_MAX_ENVIRONMENTS',
  /** Environments one teammate may hold at once. */
  maxEnvironmentsPerOwner: 'MFENV_MAX_ENVIRONMENTS_PER_OWNER',
  /** Comma-separated admin principal ARNs (users, roles, the root, IAM Identity Center sessions): they see and manage every environment. */
  admins: 'MFENV_ADMINS',
  /** State machine that provisions an environment. */
  provisionStateMachineArn: 'MFENV_PROVISION_STATE_MACHINE_ARN',
  /** State machine that tears an environment down (also used to roll back a failed create). */
  teardownStateMachineArn: 'MFENV_TEARDOWN_STATE_MACHINE_ARN',
  /** State machine that resizes a READY environment (PATCH /environments/{name}). */
  updateStateMachineArn: 'MFENV_UPDATE_STATE_MACHINE_ARN',
  /** Whether bucket policies carry the TLS-only statement (the emulator cannot evaluate it). */
  bucketTlsOnly: 'MFENV_BUCKET_TLS_ONLY',
  /**
   * Registry the payload points Metaflow's Batch task images at (METAFLOW_BATCH_CONTAINER_REGISTRY). Metaflow's
   * default image is `python:<version>` from Docker Hub, whose anonymous pull limits a Spot fleet soon hits;
   * ECR Public serves the same official images (public.ecr.aws/docker/library).
   */
  batchContainerRegistry: 'MFENV_BATCH_CONTAINER_REGISTRY',
  /** S3 endpoint to put in the Metaflow payload (only against an S3-compatible emulator). */
  metaflowS3EndpointUrl: 'MFENV_METAFLOW_S3_ENDPOINT_URL',
  /** Path-style S3 addressing, which the emulator needs. */
  s3ForcePathStyle: 'MFENV_S3_FORCE_PATH_STYLE',
  /** Days a DELETED record stays readable before DynamoDB's TTL removes it. */
  deletedRecordRetentionDays: 'MFENV_DELETED_RECORD_RETENTION_DAYS',
  /** Idle expiry (lambdas/core/idle-expiry.ts): days without a job after which a READY environment is announced; 0 = off. */
  idleExpiryDays: 'MFENV_IDLE_EXPIRY_DAYS',
  /** Idle expiry: days between the announcement and the teardown, for a job to run or an admin to exempt it. */
  idleExpiryGraceDays: 'MFENV_IDLE_EXPIRY_GRACE_DAYS',
} as const;

export type SettingName = keyof typeof SETTING;

/**
 * A registry host (optionally with a port) and path, no scheme and no trailing slash: what Metaflow puts
 * before `/<image>` (public.ecr.aws/docker/library, docker.io/library, an ECR pull-through cache's URI).
 */
export const CONTAINER_REGISTRY_PATTERN = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$/;

export const SPOT_ALLOCATION_STRATEGIES = ['SPOT_CAPACITY_OPTIMIZED', 'SPOT_PRICE_CAPACITY_OPTIMIZED'] as const;
export type SpotAllocationStrategy = (typeof SPOT_ALLOCATION_STRATEGIES)[number];

/** An EC2 instance family as Batch's instanceTypes takes it: `g5`, `g4dn`, `p6-b200` (no size). */
export const GPU_INSTANCE_FAMILY_PATTERN = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

/** Idle expiry's ranges, shared with the deploy settings (infra/config.ts): a year idle at most, a grace of 1 to 90 days. */
export const IDLE_EXPIRY_MAX_DAYS = 365;
export const IDLE_EXPIRY_MAX_GRACE_DAYS = 90;

/**
 * The value of each setting that has one when its variable is unset ('' = optional, empty). Written once:
 * the CDK context defaults (infra/config.ts) and local mode (infra/local/bootstrap.ts) read them from here.
 */
export const SETTING_DEFAULTS = {
  prefix: 'mfenv',
  partition: DEFAULT_PARTITION,
  stackName: 'mfenv',
  batchServiceRoleArn: '',
  launchTemplateId: '',
  spotAllocationStrategy: 'SPOT_CAPACITY_OPTIMIZED',
  // Current GPU families (AWS Batch's `optimal` has none).
  gpuInstanceFamilies: 'g4dn,g5,g6',
  maxVcpusCeiling: '64',
  maxEnvironments: '40',
  maxEnvironmentsPerOwner: '2',
  admins: '',
  bucketTlsOnly: 'true',
  metaflowS3EndpointUrl: '',
  batchContainerRegistry: 'public.ecr.aws/docker/library',
  s3ForcePathStyle: 'false',
  deletedRecordRetentionDays: '30',
  // Off unless the platform owner turns it on: tearing down a teammate's environment is their choice to make.
  idleExpiryDays: '0',
  idleExpiryGraceDays: '3',
  networkIsolation: 'true',
} as const satisfies Partial<Record<SettingName, string>> & { spotAllocationStrategy: SpotAllocationStrategy };

const DEFAULTS: Partial<Record<SettingName, string>> = SETTING_DEFAULTS;

function raw(name: SettingName): string {
  const value = process.env[SETTING[name]] ?? DEFAULTS[name];
  if (value === undefined || value === '') {
    if (DEFAULTS[name] === '') return '';
    throw new ConfigurationError(`The setting ${SETTING[name]} is missing from this function's environment.`);
  }
  return value;
}

function integer(name: SettingName, min: number, max: number): number {
  const value = Number(raw(name));
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigurationError(`The setting ${SETTING[name]} must be an integer from ${min} to ${max}.`);
  }
  return value;
}

function list(name: SettingName): string[] {
  return raw(name)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** Typed, validated reads. Read at call time (not at import) so tests and local mode can set them first. */
export const settings = {
  tableName: () => raw('tableName'),
  prefix: () => raw('prefix'),
  stackName: () => raw('stackName'),
  accountId: () => raw('accountId'),
  region: () => raw('region'),
  partition: () => {
    const value = raw('partition');
    if (!PARTITION_PATTERN.test(value)) {
      throw new ConfigurationError(`The setting ${SETTING.partition} must be an AWS partition such as aws, aws-cn or aws-us-gov.`);
    }
    return value;
  },
  subnetIds: () => list('subnetIds'),
  networkIsolation: () => raw('networkIsolation') !== 'false',
  vpcId: () => raw('vpcId'),
  environmentSubnetRange: () => raw('environmentSubnetRange'),
  routeTableId: () => raw('routeTableId'),
  s3EndpointId: () => raw('s3EndpointId'),
  securityGroupId: () => raw('securityGroupId'),
  launchTemplateId: () => raw('launchTemplateId') || undefined,
  batchServiceRoleArn: () => raw('batchServiceRoleArn') || undefined,
  permissionsBoundaryArn: () => raw('permissionsBoundaryArn'),
  spotAllocationStrategy: (): SpotAllocationStrategy => {
    const value = raw('spotAllocationStrategy');
    if (!(SPOT_ALLOCATION_STRATEGIES as readonly string[]).includes(value)) {
      throw new ConfigurationError(
        `The setting ${SETTING.spotAllocationStrategy} must be one of ${SPOT_ALLOCATION_STRATEGIES.join(', ')}.`,
      );
    }
    return value as SpotAllocationStrategy;
  },
  maxVcpusCeiling: () => integer('maxVcpusCeiling', 1, 10_000),
  maxEnvironments: () => integer('maxEnvironments', 1, 50),
  maxEnvironmentsPerOwner: () => integer('maxEnvironmentsPerOwner', 1, 50),
  admins: () => {
    const admins = list('admins');
    const wrong = admins.find((admin) => !AdminArn.safeParse(admin).success);
    if (wrong !== undefined) {
      throw new ConfigurationError(
        `The setting ${SETTING.admins} holds "${wrong}", which is not an admin principal: list IAM user or role ARNs ` +
          '(a role session only for IAM Identity Center roles, AWSReservedSSO_*).',
      );
    }
    return admins;
  },
  provisionStateMachineArn: () => raw('provisionStateMachineArn'),
  teardownStateMachineArn: () => raw('teardownStateMachineArn'),
  updateStateMachineArn: () => raw('updateStateMachineArn'),
  bucketTlsOnly: () => raw('bucketTlsOnly') !== 'false',
  metaflowS3EndpointUrl: () => raw('metaflowS3EndpointUrl') || undefined,
  batchContainerRegistry: () => {
    const value = raw('batchContainerRegistry');
    if (!CONTAINER_REGISTRY_PATTERN.test(value)) {
      throw new ConfigurationError(
        `The setting ${SETTING.batchContainerRegistry} must be a registry host with an optional path, like public.ecr.aws/docker/library.`,
      );
    }
    return value;
  },
  s3ForcePathStyle: () => raw('s3ForcePathStyle') === 'true',
  deletedRecordRetentionDays: () => integer('deletedRecordRetentionDays', 1, 3650),
  idleExpiryDays: () => integer('idleExpiryDays', 0, IDLE_EXPIRY_MAX_DAYS),
  idleExpiryGraceDays: () => integer('idleExpiryGraceDays', 1, IDLE_EXPIRY_MAX_GRACE_DAYS),
  gpuInstanceFamilies: () => {
    const families = list('gpuInstanceFamilies');
    const wrong = families.find((family) => !GPU_INSTANCE_FAMILY_PATTERN.test(family));
    if (wrong !== undefined || families.length === 0) {
      throw new ConfigurationError(
        `The setting ${SETTING.gpuInstanceFamilies} must list EC2 instance families such as g4dn,g5,g6` +
          (wrong === undefined ? '.' : ` ("${wrong}" is not one).`),
      );
    }
    return families;
  },
};

/**
 * Reads each of `names` now, so each is parsed and checked: a missing or malformed one throws the
 * ConfigurationError naming its variable. A Lambda calls it at init with every setting its code reads
 * (lambdas/core/init-check.ts).
 */
export function assertSettings(names: readonly SettingName[]): void {
  for (const name of names) (settings[name] as () => unknown)();
}

/** The deployment that names derive from (see naming.ts). */
export function currentDeployment(): Deployment {
  return {
    prefix: settings.prefix(),
    accountId: settings.accountId(),
    region: settings.region(),
    stackName: settings.stackName(),
    partition: settings.partition(),
  };
}
