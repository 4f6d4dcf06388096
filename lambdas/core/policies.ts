/**
 * Every IAM and bucket policy document an environment gets, as plain data. The step handlers send them to
 * AWS; the unit tests read them. Least privilege: each names only this environment's bucket, queue and role.
 */
import { IDENTITY_CENTER_ROLE_PREFIX, type Principal, parsePrincipal } from './access';
import { DEFAULT_PARTITION, type EnvironmentNames } from './naming';

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


/**
 * The job role (METAFLOW_ECS_S3_ACCESS_IAM_ROLE) is assumed by ECS tasks of this account only.
 *
 * The service principals (`ecs-tasks.amazonaws.com` here, `ec2.amazonaws.com` below) are written the same in
 * every partition, China included: aws-cdk-lib documents service principals as standardized on
 * `<service>.amazonaws.com` and writes that form for every region, the stack's own Lambda trust among them.
 * China once wanted `ec2.amazonaws.com.cn`; that this form is accepted there is yet to be seen on an account.
 */
export function jobRoleTrustPolicy(accountId: string): PolicyDocument {
  return document({
    Effect: 'Allow',
    Principal: { Service: 'ecs-tasks.amazonaws.com' },
    Action: 'sts:AssumeRole',
    Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
  });
}

/**
 * What a Metaflow task inside Batch may do: read and write its own bucket and, given `sfnTableArn`, the
 * environment's foreach-join table. The table statement is written whether scheduling is on or not: under
 * Step Functions the tasks of a foreach record its cardinality and their ids there (Metaflow's
 * dynamo_db_client.py), the table exists only while scheduling is on, and so turning scheduling on or off
 * never has to rewrite this role.
 */
export function jobRolePolicy(names: Pick<EnvironmentNames, 'bucketArn'> & Partial<Pick<EnvironmentNames, 'sfnTableArn'>>): PolicyDocument {
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
    ...(names.sfnTableArn
      ? [{ Sid: 'OwnForeachTable', Effect: 'Allow' as const, Action: [...FOREACH_TABLE_TASK_ACTIONS], Resource: names.sfnTableArn }]
      : []),
  );
}

/** What Metaflow's tasks do with the foreach-join table (dynamo_db_client.py). */
const FOREACH_TABLE_TASK_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:GetItem'] as const;

/**
 * The rule Step Functions manages for every `batch:submitJob.sync` Task: it hears of Batch jobs ending through
 * it ("Policies for AWS Batch", Step Functions developer guide).
 */
export const SFN_BATCH_EVENTS_RULE = 'StepFunctionsGetEventsForBatchJobsRule';

/** The state machine actions the Metaflow client needs on its own state machines (deploy, trigger, list, delete). */
const OWN_STATE_MACHINE_ACTIONS = [
  'states:CreateStateMachine',
  'states:UpdateStateMachine',
  'states:DeleteStateMachine',
  'states:DescribeStateMachine',
  'states:StartExecution',
  'states:ListExecutions',
  'states:TagResource',
  'states:UntagResource',
  'states:ListTagsForResource',
] as const;
/** ... on their executions (step-functions list-runs, terminate, the run's status). */
const OWN_EXECUTION_ACTIONS = ['states:DescribeExecution', 'states:StopExecution', 'states:GetExecutionHistory'] as const;
/** ... on the EventBridge rule named after each state machine (event_bridge_client.py). */
const OWN_RULE_ACTIONS = [
  'events:PutRule',
  'events:PutTargets',
  'events:RemoveTargets',
  'events:DeleteRule',
  'events:DescribeRule',
  'events:DisableRule',
  'events:EnableRule',
  'events:ListTargetsByRule',
] as const;
/** What Step Functions does with the managed rule of `submitJob.sync`. */
const BATCH_EVENTS_RULE_ACTIONS = ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'] as const;

