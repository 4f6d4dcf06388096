/**
 * Every per-environment name and ARN, derived from the environment name and the deployment (prefix,
 * account, region, stack). Deterministic on purpose: any step can be retried, any leftover found, and the
 * registry never has to remember a name it could compute.
 */
import { createHash } from 'node:crypto';
import type { Resources } from './environment';

export interface Deployment {
  prefix: string;
  accountId: string;
  region: string;
  stackName: string;
  /**
   * The first field of every ARN (aws, aws-cn, aws-us-gov): on Lambda the stack's own, through the
   * `partition` setting. Absent only where nothing but the commercial partition can be meant (the emulator,
   * fixtures), hence the default.
   */
  partition?: string;
}

/** The commercial partition: local mode's, since the emulator knows no other. */
export const DEFAULT_PARTITION = 'aws';

/**
 * What an ARN's partition looks like: `aws`, `aws-cn`, `aws-us-gov`, and the isolated ones (`aws-iso`,
 * `aws-iso-b`…), so a new partition needs no change here.
 */
export const PARTITION_PATTERN = /^aws(-[a-z]+)*$/;

/** Tag keys on every resource an environment owns (cost allocation, orphan search). */
export const TAG = {
  environment: 'mfenv:environment',
  owner: 'mfenv:owner',
  managedBy: 'managed-by',
  /**
   * On roles only: the environment's bucket. The permissions boundary reads it (and mfenv:environment) as
   * `${aws:PrincipalTag/...}`, so each role's ceiling is its own environment's resources, not every mfenv one.
   */
  bucket: 'mfenv:bucket',
} as const;

/**
 * `computeEnvironmentRevision`: which compute environment is the environment's (EnvironmentRecord): absent,
 * the one named after it; n, `<base>_r<n>`, made by the update at generation n to replace it. `_` never
 * appears in an environment name, so `mfenv-alice_r3` cannot be another environment's `mfenv-alice-r3`.
 */
export function namesFor(deployment: Deployment, environmentName: string, computeEnvironmentRevision?: number) {
  const { prefix, accountId, region } = deployment;
  const partition = deployment.partition ?? DEFAULT_PARTITION;
  const base = `${prefix}-${environmentName}`;
  const iamPath = `/${prefix}/`;
  const bucket = `${base}-${deploymentHash(deployment)}`;
  const jobRoleName = `${base}-job`;
  const instanceRoleName = `${base}-instance`;
  const instanceProfileName = `${base}-instance`;
  const accessRoleName = `${base}-access`;
  const computeEnvironmentName = computeEnvironmentRevision === undefined ? base : `${base}_r${computeEnvironmentRevision}`;
  const jobQueueName = base;
  // Scheduled flows (DESIGN §6): Metaflow names each state machine `<prefix>_<flow>` and its EventBridge rule
  // after it (metaflow/plugins/aws/step_functions). Environment names hold no `_`, so `<base>_*` matches this
  // environment's only: `mfenv-alice_*` never matches `mfenv-alice-2_Flow`.
  const sfnStateMachinePrefix = base;
  const sfnNamePattern = `${sfnStateMachinePrefix}_*`;
  const sfnRoleName = `${base}-sfn`;
  const eventsRoleName = `${base}-events`;
  const sfnTableName = `${base}-sfn`;
  return {
    iamPath,
    bucket,
    bucketArn: `arn:${partition}:s3:::${bucket}`,
    jobRoleName,
    jobRoleArn: `arn:${partition}:iam::${accountId}:role${iamPath}${jobRoleName}`,
    instanceRoleName,
    instanceRoleArn: `arn:${partition}:iam::${accountId}:role${iamPath}${instanceRoleName}`,
    instanceProfileName,
    instanceProfileArn: `arn:${partition}:iam::${accountId}:instance-profile${iamPath}${instanceProfileName}`,
    accessRoleName,
    accessRoleArn: `arn:${partition}:iam::${accountId}:role${iamPath}${accessRoleName}`,
    computeEnvironmentName,
    computeEnvironmentArn: `arn:${partition}:batch:${region}:${accountId}:compute-environment/${computeEnvironmentName}`,
    jobQueueName,
    jobQueueArn: `arn:${partition}:batch:${region}:${accountId}:job-queue/${jobQueueName}`,
    /** Job definitions Metaflow registers are named `metaflow_<hash>`. */
    jobDefinitionArnPattern: `arn:${partition}:batch:${region}:${accountId}:job-definition/metaflow_*`,
    /** METAFLOW_SFN_STATE_MACHINE_PREFIX: Metaflow's state machines and rules are `<this>_<flow>`. */
    sfnStateMachinePrefix,
    /** The role Step Functions assumes to run a scheduled flow's Batch jobs (METAFLOW_SFN_IAM_ROLE). */
    sfnRoleName,
    sfnRoleArn: `arn:${partition}:iam::${accountId}:role${iamPath}${sfnRoleName}`,
    /** The role EventBridge assumes to start a scheduled execution (METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE). */
    eventsRoleName,
    eventsRoleArn: `arn:${partition}:iam::${accountId}:role${iamPath}${eventsRoleName}`,
    /** The foreach-join table of scheduled flows (METAFLOW_SFN_DYNAMO_DB_TABLE). */
    sfnTableName,
    sfnTableArn: `arn:${partition}:dynamodb:${region}:${accountId}:table/${sfnTableName}`,
    /** This environment's state machines, their executions and their EventBridge rules. */
    stateMachineArnPattern: `arn:${partition}:states:${region}:${accountId}:stateMachine:${sfnNamePattern}`,
    executionArnPattern: `arn:${partition}:states:${region}:${accountId}:execution:${sfnNamePattern}:*`,
    ruleArnPattern: `arn:${partition}:events:${region}:${accountId}:rule/${sfnNamePattern}`,
  };
}
export type EnvironmentNames = ReturnType<typeof namesFor>;

