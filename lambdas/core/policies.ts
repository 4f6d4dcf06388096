/**
 * Every IAM and bucket policy document an environment gets, as plain data. The step handlers send them to
 * AWS; the unit tests read them. Least privilege: each names only this environment's bucket, queue and role.
 */
import type { EnvironmentNames } from './naming';

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: Record<string, string | string[]> | '*';
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

const document = (...Statement: PolicyStatement[]): PolicyDocument => ({ Version: '2012-10-17', Statement });

/** AWS managed policy with the ECS agent's permissions, attached to the Batch instance role. */
export const ECS_INSTANCE_MANAGED_POLICY = 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role';

/** The job role (METAFLOW_ECS_S3_ACCESS_IAM_ROLE) is assumed by ECS tasks of this account only. */
export function jobRoleTrustPolicy(accountId: string): PolicyDocument {
  return document({
    Effect: 'Allow',
    Principal: { Service: 'ecs-tasks.amazonaws.com' },
    Action: 'sts:AssumeRole',
    Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
  });
}

/** What a Metaflow task inside Batch may do: read and write its own bucket, nothing else. */
export function jobRolePolicy(names: Pick<EnvironmentNames, 'bucketArn'>): PolicyDocument {
  return document(
    {
      Sid: 'ListOwnBucket',
      Effect: 'Allow',
      Action: ['s3:ListBucket', 's3:GetBucketLocation'],
      Resource: names.bucketArn,
    },
    {
      Sid: 'ReadWriteOwnBucket',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
      Resource: `${names.bucketArn}/*`,
    },
  );
}

/** The Batch container instances are EC2 instances. */
export function instanceRoleTrustPolicy(): PolicyDocument {
  return document({ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' });
}

/**
 * The teammate policy: the least the Metaflow client needs to run flows on this environment. Attach it to
 * the teammate's user or role (its ARN is `resources.userPolicyArn`).
 */
export function teammatePolicy(
  names: Pick<EnvironmentNames, 'bucketArn' | 'jobQueueArn' | 'jobRoleArn' | 'jobDefinitionArnPattern'>,
  logGroupArn: string,
): PolicyDocument {
  return document(
    {
      Sid: 'DescribeBatch',
      Effect: 'Allow',
      Action: [
        'batch:DescribeJobQueues',
        'batch:DescribeComputeEnvironments',
        'batch:DescribeJobDefinitions',
        'batch:DescribeJobs',
        'batch:ListJobs',
        'batch:TerminateJob',
      ],
      Resource: '*',
    },
    {
      Sid: 'RegisterMetaflowJobDefinitions',
      Effect: 'Allow',
      Action: 'batch:RegisterJobDefinition',
      Resource: names.jobDefinitionArnPattern,
    },
    {
      Sid: 'SubmitToOwnQueue',
      Effect: 'Allow',
      Action: 'batch:SubmitJob',
      Resource: [names.jobQueueArn, names.jobDefinitionArnPattern],
    },
    {
      Sid: 'PassOwnJobRole',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: names.jobRoleArn,
      Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    },
    {
      Sid: 'ListOwnBucket',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: names.bucketArn,
    },
    {
      Sid: 'ReadWriteOwnBucket',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
      Resource: `${names.bucketArn}/*`,
    },
    {
      // Metaflow streams a Batch task's output from the default Batch log group while it waits.
      Sid: 'ReadBatchLogs',
      Effect: 'Allow',
      Action: 'logs:GetLogEvents',
      Resource: `${logGroupArn}:log-stream:*`,
    },
  );
}

/** The log group AWS Batch writes job output to by default. */
export function batchJobLogGroupArn(region: string, accountId: string, partition = 'aws'): string {
  return `arn:${partition}:logs:${region}:${accountId}:log-group:/aws/batch/job`;
}

/**
 * Bucket policy: refuse plain HTTP. `tlsOnly` is false only against the emulator, which cannot evaluate
 * aws:SecureTransport; with no statement left there is no policy at all (undefined).
 */
export function bucketPolicy(names: Pick<EnvironmentNames, 'bucketArn'>, tlsOnly: boolean): PolicyDocument | undefined {
  if (!tlsOnly) return undefined;
  return document({
    Sid: 'DenyInsecureTransport',
    Effect: 'Deny',
    Principal: '*',
    Action: 's3:*',
    Resource: [names.bucketArn, `${names.bucketArn}/*`],
    Condition: { Bool: { 'aws:SecureTransport': false } },
  });
}

/**
 * Name of the permissions boundary policy, under the IAM path `/<prefix>/`: named after the stack, and not
 * ending in `-user`, so it never matches the teammate-policy pattern the IAM steps may manage.
 */
export function permissionsBoundaryName(stackName: string): string {
  return `${stackName}-environment-boundary`;
}

/**
 * The permissions boundary every role the workflows create must carry (the provisioning roles may create
 * a role only with this boundary attached). It is the most any environment role can ever do: the ECS
 * agent's work on a Batch instance and object access to mfenv buckets. No IAM, no STS, nothing else, so a
 * bug in a step cannot mint a powerful role. The bootstrap stack (and local mode) create it once.
 */
export function permissionsBoundaryPolicy(prefix: string, partition = 'aws'): PolicyDocument {
  return document(
    {
      Sid: 'EnvironmentBuckets',
      Effect: 'Allow',
      Action: ['s3:ListBucket', 's3:GetBucketLocation', 's3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
      Resource: [`arn:${partition}:s3:::${prefix}-*`, `arn:${partition}:s3:::${prefix}-*/*`],
    },
    {
      // What AmazonEC2ContainerServiceforEC2Role grants the ECS agent on a Batch container instance.
      Sid: 'BatchContainerInstance',
      Effect: 'Allow',
      Action: [
        'ec2:DescribeTags',
        'ecs:CreateCluster',
        'ecs:DeregisterContainerInstance',
        'ecs:DiscoverPollEndpoint',
        'ecs:Poll',
        'ecs:RegisterContainerInstance',
        'ecs:StartTelemetrySession',
        'ecs:UpdateContainerInstancesState',
        'ecs:Submit*',
        'ecs:TagResource',
        'ecr:GetAuthorizationToken',
        'ecr:BatchCheckLayerAvailability',
        'ecr:GetDownloadUrlForLayer',
        'ecr:BatchGetImage',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ],
      Resource: '*',
    },
  );
}