/** `arn:…:events:<region>:<account>:rule/<name>`, in the account, region and partition of a rule pattern. */
function ruleArn(ruleArnPattern: string, name: string): string {
  return `${ruleArnPattern.slice(0, ruleArnPattern.indexOf(':rule/'))}:rule/${name}`;
}

/** The scheduling roles are assumed by one AWS service each, for this account only (confused deputy). */
function serviceTrustPolicy(service: string, accountId: string): PolicyDocument {
  return document({
    Effect: 'Allow',
    Principal: { Service: service },
    Action: 'sts:AssumeRole',
    Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
  });
}

/** METAFLOW_SFN_IAM_ROLE is assumed by Step Functions. */
export function sfnRoleTrustPolicy(accountId: string): PolicyDocument {
  return serviceTrustPolicy('states.amazonaws.com', accountId);
}

/** METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE is assumed by EventBridge. */
export function eventsRoleTrustPolicy(accountId: string): PolicyDocument {
  return serviceTrustPolicy('events.amazonaws.com', accountId);
}

/**
 * What a scheduled flow's state machine does: submit its steps as Batch jobs to the environment's queue with
 * Metaflow's job definitions and wait for them (`submitJob.sync`: the managed rule, DescribeJobs, and
 * TerminateJob when an execution is stopped), and read a foreach's cardinality from the table (its
 * `dynamodb:getItem` Tasks). As Metaflow's own templates grant, less S3 and log delivery: no state machine
 * mfenv serves uses a distributed map or execution logs.
 */
export function sfnRolePolicy(
  names: Pick<EnvironmentNames, 'jobQueueArn' | 'jobDefinitionArnPattern' | 'sfnTableArn' | 'ruleArnPattern'>,
): PolicyDocument {
  return document(
    {
      Sid: 'SubmitToOwnQueue',
      Effect: 'Allow',
      Action: 'batch:SubmitJob',
      Resource: [names.jobQueueArn, names.jobDefinitionArnPattern, jobArnPattern(names.jobQueueArn)],
    },
    {
      // DescribeJobs takes no resource-level permission.
      Sid: 'FollowJobs',
      Effect: 'Allow',
      Action: 'batch:DescribeJobs',
      Resource: '*',
    },
    {
      Sid: 'StopJobs',
      Effect: 'Allow',
      Action: 'batch:TerminateJob',
      Resource: jobArnPattern(names.jobQueueArn),
    },
    {
      Sid: 'HearOfBatchJobs',
      Effect: 'Allow',
      Action: [...BATCH_EVENTS_RULE_ACTIONS],
      Resource: ruleArn(names.ruleArnPattern, SFN_BATCH_EVENTS_RULE),
    },
    {
      Sid: 'ReadForeachTable',
      Effect: 'Allow',
      Action: 'dynamodb:GetItem',
      Resource: names.sfnTableArn,
    },
  );
}

/** What EventBridge does on a schedule: start an execution of one of this environment's state machines. */
export function eventsRolePolicy(names: Pick<EnvironmentNames, 'stateMachineArnPattern'>): PolicyDocument {
  return document({
    Sid: 'StartOwnStateMachines',
    Effect: 'Allow',
    Action: 'states:StartExecution',
    Resource: names.stateMachineArnPattern,
  });
}

/**
 * The instance role's inline policy: what the ECS agent on a Batch instance needs, on this environment's
 * own ECS cluster only. Batch runs single-node jobs in host network mode, so job code can read these
 * credentials; with AWS's managed AmazonEC2ContainerServiceforEC2Role (ECS actions on `*`) it could
 * register a container instance into a colleague's cluster and be handed their tasks and job-role
 * credentials. Written once the compute environment is VALID, when Batch has made the cluster and its ARN
 * is known (`ecsClusterArn`); until then no instance can run (minvCpus is 0 and no job is queued yet).
 */