/** The resources block of the API's environment resource; the scheduling ones only when scheduling is on. */
export function resourcesOf(names: EnvironmentNames, scheduling = false): Resources {
  return {
    bucket: names.bucket,
    jobQueueArn: names.jobQueueArn,
    computeEnvironmentArn: names.computeEnvironmentArn,
    jobRoleArn: names.jobRoleArn,
    instanceProfileArn: names.instanceProfileArn,
    accessRoleArn: names.accessRoleArn,
    ...(scheduling
      ? {
          sfnRoleArn: names.sfnRoleArn,
          eventsRoleArn: names.eventsRoleArn,
          sfnTableName: names.sfnTableName,
          sfnStateMachinePrefix: names.sfnStateMachinePrefix,
        }
      : {}),
  };
}

/**
 * The longest `<state machine prefix>_` that keeps every rule Metaflow makes under the prefix: Metaflow cuts a
 * rule name longer than EventBridge's 64 characters to its first 47 plus a hash (event_bridge_client.py), so
 * `<prefix>-<name>_` must fit in those 47. The default prefix always does (5 + 1 + 32 + 1 = 39).
 */
export const SFN_PREFIX_MAX_LENGTH = 46;

/** Whether an environment's state machines and rules can all carry its prefix (see SFN_PREFIX_MAX_LENGTH). */
export function schedulingPrefixFits(names: Pick<EnvironmentNames, 'sfnStateMachinePrefix'>): boolean {
  return names.sfnStateMachinePrefix.length <= SFN_PREFIX_MAX_LENGTH;
}

/**
 * What S3 reserves at the start and the end of a general purpose bucket name
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html); CreateBucket refuses them.
 * (`aws` is reserved for table buckets only.) A bucket is `<prefix>-<name>-<8 hex>`: the deployment's
 * prefix rule (infra/config.ts) keeps the start clear, the hash the end.
 */
export const S3_RESERVED_BUCKET_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'] as const;
export const S3_RESERVED_BUCKET_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'] as const;

/** The reserved prefix or suffix a bucket name has, if any. */
export function reservedBucketNameForm(bucket: string): string | undefined {
  return (
    S3_RESERVED_BUCKET_PREFIXES.find((reserved) => bucket.startsWith(reserved)) ??
    S3_RESERVED_BUCKET_SUFFIXES.find((reserved) => bucket.endsWith(reserved))
  );
}

/**
 * 8 hex characters of sha256(account, region, stack): bucket names are global, so this keeps two
 * deployments (or two accounts) from fighting over `mfenv-alice`. Longest bucket: 5+1+32+1+8 = 47 ≤ 63.
 */
export function deploymentHash({ accountId, region, stackName }: Deployment): string {
  return createHash('sha256').update(`${accountId}/${region}/${stackName}`).digest('hex').slice(0, 8);
}

/** Tags for every resource of an environment, as a key/value map. */
export function tagsFor(deployment: Deployment, environmentName: string, owner: string): Record<string, string> {
  return {
    [TAG.environment]: environmentName,
    [TAG.owner]: owner,
    [TAG.managedBy]: deployment.stackName,
  };
}

/** Tags of an environment's IAM roles: the common ones plus the bucket the boundary scopes them to. */
export function roleTagListFor(deployment: Deployment, environmentName: string, owner: string) {
  return [...tagListFor(deployment, environmentName, owner), { Key: TAG.bucket, Value: namesFor(deployment, environmentName).bucket }];
}

/** Same tags in the `[{Key, Value}]` shape that IAM and S3 take. */
export function tagListFor(deployment: Deployment, environmentName: string, owner: string) {
  return Object.entries(tagsFor(deployment, environmentName, owner)).map(([Key, Value]) => ({ Key, Value }));
}

/**
 * Step Functions execution names: unique per (environment, generation, kind), so a retried POST or DELETE
 * can never start a second workflow for the same change. ≤ 80 characters, [A-Za-z0-9-_].
 */
export function executionName(kind: 'provision' | 'teardown' | 'rollback' | 'update', environmentName: string, generation: number): string {
  return `${environmentName}-${kind}-${generation}`;
}
