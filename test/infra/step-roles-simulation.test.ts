/**
 * What each step Lambda may do, as IAM would decide it: the policies the synthesized template attaches to
 * each step function's role, made concrete for a sample deployment, evaluated by the IAM policy simulator.
 * permissions.test.ts checks the statements' shape; this checks what they mean for a request: a bug in one
 * step, or its compromise, must not mint a role without the boundary, reach outside the prefix, or cross
 * from one service's resources to another's.
 */
import type { StepFunctionId } from '../../lambdas/steps/catalogue';
import { STEP_FUNCTION_IDS } from '../../lambdas/steps/catalogue';
import { SAMPLE, SAMPLE_IDS, concrete } from '../support/concrete-template';
import { type Decision, simulate } from '../support/iam-simulator';
import { logicalIdOf, resourcesOfType, synthesize } from './synth';

const { accountId: ACCOUNT, region: REGION } = SAMPLE;
const OTHER_ACCOUNT = '444455556666';
const iamArn = (resource: string) => `arn:aws:iam::${ACCOUNT}:${resource}`;
const ec2Arn = (resource: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:${resource}`;
const batchArn = (resource: string) => `arn:aws:batch:${REGION}:${ACCOUNT}:${resource}`;

const { json, stack } = synthesize();
const boundaryId = resourcesOfType(json, 'AWS::IAM::ManagedPolicy')[0]![0];
const BOUNDARY = concrete(json, `\${${boundaryId}}`) as string;
const tableId = resourcesOfType(json, 'AWS::DynamoDB::Table')[0]![0];
const TABLE = concrete(json, `\${${tableId}.Arn}`) as string;

/** The identity policies of a step function's role, as a deployment would hold them. */
function policiesOf(id: StepFunctionId): object[] {
  const roleId = logicalIdOf(stack.workflows.stepFunctions[id].role);
  return resourcesOfType(json, 'AWS::IAM::Policy')
    .filter(([, policy]) => policy.Properties!.Roles.some((role: { Ref: string }) => role.Ref === roleId))
    .map(([, policy]) => concrete(json, policy.Properties!.PolicyDocument));
}

interface Row {
  what: string;
  action: string;
  resource: string;
  resourceAccount?: string;
  context?: Record<string, string | string[]>;
  expected: Decision;
}

const withBoundary = { 'iam:PermissionsBoundary': BOUNDARY };
const ownTag = { [`aws:ResourceTag/managed-by`]: SAMPLE.stackName };
const ROWS: Record<StepFunctionId, Row[]> = {
  iam: [
    { what: 'creates an environment role with the boundary', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-job'), context: withBoundary, expected: 'Allowed' },
    { what: 'creates an environment role without a boundary', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-job'), expected: 'ExplicitlyDenied' },
    { what: 'creates an environment role with another boundary', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-job'), context: { 'iam:PermissionsBoundary': iamArn('policy/AdministratorAccess') }, expected: 'ExplicitlyDenied' },
    { what: 'creates a role outside the prefix, even with the boundary', action: 'iam:CreateRole', resource: iamArn('role/Escalated'), context: withBoundary, expected: 'ImplicitlyDenied' },
    { what: "rewrites an access role's policy while it carries the boundary", action: 'iam:PutRolePolicy', resource: iamArn('role/mfenv/mfenv-alice-access'), context: withBoundary, expected: 'Allowed' },
    { what: "rewrites a role's policy outside the prefix", action: 'iam:PutRolePolicy', resource: iamArn('role/ops/PlatformAdmin'), context: withBoundary, expected: 'ImplicitlyDenied' },
    { what: 'removes a boundary', action: 'iam:DeleteRolePermissionsBoundary', resource: iamArn('role/mfenv/mfenv-alice-job'), expected: 'ExplicitlyDenied' },
    { what: 'versions the boundary policy', action: 'iam:CreatePolicyVersion', resource: BOUNDARY, expected: 'ExplicitlyDenied' },
    { what: 'creates a managed policy', action: 'iam:CreatePolicy', resource: iamArn('policy/mfenv/anything'), expected: 'ImplicitlyDenied' },
    { what: 'attaches AdministratorAccess to an environment role', action: 'iam:AttachRolePolicy', resource: iamArn('role/mfenv/mfenv-alice-instance'), context: { ...withBoundary, 'iam:PolicyARN': 'arn:aws:iam::aws:policy/AdministratorAccess' }, expected: 'ImplicitlyDenied' },
    { what: 'attaches a policy to a person', action: 'iam:AttachUserPolicy', resource: iamArn('user/alice'), expected: 'ImplicitlyDenied' },
    { what: "retags alice's job role as bob's", action: 'iam:TagRole', resource: iamArn('role/mfenv/mfenv-alice-job'), context: { 'aws:ResourceTag/mfenv:environment': 'alice' }, expected: 'ExplicitlyDenied' },
    { what: 'passes an instance role to EC2', action: 'iam:PassRole', resource: iamArn('role/mfenv/mfenv-alice-instance'), context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, expected: 'Allowed' },
    { what: 'passes a job role to ECS tasks', action: 'iam:PassRole', resource: iamArn('role/mfenv/mfenv-alice-job'), context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, expected: 'ImplicitlyDenied' },
    { what: 'reads a bucket', action: 's3:GetObject', resource: 'arn:aws:s3:::mfenv-alice-1a2b3c4d/metaflow/x', resourceAccount: ACCOUNT, expected: 'ImplicitlyDenied' },
  ],
  bucket: [
    { what: "writes an environment bucket's policy", action: 's3:PutBucketPolicy', resource: 'arn:aws:s3:::mfenv-alice-1a2b3c4d', resourceAccount: ACCOUNT, context: { 's3:ResourceAccount': ACCOUNT }, expected: 'Allowed' },
    { what: "writes the policy of a bucket outside the prefix", action: 's3:PutBucketPolicy', resource: 'arn:aws:s3:::company-data-lake', resourceAccount: ACCOUNT, context: { 's3:ResourceAccount': ACCOUNT }, expected: 'ImplicitlyDenied' },
    { what: 'writes the policy of an mfenv-named bucket of another account', action: 's3:PutBucketPolicy', resource: 'arn:aws:s3:::mfenv-alice-9f8e7d6c', resourceAccount: OTHER_ACCOUNT, context: { 's3:ResourceAccount': OTHER_ACCOUNT }, expected: 'ImplicitlyDenied' },
    { what: "empties an environment bucket (purge)", action: 's3:DeleteObjectVersion', resource: 'arn:aws:s3:::mfenv-alice-1a2b3c4d/metaflow/x', resourceAccount: ACCOUNT, context: { 's3:ResourceAccount': ACCOUNT }, expected: 'Allowed' },
    { what: "reads an environment bucket's data", action: 's3:GetObject', resource: 'arn:aws:s3:::mfenv-alice-1a2b3c4d/metaflow/x', resourceAccount: ACCOUNT, context: { 's3:ResourceAccount': ACCOUNT }, expected: 'ImplicitlyDenied' },
    { what: 'creates a role', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-job'), context: withBoundary, expected: 'ImplicitlyDenied' },
  ],
  batch: [
    { what: "creates an environment's compute environment", action: 'batch:CreateComputeEnvironment', resource: batchArn('compute-environment/mfenv-alice'), expected: 'Allowed' },
    { what: 'creates a compute environment outside the prefix', action: 'batch:CreateComputeEnvironment', resource: batchArn('compute-environment/production'), expected: 'ImplicitlyDenied' },
    { what: 'passes an instance role to EC2', action: 'iam:PassRole', resource: iamArn('role/mfenv/mfenv-alice-instance'), context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, expected: 'Allowed' },
    { what: 'passes a job role to EC2', action: 'iam:PassRole', resource: iamArn('role/mfenv/mfenv-alice-job'), context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, expected: 'ImplicitlyDenied' },
    { what: 'submits a job', action: 'batch:SubmitJob', resource: batchArn('job-queue/mfenv-alice'), expected: 'ImplicitlyDenied' },
  ],
  network: [
    { what: 'creates a subnet tagged as this deployment’s', action: 'ec2:CreateSubnet', resource: ec2Arn('subnet/subnet-0fedcba9876543210'), context: { 'aws:RequestTag/managed-by': SAMPLE.stackName }, expected: 'Allowed' },
    { what: 'creates an untagged subnet', action: 'ec2:CreateSubnet', resource: ec2Arn('subnet/subnet-0fedcba9876543210'), expected: 'ImplicitlyDenied' },
    { what: 'deletes a subnet of this deployment', action: 'ec2:DeleteSubnet', resource: ec2Arn(`subnet/${SAMPLE_IDS.subnet}`), context: ownTag, expected: 'Allowed' },
    { what: "deletes another deployment's subnet", action: 'ec2:DeleteSubnet', resource: ec2Arn(`subnet/${SAMPLE_IDS.subnet}`), context: { 'aws:ResourceTag/managed-by': 'mfenv-team2' }, expected: 'ImplicitlyDenied' },
    { what: 'deletes an untagged subnet (a shared one)', action: 'ec2:DeleteSubnet', resource: ec2Arn(`subnet/${SAMPLE_IDS.subnet}`), expected: 'ImplicitlyDenied' },
    { what: 'claims an address block', action: 'dynamodb:PutItem', resource: TABLE, context: { 'dynamodb:LeadingKeys': ['NETWORK#10.20.128.0/23'] }, expected: 'Allowed' },
    { what: 'overwrites an environment record', action: 'dynamodb:PutItem', resource: TABLE, context: { 'dynamodb:LeadingKeys': ['ENV#alice'] }, expected: 'ImplicitlyDenied' },
    { what: 'deletes the VPC', action: 'ec2:DeleteVpc', resource: ec2Arn(`vpc/${SAMPLE_IDS.vpc}`), expected: 'ImplicitlyDenied' },
  ],
  scheduling: [
    { what: 'creates a Step Functions role with the boundary', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-sfn'), context: withBoundary, expected: 'Allowed' },
    { what: 'creates an events role without a boundary', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-events'), expected: 'ExplicitlyDenied' },
    { what: 'creates an access role', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-access'), context: withBoundary, expected: 'ImplicitlyDenied' },
    { what: "rewrites a job role's policy", action: 'iam:PutRolePolicy', resource: iamArn('role/mfenv/mfenv-alice-job'), context: withBoundary, expected: 'ImplicitlyDenied' },
    { what: 'passes the Step Functions role', action: 'iam:PassRole', resource: iamArn('role/mfenv/mfenv-alice-sfn'), context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'ImplicitlyDenied' },
    { what: "creates an environment's foreach table", action: 'dynamodb:CreateTable', resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/mfenv-alice-sfn`, expected: 'Allowed' },
    { what: 'deletes the registry table', action: 'dynamodb:DeleteTable', resource: TABLE, expected: 'ImplicitlyDenied' },
    { what: 'deletes a table outside the prefix', action: 'dynamodb:DeleteTable', resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/orders`, expected: 'ImplicitlyDenied' },
    { what: "deletes an environment's state machine", action: 'states:DeleteStateMachine', resource: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:mfenv-alice_HelloFlow`, expected: 'Allowed' },
    { what: 'deletes a state machine outside the prefix', action: 'states:DeleteStateMachine', resource: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:billing-nightly`, expected: 'ImplicitlyDenied' },
    { what: "deletes this deployment's teardown state machine", action: 'states:DeleteStateMachine', resource: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${SAMPLE.stackName}-teardown`, expected: 'ImplicitlyDenied' },
    { what: "deletes an environment's rule", action: 'events:DeleteRule', resource: `arn:aws:events:${REGION}:${ACCOUNT}:rule/mfenv-alice_HelloFlow`, expected: 'Allowed' },
    { what: "deletes Step Functions' Batch events rule", action: 'events:DeleteRule', resource: `arn:aws:events:${REGION}:${ACCOUNT}:rule/StepFunctionsGetEventsForBatchJobsRule`, expected: 'ImplicitlyDenied' },
    { what: "deregisters Metaflow's job definition", action: 'batch:DeregisterJobDefinition', resource: batchArn('job-definition/metaflow_0123abcd:1'), expected: 'Allowed' },
    { what: 'deregisters another job definition', action: 'batch:DeregisterJobDefinition', resource: batchArn('job-definition/etl-nightly:3'), expected: 'ImplicitlyDenied' },
  ],
  registry: [
    { what: 'updates an environment record', action: 'dynamodb:UpdateItem', resource: TABLE, expected: 'Allowed' },
    { what: 'deletes a table item', action: 'dynamodb:DeleteItem', resource: TABLE, expected: 'ImplicitlyDenied' },
    { what: 'creates a role', action: 'iam:CreateRole', resource: iamArn('role/mfenv/mfenv-alice-job'), context: withBoundary, expected: 'ImplicitlyDenied' },
  ],
};

let evaluations = 0;
afterAll(() => console.log(`step roles: ${evaluations} evaluations over ${STEP_FUNCTION_IDS.length} step functions`));

describe.each(STEP_FUNCTION_IDS)('the %s step function', (id) => {
  const roleArn = iamArn(`role/${logicalIdOf(stack.workflows.stepFunctions[id].role)}`);
  const principal = `arn:aws:sts::${ACCOUNT}:assumed-role/${logicalIdOf(stack.workflows.stepFunctions[id].role)}/${id}-steps`;

  it.each(ROWS[id])('$what ($action) → $expected', async ({ action, resource, resourceAccount, context, expected }) => {
    // act
    evaluations += 1;
    const decision = await simulate({
      identity: policiesOf(id),
      action,
      principal,
      resource,
      resourceAccount,
      context: { 'aws:PrincipalArn': roleArn, 'aws:PrincipalAccount': ACCOUNT, ...context },
    });
    // assess
    expect(decision).toBe(expected);
  });
});