export function instanceRolePolicy(ecsClusterArn: string, logGroupArn: string): PolicyDocument {
  // container-instance/<cluster name>/<id>: the long ARN format, the default since 2018.
  const [clusterPrefix, clusterName] = ecsClusterArn.split(':cluster/') as [string, string];
  const containerInstances = `${clusterPrefix}:container-instance/${clusterName}/*`;
  return document(
    {
      Sid: 'JoinOwnCluster',
      Effect: 'Allow',
      Action: [
        'ecs:RegisterContainerInstance',
        'ecs:DeregisterContainerInstance',
        'ecs:SubmitContainerStateChange',
        'ecs:SubmitTaskStateChange',
        'ecs:SubmitAttachmentStateChanges',
      ],
      Resource: ecsClusterArn,
    },
    {
      Sid: 'RunOwnClusterTasks',
      Effect: 'Allow',
      Action: ['ecs:Poll', 'ecs:StartTelemetrySession', 'ecs:UpdateContainerInstancesState'],
      Resource: containerInstances,
      Condition: { ArnEquals: { 'ecs:cluster': ecsClusterArn } },
    },
    {
      // No resource-level permissions exist for these.
      Sid: 'FindEcsAndPullImages',
      Effect: 'Allow',
      Action: ['ecs:DiscoverPollEndpoint', 'ecr:GetAuthorizationToken', 'ec2:DescribeTags'],
      Resource: '*',
    },
    {
      Sid: 'PullImages',
      Effect: 'Allow',
      Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
      Resource: '*',
    },
    {
      Sid: 'WriteJobLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: [`${logGroupArn}:log-stream:*`],
    },
  );
}

