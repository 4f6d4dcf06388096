/**
 * cdk-nag (AwsSolutions pack) findings the stack acknowledges, each on the one construct it concerns and with
 * the reason it is right there. Everything else the pack asks for is built in (access logs, execution
 * logs, request validation, X-Ray, PITR, VPC flow logs, no managed policies on function roles...).
 */
import { Token, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { MfenvStack } from './stack';
import { stateMachineName } from './workflows';

/** Why a finding is acceptable, on which construct. Exported for the tests, which check each one is needed. */
export interface Acknowledgement {
  construct: IConstruct;
  rule: string;
  reason: string;
}

/** How cdk-nag names a wildcard finding of IAM5 in a CloudFormation-resolved policy. */
const wildcardResource = (resource: string) => `AwsSolutions-IAM5[Resource::${resource}]`;
/** How cdk-nag prints a value: a pseudo parameter as `<AWS::Name>`, a known value as itself. */
const shown = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);

const PER_ENVIRONMENT_NAMES =
  'per-environment names are created at run time under the mfenv prefix: one pattern covers every environment, and matches nothing outside the prefix';
const XRAY = 'X-Ray (tracing is on) grants xray:PutTraceSegments and PutTelemetryRecords, which support no resource-level permissions';

export function acknowledgements(stack: MfenvStack, prefix: string): Acknowledgement[] {
  const { registry, bucket, iam, network, batch, scheduling } = stack.workflows.stepFunctions;
  const { provision, teardown, update } = stack.workflows.stateMachines;
  // An environment-agnostic stack shows pseudo parameters; one with an account and region (mfenv:vpcId) the values.
  const partition = shown(stack.partition, 'Partition');
  const account = shown(stack.account, 'AccountId');
  const iamArn = `arn:${partition}:iam::${account}`;
  const batchArn = `arn:${partition}:batch:${shown(stack.region, 'Region')}:${account}`;
  const logsArn = `arn:${partition}:logs:${shown(stack.region, 'Region')}:${account}`;
  const executionsArn = `arn:${partition}:states:${shown(stack.region, 'Region')}:${account}:execution`;
  const restApi = stack.api.restApi;
  const bucketPattern = `arn:${partition}:s3:::${prefix}-*`;
  const rolePattern = (suffix: string) => `${iamArn}:role/${prefix}/${prefix}-*-${suffix}`;
  const boundary = stack.node.findChild('EnvironmentBoundary');

  return [
    // ---- The permissions boundary: an upper limit, not a grant. Nothing is allowed by it alone.
    {
      construct: boundary,
      rule: 'AwsSolutions-IAM5[Action::ecs:Submit*]',
      reason:
        'The boundary allows at most what the AWS managed AmazonEC2ContainerServiceforEC2Role grants the ECS agent, which is ecs:Submit* (task, container and attachment state changes).',
    },
    {
      construct: boundary,
      rule: wildcardResource(`${batchArn}:job-definition/metaflow_*`),
      reason:
        "The Metaflow client registers and submits job definitions named metaflow_<hash>; each access role's own policy narrows SubmitJob to its environment's queue.",
    },
    {
      construct: boundary,
      rule: wildcardResource(`arn:${partition}:s3:::<aws:PrincipalTag/mfenv:bucket>/*`),
      reason:
        "The objects of the role's own environment bucket: the bucket is the role's mfenv:bucket tag, set when the role is created and never changed after (the IAM steps may not retag a role).",
    },
    {
      construct: boundary,
      rule: wildcardResource(`${batchArn}:job/*`),
      reason:
        "SubmitJob is also authorized on the job it creates, whose ARN names no queue; the role's own environment queue is required in the same statement.",
    },
    {
      construct: boundary,
      rule: wildcardResource(`${logsArn}:log-group:/aws/batch/job:log-stream:*`),
      reason: 'The Metaflow client reads its Batch jobs\' output from the log group Batch writes to; stream names are per job and unknown in advance.',
    },
    {
      construct: boundary,
      rule: wildcardResource('*'),
      reason:
        'The boundary allows at most what the ECS agent on a Batch instance needs (AmazonEC2ContainerServiceforEC2Role); those ECS, ECR and CloudWatch Logs actions are granted on * by AWS itself.',
    },

    ...(
      [
        ['states', `stateMachine:${prefix}-<aws:PrincipalTag/mfenv:environment>_*`],
        ['states', `execution:${prefix}-<aws:PrincipalTag/mfenv:environment>_*:*`],
        ['events', `rule/${prefix}-<aws:PrincipalTag/mfenv:environment>_*`],
      ] as const
    ).map(([service, resource]) => ({
      construct: boundary,
      rule: wildcardResource(`arn:${partition}:${service}:${shown(stack.region, 'Region')}:${account}:${resource}`),
      reason:
        "Scheduled flows: Metaflow names the role's own environment's state machines, their executions and its schedule rules <prefix>-<environment>_<flow> (METAFLOW_SFN_STATE_MACHINE_PREFIX); the environment is the role's mfenv:environment tag, never changed after creation.",
    })),

    // ---- Step Lambdas: each role holds only its steps' actions, on the prefix's names.
    {
      construct: scheduling.role,
      rule: wildcardResource('*'),
      reason: `${XRAY}. Step Functions ListStateMachines, EventBridge ListRules and Batch DescribeJobDefinitions support no resource-level permissions (the step deletes only names under an environment's prefix); the other * statements are Denies (never remove or swap a permissions boundary, never create a role without it).`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(rolePattern('sfn')),
      reason: `Step Functions roles of scheduled flows are ${prefix}-<environment>-sfn under /${prefix}/; created only with the permissions boundary; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(rolePattern('events')),
      reason: `EventBridge roles of scheduled flows are ${prefix}-<environment>-events under /${prefix}/; created only with the permissions boundary; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(rolePattern('job')),
      reason: `GetRole only: job definitions are deregistered only when the job role they name is absent or this environment's; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(`arn:${partition}:dynamodb:${shown(stack.region, 'Region')}:${account}:table/${prefix}-*-sfn`),
      reason: `Foreach tables of scheduled flows are ${prefix}-<environment>-sfn; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(`arn:${partition}:states:${shown(stack.region, 'Region')}:${account}:stateMachine:${prefix}-*_*`),
      reason: `Metaflow names an environment's state machines <prefix>-<environment>_<flow> (METAFLOW_SFN_STATE_MACHINE_PREFIX); only listing their executions and deleting them; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(`${executionsArn}:${prefix}-*_*:*`),
      reason: `Stopping the running executions of an environment's state machines before deleting them; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(`arn:${partition}:events:${shown(stack.region, 'Region')}:${account}:rule/${prefix}-*_*`),
      reason: `Metaflow names each schedule rule after its state machine; only removing targets and deleting rules; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: scheduling.role,
      rule: wildcardResource(`${batchArn}:job-definition/metaflow_*`),
      reason: "Deregistering Metaflow's job definitions (metaflow_<hash>, names unknown in advance) that name the environment's job role.",
    },
    { construct: registry.role, rule: wildcardResource('*'), reason: `${XRAY}.` },
    { construct: bucket.role, rule: wildcardResource('*'), reason: `${XRAY}.` },
    { construct: stack.uninstallGuard.function.role, rule: wildcardResource('*'), reason: `${XRAY}.` },
    // Idle expiry exists only when mfenv:idleExpiryDays is set (infra/idle-expiry.ts).
    ...(stack.idleExpiry
      ? [
          {
            construct: stack.idleExpiry.function.role,
            rule: wildcardResource('*'),
            reason: `${XRAY}. Batch ListJobs (read-only job summaries of each environment's queue) supports no resource-level permissions either.`,
          },
        ]
      : []),
    { construct: bucket.role, rule: wildcardResource(bucketPattern), reason: `Bucket names are ${prefix}-<environment>-<hash>; ${PER_ENVIRONMENT_NAMES}.` },
    {
      construct: bucket.role,
      rule: wildcardResource(`${bucketPattern}/*`),
      reason: `Only to empty an environment's bucket on DELETE ?purge=true (DeleteObject, DeleteObjectVersion, AbortMultipartUpload; no read); ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: iam.role,
      rule: wildcardResource('*'),
      reason: `${XRAY}. Besides Batch DescribeComputeEnvironments (read-only, no resource-level permissions: the step reads the ECS cluster Batch made), the only other * statements are Denies (never remove or swap a permissions boundary, never create a role without it).`,
    },
    { construct: iam.role, rule: wildcardResource(rolePattern('job')), reason: `Job roles are ${prefix}-<environment>-job under /${prefix}/; created only with the permissions boundary; ${PER_ENVIRONMENT_NAMES}.` },
    {
      construct: iam.role,
      rule: wildcardResource(rolePattern('instance')),
      reason: `Instance roles are ${prefix}-<environment>-instance under /${prefix}/; created only with the permissions boundary, passed only to EC2; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: iam.role,
      rule: wildcardResource(`${iamArn}:instance-profile/${prefix}/${prefix}-*-instance`),
      reason: `Instance profiles are ${prefix}-<environment>-instance under /${prefix}/; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: iam.role,
      rule: wildcardResource(rolePattern('access')),
      reason: `Access roles are ${prefix}-<environment>-access under /${prefix}/; created only with the permissions boundary, their trust naming the environment's owner and the admins; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: network.role,
      rule: wildcardResource('*'),
      reason: `${XRAY}. EC2 DescribeSubnets and DescribeRouteTables support no resource-level permissions either.`,
    },
    {
      construct: network.role,
      rule: wildcardResource(`arn:${partition}:ec2:${shown(stack.region, 'Region')}:${account}:subnet/*`),
      reason:
        "Subnet ids are made by EC2 when created: a subnet may be created only tagged managed-by this stack, tags only at creation, and changed, joined to the shared route table or deleted only when so tagged (aws:ResourceTag).",
    },
    {
      construct: batch.role,
      rule: wildcardResource('*'),
      reason: `${XRAY}. Batch DescribeComputeEnvironments/DescribeJobQueues and EC2 DescribeSubnets/SecurityGroups/Vpcs (which Batch validation calls with the caller's permissions) support no resource-level permissions either.`,
    },
    {
      construct: batch.role,
      rule: wildcardResource(rolePattern('instance')),
      reason: `The compute environment names the environment's instance profile: its role (${prefix}-<environment>-instance, carrying the boundary) may be passed to EC2 only; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: batch.role,
      rule: wildcardResource(`${batchArn}:compute-environment/${prefix}-*`),
      reason: `Compute environments are ${prefix}-<environment>, or ${prefix}-<environment>_r<generation> once a resize replaced it; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: batch.role,
      rule: wildcardResource(`${batchArn}:job-queue/${prefix}-*`),
      reason: `Job queues are ${prefix}-<environment>; ${PER_ENVIRONMENT_NAMES}.`,
    },
    {
      construct: batch.role,
      rule: wildcardResource(`${iamArn}:role/aws-service-role/batch.amazonaws.com/*`),
      reason:
        "Creating Batch's service-linked role, if the account has none yet; also limited by iam:AWSServiceName to batch.amazonaws.com. AWS names the role itself, under this fixed path.",
    },

    // ---- API function and state machines.
    {
      construct: stack.apiFunction.role,
      rule: wildcardResource('*'),
      reason:
        `${XRAY}. The preflight of a create reads, and only reads: Service Quotas GetServiceQuota and GetAWSDefaultServiceQuota (the Spot vCPU quotas), ` +
        'EC2 DescribeInstanceTypeOfferings and DescribeSubnets (held to the stack\'s region by ec2:Region), Batch DescribeComputeEnvironments and ' +
        'DescribeJobQueues (counted against the regional limit); none of these supports resource-level permissions.',
    },
    ...(['provision', 'teardown', 'update'] as const).map((machineId) => ({
      construct: stack.apiFunction.role,
      rule: wildcardResource(`${executionsArn}:${stateMachineName(stack.stackName, machineId)}:*`),
      reason:
        `states:DescribeExecution and GetExecutionHistory only, on the executions of the ${machineId} state machine: a DELETE looks up whether the workflow an environment waits on still runs, and a GET which step it is in (progress). ` +
        'Executions are named at run time (<environment>-<kind>-<generation>); the pattern matches no other state machine.',
    })),
    ...[provision, teardown, update].map((machine) => ({
      construct: machine.role,
      rule: wildcardResource('*'),
      reason: `${XRAY}. Logging to CloudWatch Logs needs the log-delivery actions (logs:CreateLogDelivery, PutResourcePolicy, ...), which support no resource-level permissions.`,
    })),

    // ---- API Gateway.
    {
      construct: restApi,
      rule: 'AwsSolutions-COG4',
      reason:
        'Teammates are IAM principals of the account: every method uses AWS_IAM (SigV4) authorization and a resource policy admits only this account (or organisation). There is no user pool to authorize against.',
    },
    {
      construct: restApi,
      rule: 'AwsSolutions-APIG3',
      reason:
        'Every request must be SigV4-signed by a principal of the account before it reaches the API, and the stage is throttled; a WAF web ACL would add a monthly fixed cost to a stack that is meant to cost nothing while idle.',
    },
    {
      construct: restApi,
      rule: `AwsSolutions-IAM4[Policy::arn:${partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]`,
      reason:
        "API Gateway's account-wide CloudWatch role (needed for execution logs): AmazonAPIGatewayPushToCloudWatchLogs is the policy AWS documents for it, and API Gateway writes to log groups it names itself.",
    },
  ];
}

export function acknowledgeFindings(stack: MfenvStack, prefix: string): void {
  for (const { construct, rule, reason } of acknowledgements(stack, prefix)) {
    Validations.of(construct).acknowledge({ id: rule, reason });
  }
}
