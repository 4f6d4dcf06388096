/**
 * What each step Lambda may do, on which resources. The resource patterns are built by the same naming
 * function the steps use (lambdas/core/naming.ts) with `*` for the environment name, so the grants and the
 * names the steps create cannot drift apart. Grants that come with a setting (table, network, boundary,
 * Batch service role, state machines) live with their bind helper in ./functions.ts.
 */
import { Aws, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { EVENT_SOURCE } from '../lambdas/core/events';
import { namesFor } from '../lambdas/core/naming';
import type { StepFunctionId } from '../lambdas/steps/catalogue';

/** ARN patterns that match every environment's resources of one kind, and nothing else. */
export interface ResourcePatterns {
  bucket: string;
  bucketObjects: string;
  jobRole: string;
  instanceRole: string;
  instanceProfile: string;
  accessRole: string;
  computeEnvironment: string;
  jobQueue: string;
  /** Scheduled flows: the two roles, the foreach table, and what Metaflow names `<prefix>-<name>_*`. */
  sfnRole: string;
  eventsRole: string;
  sfnTable: string;
  stateMachine: string;
  execution: string;
  rule: string;
  /** Metaflow's job definitions, `metaflow_<hash>`. */
  jobDefinition: string;
}

export function resourcePatterns(scope: Construct, prefix: string, stackName: string): ResourcePatterns {
  const stack = Stack.of(scope);
  const names = namesFor({ prefix, stackName, accountId: stack.account, region: stack.region, partition: stack.partition }, '*');
  // Bucket names end in a hash of account, region and stack, unknown until deploy: match on the prefix.
  const bucket = `arn:${stack.partition}:s3:::${prefix}-*`;
  return {
    bucket,
    bucketObjects: `${bucket}/*`,
    jobRole: names.jobRoleArn,
    instanceRole: names.instanceRoleArn,
    instanceProfile: names.instanceProfileArn,
    accessRole: names.accessRoleArn,
    computeEnvironment: names.computeEnvironmentArn,
    jobQueue: names.jobQueueArn,
    sfnRole: names.sfnRoleArn,
    eventsRole: names.eventsRoleArn,
    sfnTable: names.sfnTableArn,
    stateMachine: names.stateMachineArnPattern,
    execution: names.executionArnPattern,
    rule: names.ruleArnPattern,
    jobDefinition: names.jobDefinitionArnPattern,
  };
}

const statement = (props: iam.PolicyStatementProps) => new iam.PolicyStatement(props);

/**
 * Publishing status-change events (lambdas/core/events.ts): PutEvents on the account's default bus only, and
 * only events whose source is mfenv (the events:source condition key PutEvents supports), so a function
 * cannot pass its events off as another service's. For the functions that write statuses: the API and the
 * registry steps.
 */
export function publishStatusEventsStatement(): iam.PolicyStatement {
  return statement({
    sid: 'PublishStatusChangeEvents',
    actions: ['events:PutEvents'],
    resources: [`arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:event-bus/default`],
    conditions: { StringEquals: { 'events:source': EVENT_SOURCE } },
  });
}

/** Grants per step Lambda beyond its bound settings. Keyed by the catalogue, so no step Lambda is missed. */
export const STEP_PERMISSIONS: Record<StepFunctionId, (patterns: ResourcePatterns) => iam.PolicyStatement[]> = {
  // Its table and the teardown state machine come with bindRegistry and bindStateMachine.
  registry: () => [publishStatusEventsStatement()],

  bucket: (p) => [
    statement({
      sid: 'ManageEnvironmentBuckets',
      actions: [
        's3:CreateBucket',
        's3:DeleteBucket',
        's3:PutBucketPublicAccessBlock',
        's3:GetBucketPublicAccessBlock',
        's3:PutEncryptionConfiguration',
        's3:GetEncryptionConfiguration',
        's3:PutBucketOwnershipControls',
        's3:GetBucketOwnershipControls',
        's3:PutBucketPolicy',
        's3:GetBucketPolicy',
        's3:PutBucketTagging',
        's3:GetBucketTagging',
        // CreateBucket carries the tags (so a crash can never leave an untagged bucket); AWS checks this action for that.
        's3:TagResource',
        's3:ListBucket',
        's3:ListBucketVersions',
        's3:ListBucketMultipartUploads',
      ],
      resources: [p.bucket],
      // Only buckets of this account, whatever their name (bucket names are global).
      conditions: { StringEquals: { 's3:ResourceAccount': Aws.ACCOUNT_ID } },
    }),
    statement({
      // Emptying a bucket on `DELETE ?purge=true`; never reading what is in it.
      sid: 'EmptyEnvironmentBuckets',
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
      resources: [p.bucketObjects],
      conditions: { StringEquals: { 's3:ResourceAccount': Aws.ACCOUNT_ID } },
    }),
  ],

  // Creating roles (and what may change their permissions) comes with bindPermissionsBoundary.
  iam: (p) => [
    statement({
      sid: 'InspectAndDeleteEnvironmentRoles',
      actions: [
        'iam:GetRole',
        'iam:TagRole',
        'iam:DeleteRole',
        'iam:GetRolePolicy',
        'iam:ListRolePolicies',
        'iam:DeleteRolePolicy',
        'iam:ListAttachedRolePolicies',
        'iam:DetachRolePolicy',
        'iam:ListInstanceProfilesForRole',
      ],
      resources: [p.jobRole, p.instanceRole, p.accessRole],
    }),
    statement({
      sid: 'ManageEnvironmentInstanceProfiles',
      actions: [
        'iam:CreateInstanceProfile',
        'iam:GetInstanceProfile',
        'iam:TagInstanceProfile',
        'iam:DeleteInstanceProfile',
        'iam:AddRoleToInstanceProfile',
        'iam:RemoveRoleFromInstanceProfile',
      ],
      resources: [p.instanceProfile],
    }),
    statement({
      // scopeInstanceRole reads the ECS cluster Batch made for the compute environment. Describe calls
      // support no resource-level permissions.
      sid: 'ReadComputeEnvironmentCluster',
      actions: ['batch:DescribeComputeEnvironments'],
      resources: ['*'],
    }),
    statement({
      // AWS requires PassRole on the role that AddRoleToInstanceProfile puts in a profile. Only the instance
      // role (which carries the boundary), and only towards EC2, the one service that uses a profile.
      sid: 'PutInstanceRoleInProfile',
      actions: ['iam:PassRole'],
      resources: [p.instanceRole],
      conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    }),
  ],

  // Its grants need the VPC and route table: they come with bindEnvironmentSubnets and bindNetworkBlocks.
  network: () => [],

  batch: (p) => [
    statement({
      sid: 'ManageEnvironmentComputeAndQueues',
      actions: [
        'batch:CreateComputeEnvironment',
        'batch:UpdateComputeEnvironment',
        'batch:DeleteComputeEnvironment',
        'batch:CreateJobQueue',
        'batch:UpdateJobQueue',
        'batch:DeleteJobQueue',
        'batch:TagResource',
      ],
      resources: [p.computeEnvironment, p.jobQueue],
    }),
    statement({
      // Batch Describe calls support no resource-level permissions.
      sid: 'DescribeBatch',
      actions: ['batch:DescribeComputeEnvironments', 'batch:DescribeJobQueues'],
      resources: ['*'],
    }),
    statement({
      // The compute environment names the instance profile; its role goes to EC2 instances.
      sid: 'PassInstanceRoleToEc2',
      actions: ['iam:PassRole'],
      resources: [p.instanceRole],
      conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    }),
  ],

  // Creating the two roles (and what may change their permissions) comes with bindPermissionsBoundary.
  scheduling: (p) => [
    statement({
      sid: 'InspectAndDeleteSchedulingRoles',
      actions: ['iam:GetRole', 'iam:TagRole', 'iam:DeleteRole', 'iam:ListRolePolicies', 'iam:DeleteRolePolicy'],
      resources: [p.sfnRole, p.eventsRole],
    }),
    statement({
      // deregisterJobDefinitions first checks that the job role of our name is ours.
      sid: 'InspectJobRoles',
      actions: ['iam:GetRole'],
      resources: [p.jobRole],
    }),
    statement({
      sid: 'ManageForeachTables',
      actions: [
        'dynamodb:CreateTable',
        'dynamodb:DescribeTable',
        'dynamodb:DeleteTable',
        'dynamodb:DescribeTimeToLive',
        'dynamodb:UpdateTimeToLive',
        'dynamodb:TagResource',
        'dynamodb:ListTagsOfResource',
      ],
      resources: [p.sfnTable],
    }),
    statement({
      // Listing takes no resource-level permission; the step deletes only names under an environment's prefix.
      sid: 'FindStateMachinesAndRules',
      actions: ['states:ListStateMachines', 'events:ListRules'],
      resources: ['*'],
    }),
    statement({
      sid: 'DeleteMetaflowStateMachines',
      actions: ['states:ListExecutions', 'states:DeleteStateMachine'],
      resources: [p.stateMachine],
    }),
    statement({
      sid: 'StopMetaflowExecutions',
      actions: ['states:StopExecution'],
      resources: [p.execution],
    }),
    statement({
      sid: 'DeleteMetaflowRules',
      actions: ['events:ListTargetsByRule', 'events:RemoveTargets', 'events:DeleteRule'],
      resources: [p.rule],
    }),
    statement({
      // DescribeJobDefinitions takes no resource-level permission.
      sid: 'FindJobDefinitions',
      actions: ['batch:DescribeJobDefinitions'],
      resources: ['*'],
    }),
    statement({
      sid: 'DeregisterMetaflowJobDefinitions',
      actions: ['batch:DeregisterJobDefinition'],
      resources: [p.jobDefinition],
    }),
  ],
};

/**
 * The API function's preflight of a create (lambdas/core/preflight.ts): read-only calls, none of which
 * supports resource-level permissions (Service Authorization Reference: Service Quotas, EC2 and Batch list
 * no resource type for them), so each is on `*`; the EC2 ones are held to the stack's region.
 */
export function preflightPermissions(): iam.PolicyStatement[] {
  return [
    statement({
      sid: 'PreflightReadSpotQuotas',
      actions: ['servicequotas:GetServiceQuota', 'servicequotas:GetAWSDefaultServiceQuota'],
      resources: ['*'],
    }),
    statement({
      sid: 'PreflightDescribeRegion',
      actions: ['ec2:DescribeInstanceTypeOfferings', 'ec2:DescribeSubnets'],
      resources: ['*'],
      conditions: { StringEquals: { 'ec2:Region': Aws.REGION } },
    }),
    statement({
      sid: 'PreflightCountBatchObjects',
      actions: ['batch:DescribeComputeEnvironments', 'batch:DescribeJobQueues'],
      resources: ['*'],
    }),
  ];
}