/** The Batch container instances are EC2 instances. */
export function instanceRoleTrustPolicy(): PolicyDocument {
  return document({ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' });
}

/**
 * The access role's inline policy: the least the Metaflow client needs to run flows on this environment
 * (METAFLOW_BATCH_JOB_QUEUE, METAFLOW_ECS_S3_ACCESS_IAM_ROLE, the datastore under the bucket). A teammate
 * assumes the role (its ARN is `resources.accessRoleArn`); nothing is ever attached to a person.
 */
export function accessRolePolicy(
  names: Pick<EnvironmentNames, 'bucketArn' | 'jobQueueArn' | 'jobRoleArn' | 'jobDefinitionArnPattern'> &
    Partial<SchedulingNames>,
  logGroupArn: string,
): PolicyDocument {
  return document(
    {
      Sid: 'DescribeBatch',
      Effect: 'Allow',
      Action: [...METAFLOW_BATCH_READ_ACTIONS],
      Resource: '*',
    },
    {
      Sid: 'RegisterMetaflowJobDefinitions',
      Effect: 'Allow',
      Action: 'batch:RegisterJobDefinition',
      Resource: names.jobDefinitionArnPattern,
    },
    {
      // SubmitJob is authorized on the queue, the job definition and the new job; a job's ARN names no queue.
      Sid: 'SubmitToOwnQueue',
      Effect: 'Allow',
      Action: 'batch:SubmitJob',
      Resource: [names.jobQueueArn, names.jobDefinitionArnPattern, jobArnPattern(names.jobQueueArn)],
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
    ...(hasSchedulingNames(names) ? schedulingClientStatements(names) : []),
  );
}

type SchedulingNames = Pick<
  EnvironmentNames,
  'stateMachineArnPattern' | 'executionArnPattern' | 'ruleArnPattern' | 'sfnRoleArn' | 'eventsRoleArn'
>;

function hasSchedulingNames(names: Partial<SchedulingNames>): names is SchedulingNames {
  return Boolean(names.stateMachineArnPattern && names.executionArnPattern && names.ruleArnPattern && names.sfnRoleArn && names.eventsRoleArn);
}

/**
 * `step-functions create`, `trigger`, `list-runs`, `terminate` and `delete` on this environment's state
 * machines and rules only: `<prefix>-<name>_*`, the names METAFLOW_SFN_STATE_MACHINE_PREFIX gives them. Written
 * whether scheduling is on or not, so turning it on or off never rewrites this role: with it off, no role it
 * may pass exists, and no state machine can be made. ListStateMachines takes no resource (Metaflow finds a
 * state machine's ARN by listing them all), so every state machine's name is visible.
 */
function schedulingClientStatements(names: SchedulingNames): PolicyStatement[] {
  return [
    { Sid: 'FindStateMachines', Effect: 'Allow', Action: 'states:ListStateMachines', Resource: '*' },
    { Sid: 'OwnStateMachines', Effect: 'Allow', Action: [...OWN_STATE_MACHINE_ACTIONS], Resource: names.stateMachineArnPattern },
    { Sid: 'OwnExecutions', Effect: 'Allow', Action: [...OWN_EXECUTION_ACTIONS], Resource: names.executionArnPattern },
    { Sid: 'OwnScheduleRules', Effect: 'Allow', Action: [...OWN_RULE_ACTIONS], Resource: names.ruleArnPattern },
    {
      Sid: 'PassOwnSfnRole',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: names.sfnRoleArn,
      Condition: { StringEquals: { 'iam:PassedToService': 'states.amazonaws.com' } },
    },
    {
      Sid: 'PassOwnEventsRole',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: names.eventsRoleArn,
      Condition: { StringEquals: { 'iam:PassedToService': 'events.amazonaws.com' } },
    },
  ];
}

/**
 * Batch calls the Metaflow client makes that take no resource-level permissions (Describe*, ListJobs) or
 * that it needs on jobs it cannot name in advance (TerminateJob, when a run is interrupted).
 */
const METAFLOW_BATCH_READ_ACTIONS = [
  'batch:DescribeJobQueues',
  'batch:DescribeComputeEnvironments',
  'batch:DescribeJobDefinitions',
  'batch:DescribeJobs',
  'batch:ListJobs',
  'batch:TerminateJob',
] as const;

/** IAM Identity Center's roles are `AWSReservedSSO_<permission set>_<16 hex characters>`. */
const IDENTITY_CENTER_SUFFIX = '????????????????';

/**
 * The conditions that single out one principal in a trust policy whose Principal is `{"AWS": "*"}`.
 *
 * Why conditions rather than a named principal: IAM refuses a trust policy naming a principal that does
 * not exist, and a role's ARN with its path is not known from an API call (API Gateway reports the session,
 * `assumed-role/<name>/<session>`, without the path); IAM Identity Center re-creates its roles with new
 * suffixes, which breaks a trust that names the exact ARN. `aws:PrincipalArn` is the role's ARN (with
 * path) for a role session, and `aws:userid` is `<unique id>` for a user, `<role unique id>:<session>`
 * for a role session, so together they name one user, one role, or one person on one permission set.
 * With the unique id (AIDA…, AROA…) a user or role deleted and re-created under the same name is a new
 * principal and is not admitted.
 */
export function principalConditions(principal: Principal, uniqueId?: string | null): NonNullable<PolicyStatement['Condition']> {
  const { partition, accountId, name } = principal;
  const iamArn = (type: 'user' | 'role', path: string) => `arn:${partition}:iam::${accountId}:${type}/${path}`;
  switch (principal.kind) {
    case 'user':
      return {
        ArnLike: { 'aws:PrincipalArn': [iamArn('user', name), iamArn('user', `*/${name}`)] },
        ...(uniqueId ? { StringEquals: { 'aws:userid': uniqueId } } : {}),
      };
    case 'role':
    case 'role-session': {
      const permissionSet = identityCenterPermissionSet(name);
      if (principal.kind === 'role-session' && permissionSet !== undefined) {
        return {
          // With or without the Identity Center region in the path; the role name itself must start the last part.
          ArnLike: {
            'aws:PrincipalArn': [
              iamArn('role', `aws-reserved/sso.amazonaws.com/${IDENTITY_CENTER_ROLE_PREFIX}${permissionSet}_${IDENTITY_CENTER_SUFFIX}`),
              iamArn('role', `aws-reserved/sso.amazonaws.com/*/${IDENTITY_CENTER_ROLE_PREFIX}${permissionSet}_${IDENTITY_CENTER_SUFFIX}`),
            ],
          },
          // The session name is the person's Identity Center user name.
          StringLike: { 'aws:userid': `*:${principal.session}` },
        };
      }
      return {
        ArnLike: { 'aws:PrincipalArn': [iamArn('role', name), iamArn('role', `*/${name}`)] },
        ...(uniqueId ? { StringLike: { 'aws:userid': `${uniqueId}:*` } } : {}),
      };
    }
    default:
      // Root and federated users: their ARN is their aws:PrincipalArn.
      return { StringEquals: { 'aws:PrincipalArn': principal.id } };
  }
}

/** The permission set of an IAM Identity Center role name, or undefined for any other role. */
export function identityCenterPermissionSet(roleName: string): string | undefined {
  const match = /^AWSReservedSSO_(.+)_[0-9a-f]{16}$/i.exec(roleName);
  return match?.[1];
}

/** Who an access role admits: the environment's owner (with their unique id when known) and the admins. */
export interface AccessRoleTrustees {
  owner: string;
  ownerUniqueId?: string | null;
  admins: readonly string[];
}

/**
 * Trust policy of an environment's access role: its owner may assume it, and every deploy-time admin;
 * nobody else, whatever their own policies say (a trust policy names its principals; no identity policy
 * can add one). Each principal is a statement of its own, since conditions within one statement are ANDed.
 */
export function accessRoleTrustPolicy(trustees: AccessRoleTrustees): PolicyDocument {
  const statement = (Sid: string, principal: Principal, uniqueId?: string | null): PolicyStatement => ({
    Sid,
    Effect: 'Allow',
    Principal: { AWS: '*' },
    Action: 'sts:AssumeRole',
    Condition: principalConditions(principal, uniqueId),
  });
  const owner = parsePrincipal(trustees.owner);
  if (!owner) throw new Error(`The owner "${trustees.owner}" is not an IAM principal ARN.`);
  // An admin who also owns the environment keeps the admin statement: it admits them by name, as admins
  // are admitted everywhere, where the owner statement may pin a unique id.
  const admins = trustees.admins.map((admin) => parsePrincipal(admin)).filter((admin): admin is Principal => admin !== undefined);
  return document(statement('Owner', owner, trustees.ownerUniqueId), ...admins.map((admin, index) => statement(`Admin${index + 1}`, admin)));
}

/** IAM's limit on a role trust policy, in characters without whitespace (raisable to 4,096 by quota request). */
export const TRUST_POLICY_MAX_LENGTH = 2048;

/** Every job of the account and region the queue is in (`…:job-queue/<name>` → `…:job/*`). */
function jobArnPattern(jobQueueArn: string): string {
  return `${jobQueueArn.slice(0, jobQueueArn.indexOf(':job-queue/'))}:job/*`;
}

/**
 * The log group AWS Batch writes job output to by default. The partition defaults to the commercial one
 * for callers that can mean nothing else (the emulator); the step handlers pass the deployment's.
 */
export function batchJobLogGroupArn(region: string, accountId: string, partition: string = DEFAULT_PARTITION): string {
  return `arn:${partition}:logs:${region}:${accountId}:log-group:/aws/batch/job`;
}

/** Where an environment's job and instance roles may reach its bucket from (network isolation). */
export interface BucketIsolation {
  vpcId: string;
  /** The stack's S3 gateway endpoint. */
  s3EndpointId: string;
  /** The environment's address block: its subnets, and so its Batch instances (host network mode). */
  cidr: string;
}

/**
 * Bucket policy. TLS only (`tlsOnly` is false only against the emulator, which cannot evaluate
 * aws:SecureTransport). With `isolation`, the environment's job role and instance role are refused unless
 * the request comes through the S3 gateway endpoint, from the shared VPC, from the environment's own
 * addresses: three Deny statements, because conditions within one statement are ANDed (one statement
 * would deny only when every condition failed) and a request from outside any VPC carries none of these
 * keys, which makes each negated condition true. Roles are matched with aws:PrincipalArn rather than named
 * as principals, so a role deleted and re-created keeps being matched. Other principals (the teammate's
 * access role, from a laptop) are not concerned. With no statement left there is no policy (undefined).
 */
export function bucketPolicy(
  names: Pick<EnvironmentNames, 'bucketArn'> & Partial<Pick<EnvironmentNames, 'jobRoleArn' | 'instanceRoleArn'>>,
  tlsOnly: boolean,
  isolation?: BucketIsolation,
): PolicyDocument | undefined {
  const everything = [names.bucketArn, `${names.bucketArn}/*`];
  const statements: PolicyStatement[] = [];
  if (tlsOnly) {
    statements.push({
      Sid: 'DenyInsecureTransport',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:*',
      Resource: everything,
      Condition: { Bool: { 'aws:SecureTransport': false } },
    });
  }
  if (isolation) {
    if (!names.jobRoleArn || !names.instanceRoleArn) throw new Error('Network isolation needs the job and instance role ARNs.');
    const roles = { 'aws:PrincipalArn': [names.jobRoleArn, names.instanceRoleArn] };
    const deny = (Sid: string, condition: NonNullable<PolicyStatement['Condition']>): PolicyStatement => ({
      Sid,
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:*',
      Resource: everything,
      Condition: { ArnEquals: roles, ...condition },
    });
    statements.push(
      deny('EnvironmentRolesOnlyThroughTheEndpoint', { StringNotEquals: { 'aws:SourceVpce': isolation.s3EndpointId } }),
      deny('EnvironmentRolesOnlyFromTheVpc', { StringNotEquals: { 'aws:SourceVpc': isolation.vpcId } }),
      deny('EnvironmentRolesOnlyFromTheirSubnets', { NotIpAddress: { 'aws:VpcSourceIp': isolation.cidr } }),
    );
  }
  return statements.length > 0 ? document(...statements) : undefined;
}

/** Name of the permissions boundary policy, under the IAM path `/<prefix>/`: named after the stack. */
export function permissionsBoundaryName(stackName: string): string {
  return `${stackName}-environment-boundary`;
}

/**
 * The permissions boundary every role the workflows create must carry (the provisioning roles may create
 * a role only with this boundary attached). It is the most any environment role can ever do, and it is
 * per environment: the resources are built from the role's own tags (`${aws:PrincipalTag/mfenv:bucket}`,
 * `${aws:PrincipalTag/mfenv:environment}`), set when the role is created and never changed after, so a role
 * of alice's environment can never reach bob's bucket, queue or job role whatever its own policy says. A
 * role without the tags matches nothing (a missing policy variable matches no resource). What it allows:
 * the ECS agent's work on a Batch instance, object access to the environment's bucket, and what the
 * Metaflow client does with the environment (through its access role). No other IAM action, no STS.
 */
export function permissionsBoundaryPolicy(
  prefix: string,
  partition: string,
  where: { accountId: string; region: string } = { accountId: '*', region: '*' },
): PolicyDocument {
  const { accountId, region } = where;
  const environment = '${aws:PrincipalTag/mfenv:environment}';
  const bucket = '${aws:PrincipalTag/mfenv:bucket}';
  return document(
    {
      Sid: 'OwnEnvironmentBucket',
      Effect: 'Allow',
      Action: ['s3:ListBucket', 's3:GetBucketLocation', 's3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
      Resource: [`arn:${partition}:s3:::${bucket}`, `arn:${partition}:s3:::${bucket}/*`],
    },
    {
      // What AmazonEC2ContainerServiceforEC2Role grants the ECS agent on a Batch container instance.
      Sid: 'BatchContainerInstance',
      Effect: 'Allow',
      Action: [
        'ec2:DescribeTags',
        'ecs:DeregisterContainerInstance',
        'ecs:DiscoverPollEndpoint',
        'ecs:Poll',
        'ecs:RegisterContainerInstance',
        'ecs:StartTelemetrySession',
        'ecs:UpdateContainerInstancesState',
        'ecs:Submit*',
        'ecr:GetAuthorizationToken',
        'ecr:BatchCheckLayerAvailability',
        'ecr:GetDownloadUrlForLayer',
        'ecr:BatchGetImage',
      ],
      Resource: '*',
    },
    {
      Sid: 'BatchJobLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: `${batchJobLogGroupArn(region, accountId, partition)}:log-stream:*`,
    },
    {
      Sid: 'MetaflowClientDescribeBatch',
      Effect: 'Allow',
      Action: [...METAFLOW_BATCH_READ_ACTIONS],
      Resource: '*',
    },
    {
      Sid: 'MetaflowClientSubmitToOwnQueue',
      Effect: 'Allow',
      Action: ['batch:RegisterJobDefinition', 'batch:SubmitJob'],
      Resource: [
        `arn:${partition}:batch:${region}:${accountId}:job-definition/metaflow_*`,
        `arn:${partition}:batch:${region}:${accountId}:job-queue/${prefix}-${environment}`,
        `arn:${partition}:batch:${region}:${accountId}:job/*`,
      ],
    },
    {
      Sid: 'MetaflowClientPassOwnJobRole',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: `arn:${partition}:iam::${accountId}:role/${prefix}/${prefix}-${environment}-job`,
      Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    },
    {
      Sid: 'MetaflowClientReadBatchLogs',
      Effect: 'Allow',
      Action: 'logs:GetLogEvents',
      Resource: `${batchJobLogGroupArn(region, accountId, partition)}:log-stream:*`,
    },
    // Scheduled flows: the access role's state machines and rules, the Step Functions role's Batch events rule
    // and table read, the events role's StartExecution, the tasks' table writes; all on `<prefix>-<environment tag>`.
    { Sid: 'SchedulingListStateMachines', Effect: 'Allow', Action: 'states:ListStateMachines', Resource: '*' },
    {
      Sid: 'SchedulingOwnStateMachines',
      Effect: 'Allow',
      Action: [...OWN_STATE_MACHINE_ACTIONS, ...OWN_EXECUTION_ACTIONS],
      Resource: [
        `arn:${partition}:states:${region}:${accountId}:stateMachine:${prefix}-${environment}_*`,
        `arn:${partition}:states:${region}:${accountId}:execution:${prefix}-${environment}_*:*`,
      ],
    },
    {
      Sid: 'SchedulingOwnRules',
      Effect: 'Allow',
      Action: [...OWN_RULE_ACTIONS],
      Resource: `arn:${partition}:events:${region}:${accountId}:rule/${prefix}-${environment}_*`,
    },
    {
      Sid: 'SchedulingBatchEventsRule',
      Effect: 'Allow',
      Action: [...BATCH_EVENTS_RULE_ACTIONS],
      Resource: `arn:${partition}:events:${region}:${accountId}:rule/${SFN_BATCH_EVENTS_RULE}`,
    },
    {
      Sid: 'SchedulingOwnForeachTable',
      Effect: 'Allow',
      Action: [...FOREACH_TABLE_TASK_ACTIONS],
      Resource: `arn:${partition}:dynamodb:${region}:${accountId}:table/${prefix}-${environment}-sfn`,
    },
    {
      Sid: 'SchedulingPassOwnSfnRole',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: `arn:${partition}:iam::${accountId}:role/${prefix}/${prefix}-${environment}-sfn`,
      Condition: { StringEquals: { 'iam:PassedToService': 'states.amazonaws.com' } },
    },
    {
      Sid: 'SchedulingPassOwnEventsRole',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: `arn:${partition}:iam::${accountId}:role/${prefix}/${prefix}-${environment}-events`,
      Condition: { StringEquals: { 'iam:PassedToService': 'events.amazonaws.com' } },
    },
  );
}
