/**
 * Proof, by offline IAM evaluation, that the access role documents in lambdas/core/policies.ts mean what
 * they say: who may assume an environment's access role, what that role may then do, and that the
 * permissions boundary caps every environment role whatever its own policy grants.
 *
 * policies.test.ts checks the documents' shape; shape is not meaning (a condition on the wrong key, an
 * ArnLike that matches more than it seems, a boundary that lets an action through all read fine). Here
 * each row is a request as AWS would see it, context keys included, evaluated by an IAM simulator.
 */
import {
  accessRolePolicy,
  accessRoleTrustPolicy,
  batchJobLogGroupArn,
  bucketPolicy,
  eventsRolePolicy,
  eventsRoleTrustPolicy,
  instanceRolePolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
  permissionsBoundaryPolicy,
  sfnRolePolicy,
  sfnRoleTrustPolicy,
} from '../../../lambdas/core/policies';
import { namesFor } from '../../../lambdas/core/naming';
import {
  asIdentityCenterSession,
  asRoleSession,
  asRoot,
  asService,
  asUser,
  type Caller,
  type Decision,
  SimulationError,
  type SimulationRequest,
  simulate,
} from '../../support/iam-simulator';

const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '444455556666';
const REGION = 'us-east-1';
const deployment = { prefix: 'mfenv', accountId: ACCOUNT, region: REGION, stackName: 'mfenv' };
const alice = namesFor(deployment, 'alice');
const bob = namesFor(deployment, 'bob');
const logGroupArn = batchJobLogGroupArn(REGION, ACCOUNT);
// Built as the stack builds it (infra/registry.ts): pinned to the deployment's account and region.
const boundary = permissionsBoundaryPolicy(deployment.prefix, 'aws', { accountId: ACCOUNT, region: REGION });

// Every evaluation goes through here, so afterAll can report how much of the space the proof covers.
const evaluated = { count: 0, principals: new Set<string>(), actions: new Set<string>(), resources: new Set<string>() };
async function evaluate(request: SimulationRequest): Promise<Decision> {
  evaluated.count += 1;
  // A re-created user has the same ARN as the old one: the unique id is part of who the caller is.
  evaluated.principals.add(`${request.principal} ${String(request.context['aws:userid'] ?? '')}`);
  evaluated.actions.add(request.action);
  evaluated.resources.add(request.resource);
  return simulate(request);
}

afterAll(() => {
  const { count, principals, actions, resources } = evaluated;
  console.log(
    `IAM simulation matrix: ${count} evaluations over ${principals.size} principals × ${actions.size} actions × ${resources.size} resources (distinct).`,
  );
});

// ---------------------------------------------------------------------------------------------------------
// Callers. Unique ids are what AWS gives a user (AIDA…) or role (AROA…) at creation; a re-created
// principal with the same name gets a new one.
// ---------------------------------------------------------------------------------------------------------
const ALICE_ID = 'AIDAALICEEXAMPLE00001';
const ALICE_RECREATED_ID = 'AIDAALICEEXAMPLE00002';
const DATA_SCIENCE_ROLE_ID = 'AROADATASCIENCE000001';
const SSO_SUFFIX = '0123456789abcdef';

const user = (name: string, uniqueId: string, path?: string): Caller => asUser({ accountId: ACCOUNT, name, uniqueId, path });
const roleSession = (name: string, uniqueId: string, session: string, path?: string): Caller =>
  asRoleSession({ accountId: ACCOUNT, name, uniqueId, session, path });
const sso = (permissionSet: string, userName: string, options: { suffix?: string; region?: string; roleUniqueId?: string } = {}): Caller =>
  asIdentityCenterSession({
    accountId: ACCOUNT,
    permissionSet,
    userName,
    suffix: options.suffix ?? SSO_SUFFIX,
    region: options.region,
    roleUniqueId: options.roleUniqueId ?? `AROASSO${permissionSet.toUpperCase().replace(/[^A-Z0-9]/g, '').padEnd(14, '0').slice(0, 14)}`,
  });

const ADMIN_USER = `arn:aws:iam::${ACCOUNT}:user/platform-admin`;
const ADMIN_ROLE = `arn:aws:iam::${ACCOUNT}:role/ops/PlatformAdmin`;
const ROOT = `arn:aws:iam::${ACCOUNT}:root`;
const admins = [ADMIN_USER, ADMIN_ROLE];

const adminUser = user('platform-admin', 'AIDAPLATFORMADMIN0001');
const adminRoleSession = roleSession('PlatformAdmin', 'AROAPLATFORMADMIN0001', 'carol', '/ops/');

// ---------------------------------------------------------------------------------------------------------
// Who may assume an access role.
// ---------------------------------------------------------------------------------------------------------

/** The trust policies of the environments under test, one per kind of owner. */
const trusts = {
  aliceUser: accessRoleTrustPolicy({ owner: `arn:aws:iam::${ACCOUNT}:user/alice`, ownerUniqueId: ALICE_ID, admins }),
  aliceUserRootAdmin: accessRoleTrustPolicy({ owner: `arn:aws:iam::${ACCOUNT}:user/alice`, ownerUniqueId: ALICE_ID, admins: [...admins, ROOT] }),
  dataScienceRole: accessRoleTrustPolicy({ owner: `arn:aws:iam::${ACCOUNT}:role/DataScience`, ownerUniqueId: DATA_SCIENCE_ROLE_ID, admins }),
  dataScienceRoleNoId: accessRoleTrustPolicy({ owner: `arn:aws:iam::${ACCOUNT}:role/DataScience`, ownerUniqueId: null, admins }),
  // Identity Center owners are recorded without a unique id: Identity Center re-creates its roles at will.
  aliceSso: accessRoleTrustPolicy({
    owner: `arn:aws:sts::${ACCOUNT}:assumed-role/AWSReservedSSO_DataScience_${SSO_SUFFIX}/alice@example.com`,
    ownerUniqueId: null,
    admins,
  }),
  bobWithSsoAdmin: accessRoleTrustPolicy({
    owner: `arn:aws:iam::${ACCOUNT}:user/bob`,
    ownerUniqueId: 'AIDABOBEXAMPLE0000001',
    admins: [`arn:aws:sts::${ACCOUNT}:assumed-role/AWSReservedSSO_Platform_89abcdef01234567/carol@example.com`],
  }),
  bobWithSsoRoleAdmin: accessRoleTrustPolicy({
    owner: `arn:aws:iam::${ACCOUNT}:user/bob`,
    ownerUniqueId: 'AIDABOBEXAMPLE0000001',
    admins: [`arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Platform_89abcdef01234567`],
  }),
};

interface TrustRow {
  environment: keyof typeof trusts;
  who: string;
  caller: Caller;
  expected: Decision;
}

const trustRows: TrustRow[] = [
  // alice's environment: owned by the IAM user alice, whose unique id was recorded.
  { environment: 'aliceUser', who: 'alice', caller: user('alice', ALICE_ID), expected: 'Allowed' },
  { environment: 'aliceUser', who: 'alice deleted and re-created (same ARN, new unique id)', caller: user('alice', ALICE_RECREATED_ID), expected: 'ImplicitlyDenied' },
  { environment: 'aliceUser', who: 'alice under the path /team/ (user names are unique whatever the path)', caller: user('alice', ALICE_ID, '/team/'), expected: 'Allowed' },
  { environment: 'aliceUser', who: 'bob', caller: user('bob', 'AIDABOBEXAMPLE0000001'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceUser', who: 'malice (a name ending in alice)', caller: user('malice', 'AIDAMALICEEXAMPLE0001'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceUser', who: 'the admin user', caller: adminUser, expected: 'Allowed' },
  { environment: 'aliceUser', who: 'a session of the admin role (role/ops/PlatformAdmin)', caller: adminRoleSession, expected: 'Allowed' },
  { environment: 'aliceUser', who: 'a session of a non-admin role, named after alice', caller: roleSession('Analyst', 'AROAANALYST0000000001', 'alice'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceUser', who: 'a role named alice', caller: roleSession('alice', 'AROAALICEROLE00000001', 'alice'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceUser', who: 'an IAM user alice in another account', caller: asUser({ accountId: OTHER_ACCOUNT, name: 'alice', uniqueId: 'AIDAOUTSIDER000000001' }), expected: 'ImplicitlyDenied' },
  {
    environment: 'aliceUser',
    who: 'a role PlatformAdmin in another account',
    caller: asRoleSession({ accountId: OTHER_ACCOUNT, name: 'PlatformAdmin', path: '/ops/', uniqueId: 'AROAOUTSIDER000000001', session: 'carol' }),
    expected: 'ImplicitlyDenied',
  },
  { environment: 'aliceUser', who: 'the account root (not an admin)', caller: asRoot({ accountId: ACCOUNT }), expected: 'ImplicitlyDenied' },
  { environment: 'aliceUserRootAdmin', who: 'the account root (an admin)', caller: asRoot({ accountId: ACCOUNT }), expected: 'Allowed' },
  { environment: 'aliceUserRootAdmin', who: 'the root of another account', caller: asRoot({ accountId: OTHER_ACCOUNT }), expected: 'ImplicitlyDenied' },

  // An environment owned by the role DataScience (recorded without path, with its unique id).
  { environment: 'dataScienceRole', who: 'a session "alice" of role/DataScience', caller: roleSession('DataScience', DATA_SCIENCE_ROLE_ID, 'alice'), expected: 'Allowed' },
  { environment: 'dataScienceRole', who: 'a session "ci-1234" of role/DataScience', caller: roleSession('DataScience', DATA_SCIENCE_ROLE_ID, 'ci-1234'), expected: 'Allowed' },
  {
    environment: 'dataScienceRole',
    who: 'a session of role/team/DataScience with the same unique id (the same role, its path not recorded)',
    caller: roleSession('DataScience', DATA_SCIENCE_ROLE_ID, 'alice', '/team/'),
    expected: 'Allowed',
  },
  { environment: 'dataScienceRole', who: 'role/DataScience deleted and re-created (new unique id)', caller: roleSession('DataScience', 'AROADATASCIENCE000002', 'alice'), expected: 'ImplicitlyDenied' },
  {
    environment: 'dataScienceRole',
    who: 'role/Other/DataScience, a different role that took the name (new unique id)',
    caller: roleSession('DataScience', 'AROADATASCIENCE000003', 'alice', '/Other/'),
    expected: 'ImplicitlyDenied',
  },
  { environment: 'dataScienceRole', who: 'role/DataScience2', caller: roleSession('DataScience2', 'AROADATASCIENCE200001', 'alice'), expected: 'ImplicitlyDenied' },
  { environment: 'dataScienceRole', who: 'role/DataScience/Reader (the name as a path)', caller: roleSession('Reader', 'AROAREADER00000000001', 'alice', '/DataScience/'), expected: 'ImplicitlyDenied' },
  { environment: 'dataScienceRole', who: 'the IAM user DataScience', caller: user('DataScience', 'AIDADATASCIENCE000001'), expected: 'ImplicitlyDenied' },
  {
    environment: 'dataScienceRole',
    who: 'role/DataScience in another account',
    caller: asRoleSession({ accountId: OTHER_ACCOUNT, name: 'DataScience', uniqueId: 'AROAOUTSIDER000000002', session: 'alice' }),
    expected: 'ImplicitlyDenied',
  },
  { environment: 'dataScienceRole', who: 'a session of the admin role', caller: adminRoleSession, expected: 'Allowed' },
  // Without a recorded unique id, the role's name is all there is; a name is unique in an account whatever the path.
  { environment: 'dataScienceRoleNoId', who: 'role/Other/DataScience (unique id unknown)', caller: roleSession('DataScience', 'AROADATASCIENCE000003', 'alice', '/Other/'), expected: 'Allowed' },
  { environment: 'dataScienceRoleNoId', who: 'role/DataScience2 (unique id unknown)', caller: roleSession('DataScience2', 'AROADATASCIENCE200001', 'alice'), expected: 'ImplicitlyDenied' },

  // An environment owned by alice@example.com signed in through Identity Center on the permission set DataScience.
  { environment: 'aliceSso', who: 'alice on DataScience', caller: sso('DataScience', 'alice@example.com'), expected: 'Allowed' },
  { environment: 'aliceSso', who: 'alice on DataScience, region in the role path', caller: sso('DataScience', 'alice@example.com', { region: 'eu-west-1' }), expected: 'Allowed' },
  {
    environment: 'aliceSso',
    who: 'alice on DataScience after Identity Center re-created the role (new suffix, new unique id)',
    caller: sso('DataScience', 'alice@example.com', { suffix: 'fedcba9876543210', roleUniqueId: 'AROASSORECREATED00001' }),
    expected: 'Allowed',
  },
  { environment: 'aliceSso', who: 'bob@example.com on the same permission set', caller: sso('DataScience', 'bob@example.com'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceSso', who: 'malice@example.com on the same permission set', caller: sso('DataScience', 'malice@example.com'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceSso', who: 'alice on DataScienceAdmin', caller: sso('DataScienceAdmin', 'alice@example.com'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceSso', who: 'alice on DataScience_Admin', caller: sso('DataScience_Admin', 'alice@example.com'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceSso', who: 'alice on Team_DataScience', caller: sso('Team_DataScience', 'alice@example.com'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceSso', who: 'alice on X_AWSReservedSSO_DataScience (a set named to end like another)', caller: sso('X_AWSReservedSSO_DataScience', 'alice@example.com'), expected: 'ImplicitlyDenied' },
  {
    environment: 'aliceSso',
    who: 'a plain role named AWSReservedSSO_DataScience_… outside /aws-reserved/, session alice@example.com',
    caller: roleSession(`AWSReservedSSO_DataScience_${SSO_SUFFIX}`, 'AROAIMPOSTOR000000001', 'alice@example.com'),
    expected: 'ImplicitlyDenied',
  },
  {
    environment: 'aliceSso',
    who: 'a plain role AWSReservedSSO_DataScience_… under /evil/aws-reserved/sso.amazonaws.com/',
    caller: roleSession(`AWSReservedSSO_DataScience_${SSO_SUFFIX}`, 'AROAIMPOSTOR000000002', 'alice@example.com', '/evil/aws-reserved/sso.amazonaws.com/'),
    expected: 'ImplicitlyDenied',
  },
  { environment: 'aliceSso', who: 'a session alice@example.com of role/DataScience', caller: roleSession('DataScience', DATA_SCIENCE_ROLE_ID, 'alice@example.com'), expected: 'ImplicitlyDenied' },
  { environment: 'aliceSso', who: 'the admin user', caller: adminUser, expected: 'Allowed' },

  // An admin given as one person's Identity Center session is that person, not the permission set.
  { environment: 'bobWithSsoAdmin', who: 'carol on Platform (the admin)', caller: sso('Platform', 'carol@example.com', { suffix: '89abcdef01234567' }), expected: 'Allowed' },
  {
    environment: 'bobWithSsoAdmin',
    who: 'carol on Platform, region in the role path',
    caller: sso('Platform', 'carol@example.com', { suffix: '89abcdef01234567', region: 'eu-west-1' }),
    expected: 'Allowed',
  },
  { environment: 'bobWithSsoAdmin', who: 'dave on Platform', caller: sso('Platform', 'dave@example.com', { suffix: '89abcdef01234567' }), expected: 'ImplicitlyDenied' },
  { environment: 'bobWithSsoAdmin', who: 'carol on DataScience', caller: sso('DataScience', 'carol@example.com'), expected: 'ImplicitlyDenied' },
  // An admin given as the Identity Center role itself is everyone on that permission set.
  { environment: 'bobWithSsoRoleAdmin', who: 'dave on Platform (admin role named)', caller: sso('Platform', 'dave@example.com', { suffix: '89abcdef01234567' }), expected: 'Allowed' },
  { environment: 'bobWithSsoRoleAdmin', who: 'dave on DataScience (admin role named)', caller: sso('DataScience', 'dave@example.com'), expected: 'ImplicitlyDenied' },
];

/** An identity policy as generous about sts:AssumeRole as can be: the trust policy alone must decide. */
const ASSUME_ANY_ROLE = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] };

describe.each([
  // Same account, trust naming the principal: AWS needs nothing from the caller's own policies.
  { callerPolicy: 'no identity policy', identity: undefined },
  // "Nobody else, whatever their own policies say": an identity grant cannot open a trust policy.
  { callerPolicy: 'an identity policy allowing sts:AssumeRole on *', identity: ASSUME_ANY_ROLE },
])('who may assume an access role (callers with $callerPolicy)', ({ identity }) => {
  it.each(trustRows)('$environment: $who → $expected', async ({ environment, caller, expected }) => {
    // prepare
    const request: SimulationRequest = {
      identity,
      resourcePolicy: trusts[environment],
      action: 'sts:AssumeRole',
      resource: alice.accessRoleArn,
      ...caller,
    };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------
// What alice's access role may do, with its inline policy AND the permissions boundary it carries.
// ---------------------------------------------------------------------------------------------------------

/**
 * A role of an environment carries the tags the boundary reads (mfenv:environment, mfenv:bucket); AWS puts
 * a role's tags in every request of its sessions as aws:PrincipalTag/<key>.
 */
function taggedFor(caller: Caller, names: typeof alice, environment: string): Caller {
  return {
    ...caller,
    context: { ...caller.context, 'aws:PrincipalTag/mfenv:environment': environment, 'aws:PrincipalTag/mfenv:bucket': names.bucket },
  };
}

const aliceAccess = taggedFor(roleSession(alice.accessRoleName, 'AROAALICEACCESS000001', 'alice', alice.iamPath), alice, 'alice');
const batchArn = (resource: string) => `arn:aws:batch:${REGION}:${ACCOUNT}:${resource}`;
const sfnArn = (resource: string) => `arn:aws:states:${REGION}:${ACCOUNT}:${resource}`;
const ruleArn = (name: string) => `arn:aws:events:${REGION}:${ACCOUNT}:rule/${name}`;
const HTTPS = { 'aws:SecureTransport': 'true' };

interface ActionRow {
  what: string;
  action: string;
  resource: string;
  resourceAccount?: string;
  context?: Record<string, string>;
  resourcePolicy?: object;
  expected: Decision;
}

const accessRows: ActionRow[] = [
  // S3: the requests carry the bucket's own policy (TLS only), as they would on AWS.
  { what: "GetObject in alice's bucket", action: 's3:GetObject', resource: `${alice.bucketArn}/metaflow/Flow/1/_parameters`, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(alice, true), expected: 'Allowed' },
  { what: "PutObject in alice's bucket", action: 's3:PutObject', resource: `${alice.bucketArn}/data/x.parquet`, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(alice, true), expected: 'Allowed' },
  { what: "ListBucket on alice's bucket", action: 's3:ListBucket', resource: alice.bucketArn, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(alice, true), expected: 'Allowed' },
  { what: "GetObject in alice's bucket over plain HTTP", action: 's3:GetObject', resource: `${alice.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, context: { 'aws:SecureTransport': 'false' }, resourcePolicy: bucketPolicy(alice, true), expected: 'ExplicitlyDenied' },
  { what: "GetObject in bob's bucket", action: 's3:GetObject', resource: `${bob.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(bob, true), expected: 'ImplicitlyDenied' },
  { what: "PutObject in bob's bucket", action: 's3:PutObject', resource: `${bob.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(bob, true), expected: 'ImplicitlyDenied' },
  { what: "ListBucket on bob's bucket", action: 's3:ListBucket', resource: bob.bucketArn, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(bob, true), expected: 'ImplicitlyDenied' },
  { what: "DeleteBucket on alice's bucket", action: 's3:DeleteBucket', resource: alice.bucketArn, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(alice, true), expected: 'ImplicitlyDenied' },
  { what: "PutBucketPolicy on alice's bucket", action: 's3:PutBucketPolicy', resource: alice.bucketArn, resourceAccount: ACCOUNT, context: HTTPS, resourcePolicy: bucketPolicy(alice, true), expected: 'ImplicitlyDenied' },
  // Batch.
  { what: "SubmitJob to alice's queue", action: 'batch:SubmitJob', resource: alice.jobQueueArn, expected: 'Allowed' },
  { what: 'SubmitJob with job-definition/metaflow_abc', action: 'batch:SubmitJob', resource: batchArn('job-definition/metaflow_abc'), expected: 'Allowed' },
  { what: 'SubmitJob with job-definition/metaflow_abc:3 (a revision)', action: 'batch:SubmitJob', resource: batchArn('job-definition/metaflow_abc:3'), expected: 'Allowed' },
  { what: "SubmitJob to bob's queue", action: 'batch:SubmitJob', resource: bob.jobQueueArn, expected: 'ImplicitlyDenied' },
  { what: 'SubmitJob with job-definition/other', action: 'batch:SubmitJob', resource: batchArn('job-definition/other'), expected: 'ImplicitlyDenied' },
  { what: 'RegisterJobDefinition metaflow_abc', action: 'batch:RegisterJobDefinition', resource: batchArn('job-definition/metaflow_abc'), expected: 'Allowed' },
  { what: 'RegisterJobDefinition other_abc', action: 'batch:RegisterJobDefinition', resource: batchArn('job-definition/other_abc'), expected: 'ImplicitlyDenied' },
  { what: 'DescribeJobs', action: 'batch:DescribeJobs', resource: '*', expected: 'Allowed' },
  { what: "UpdateJobQueue on alice's queue", action: 'batch:UpdateJobQueue', resource: alice.jobQueueArn, expected: 'ImplicitlyDenied' },
  // iam:PassRole: alice's job role, to ECS tasks only.
  { what: "PassRole alice's job role to ecs-tasks", action: 'iam:PassRole', resource: alice.jobRoleArn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, expected: 'Allowed' },
  { what: "PassRole bob's job role to ecs-tasks", action: 'iam:PassRole', resource: bob.jobRoleArn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: "PassRole alice's job role to ec2", action: 'iam:PassRole', resource: alice.jobRoleArn, context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: "PassRole alice's access role to ecs-tasks", action: 'iam:PassRole', resource: alice.accessRoleArn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  // IAM and STS: nothing.
  { what: 'CreateRole', action: 'iam:CreateRole', resource: `arn:aws:iam::${ACCOUNT}:role/mfenv/mfenv-evil-access`, expected: 'ImplicitlyDenied' },
  { what: 'AttachUserPolicy on alice', action: 'iam:AttachUserPolicy', resource: `arn:aws:iam::${ACCOUNT}:user/alice`, expected: 'ImplicitlyDenied' },
  { what: 'PutRolePolicy on its own role', action: 'iam:PutRolePolicy', resource: alice.accessRoleArn, expected: 'ImplicitlyDenied' },
  { what: 'DeleteRolePermissionsBoundary on its own role', action: 'iam:DeleteRolePermissionsBoundary', resource: alice.accessRoleArn, expected: 'ImplicitlyDenied' },
  {
    what: "AssumeRole of bob's access role",
    action: 'sts:AssumeRole',
    resource: bob.accessRoleArn,
    resourcePolicy: accessRoleTrustPolicy({ owner: `arn:aws:iam::${ACCOUNT}:user/bob`, ownerUniqueId: 'AIDABOBEXAMPLE0000001', admins }),
    expected: 'ImplicitlyDenied',
  },
  // Logs: the Batch job log group only.
  { what: 'GetLogEvents on the Batch job log group', action: 'logs:GetLogEvents', resource: `${logGroupArn}:log-stream:metaflow_abc/default/0123abcd`, expected: 'Allowed' },
  { what: 'GetLogEvents on another log group', action: 'logs:GetLogEvents', resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/mfenv-api:log-stream:x`, expected: 'ImplicitlyDenied' },
  // Scheduled flows: state machines and rules under alice's prefix only; her two scheduling roles, each to its service.
  { what: 'CreateStateMachine mfenv-alice_NightlyFlow', action: 'states:CreateStateMachine', resource: sfnArn('stateMachine:mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: 'UpdateStateMachine mfenv-alice_NightlyFlow', action: 'states:UpdateStateMachine', resource: sfnArn('stateMachine:mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: 'DeleteStateMachine mfenv-alice_NightlyFlow', action: 'states:DeleteStateMachine', resource: sfnArn('stateMachine:mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: 'StartExecution of mfenv-alice_NightlyFlow', action: 'states:StartExecution', resource: sfnArn('stateMachine:mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: 'StopExecution of a run of mfenv-alice_NightlyFlow', action: 'states:StopExecution', resource: sfnArn('execution:mfenv-alice_NightlyFlow:sfn-0123'), expected: 'Allowed' },
  { what: 'ListStateMachines (takes no resource)', action: 'states:ListStateMachines', resource: '*', expected: 'Allowed' },
  { what: "CreateStateMachine under bob's prefix", action: 'states:CreateStateMachine', resource: sfnArn('stateMachine:mfenv-bob_NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: "DeleteStateMachine of bob's flow", action: 'states:DeleteStateMachine', resource: sfnArn('stateMachine:mfenv-bob_NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: 'CreateStateMachine under alice-2 (a name alice\'s starts)', action: 'states:CreateStateMachine', resource: sfnArn('stateMachine:mfenv-alice-2_NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: 'CreateStateMachine without a prefix', action: 'states:CreateStateMachine', resource: sfnArn('stateMachine:NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: 'StartExecution of the deployment\'s teardown', action: 'states:StartExecution', resource: sfnArn('stateMachine:mfenv-teardown'), expected: 'ImplicitlyDenied' },
  { what: 'PutRule mfenv-alice_NightlyFlow', action: 'events:PutRule', resource: ruleArn('mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: 'PutTargets on mfenv-alice_NightlyFlow', action: 'events:PutTargets', resource: ruleArn('mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: 'DeleteRule mfenv-alice_NightlyFlow', action: 'events:DeleteRule', resource: ruleArn('mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: "PutRule under bob's prefix", action: 'events:PutRule', resource: ruleArn('mfenv-bob_NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: 'PutRule without a prefix', action: 'events:PutRule', resource: ruleArn('NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: "PutTargets on Step Functions' Batch events rule", action: 'events:PutTargets', resource: ruleArn('StepFunctionsGetEventsForBatchJobsRule'), expected: 'ImplicitlyDenied' },
  { what: "PassRole alice's Step Functions role to states", action: 'iam:PassRole', resource: alice.sfnRoleArn, context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'Allowed' },
  { what: "PassRole alice's events role to events", action: 'iam:PassRole', resource: alice.eventsRoleArn, context: { 'iam:PassedToService': 'events.amazonaws.com' }, expected: 'Allowed' },
  { what: "PassRole alice's Step Functions role to events", action: 'iam:PassRole', resource: alice.sfnRoleArn, context: { 'iam:PassedToService': 'events.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: "PassRole alice's job role to states", action: 'iam:PassRole', resource: alice.jobRoleArn, context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: "PassRole bob's Step Functions role to states", action: 'iam:PassRole', resource: bob.sfnRoleArn, context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: 'PassRole an admin role to states', action: 'iam:PassRole', resource: `arn:aws:iam::${ACCOUNT}:role/ops/PlatformAdmin`, context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: "GetItem in alice's foreach table (the tasks', not the client's)", action: 'dynamodb:GetItem', resource: alice.sfnTableArn, expected: 'ImplicitlyDenied' },
  // Nothing else.
  { what: 'RunInstances', action: 'ec2:RunInstances', resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`, expected: 'ImplicitlyDenied' },
];

describe.each([
  // What the role really gets on AWS: every Allowed row passes both the inline policy and the boundary.
  { layers: 'inline policy + permissions boundary', withBoundary: boundary },
  // The inline policy must be least privilege on its own; without this pass, a rule loosened in it would
  // go unnoticed wherever the boundary happens to repeat the rule.
  { layers: 'inline policy alone', withBoundary: undefined },
])("what alice's access role may do ($layers)", ({ withBoundary }) => {
  const identity = accessRolePolicy(alice, logGroupArn);

  it.each(accessRows)('$what → $expected', async ({ action, resource, resourceAccount, context, resourcePolicy, expected }) => {
    // prepare
    const request: SimulationRequest = {
      identity,
      boundary: withBoundary,
      resourcePolicy,
      action,
      resource,
      resourceAccount,
      principal: aliceAccess.principal,
      context: { ...aliceAccess.context, ...context },
    };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The boundary alone caps any role: even an identity policy allowing everything stays inside it.
// ---------------------------------------------------------------------------------------------------------

const ALLOW_EVERYTHING = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
/** A role of alice's environment (its tags say so) whose own policy went rogue. */
const rogue = taggedFor(roleSession('mfenv-rogue-instance', 'AROAROGUEINSTANCE0001', 'i-0123456789abcdef0', alice.iamPath), alice, 'alice');
/** The same, had it been created without the tags: the boundary's policy variables then match nothing. */
const untaggedRogue = roleSession('mfenv-rogue-instance', 'AROAROGUEINSTANCE0002', 'i-0123456789abcdef1', alice.iamPath);
/** A role whose trust admits the whole account: the caller's identity policy decides (and so its boundary). */
const accountWideTrust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' }] };

const cappedRows: ActionRow[] = [
  { what: 'iam:CreateRole', action: 'iam:CreateRole', resource: `arn:aws:iam::${ACCOUNT}:role/Escalated`, expected: 'ImplicitlyDenied' },
  { what: 'iam:CreatePolicyVersion of the boundary itself', action: 'iam:CreatePolicyVersion', resource: `arn:aws:iam::${ACCOUNT}:policy/mfenv/mfenv-environment-boundary`, expected: 'ImplicitlyDenied' },
  { what: 'iam:AttachRolePolicy on its own role', action: 'iam:AttachRolePolicy', resource: `arn:aws:iam::${ACCOUNT}:role/mfenv/mfenv-rogue-instance`, expected: 'ImplicitlyDenied' },
  { what: 'iam:DeleteRolePermissionsBoundary on its own role', action: 'iam:DeleteRolePermissionsBoundary', resource: `arn:aws:iam::${ACCOUNT}:role/mfenv/mfenv-rogue-instance`, expected: 'ImplicitlyDenied' },
  { what: 'iam:PassRole of an admin role to ec2', action: 'iam:PassRole', resource: `arn:aws:iam::${ACCOUNT}:role/ops/PlatformAdmin`, context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: 'sts:AssumeRole of a role trusting the account', action: 'sts:AssumeRole', resource: `arn:aws:iam::${ACCOUNT}:role/ops/PlatformAdmin`, resourcePolicy: accountWideTrust, expected: 'ImplicitlyDenied' },
  { what: 's3:GetObject in a non-mfenv bucket', action: 's3:GetObject', resource: 'arn:aws:s3:::company-data-lake/customers.csv', resourceAccount: ACCOUNT, expected: 'ImplicitlyDenied' },
  { what: 's3:DeleteBucket on an mfenv bucket', action: 's3:DeleteBucket', resource: alice.bucketArn, resourceAccount: ACCOUNT, expected: 'ImplicitlyDenied' },
  { what: 'ec2:RunInstances', action: 'ec2:RunInstances', resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`, expected: 'ImplicitlyDenied' },
  { what: 'batch:SubmitJob to a queue outside mfenv', action: 'batch:SubmitJob', resource: batchArn('job-queue/production'), expected: 'ImplicitlyDenied' },
  { what: 'batch:SubmitJob to an mfenv queue in another region', action: 'batch:SubmitJob', resource: `arn:aws:batch:eu-west-1:${ACCOUNT}:job-queue/mfenv-alice`, expected: 'ImplicitlyDenied' },
  // The boundary is per environment: from the role's own tags, its own bucket, queue and job role only.
  { what: "s3:GetObject in its own environment's bucket", action: 's3:GetObject', resource: `${alice.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, expected: 'Allowed' },
  { what: "s3:GetObject in bob's bucket", action: 's3:GetObject', resource: `${bob.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, expected: 'ImplicitlyDenied' },
  { what: "s3:PutObject in bob's bucket", action: 's3:PutObject', resource: `${bob.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, expected: 'ImplicitlyDenied' },
  { what: "batch:SubmitJob to its own environment's queue", action: 'batch:SubmitJob', resource: alice.jobQueueArn, expected: 'Allowed' },
  { what: "batch:SubmitJob to bob's queue", action: 'batch:SubmitJob', resource: bob.jobQueueArn, expected: 'ImplicitlyDenied' },
  { what: "iam:PassRole of its own environment's job role to ecs-tasks", action: 'iam:PassRole', resource: alice.jobRoleArn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, expected: 'Allowed' },
  { what: "iam:PassRole of bob's job role to ecs-tasks", action: 'iam:PassRole', resource: bob.jobRoleArn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: "states:CreateStateMachine under its own environment's prefix", action: 'states:CreateStateMachine', resource: sfnArn('stateMachine:mfenv-alice_NightlyFlow'), expected: 'Allowed' },
  { what: "states:CreateStateMachine under bob's prefix", action: 'states:CreateStateMachine', resource: sfnArn('stateMachine:mfenv-bob_NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: 'states:CreateStateMachine without a prefix', action: 'states:CreateStateMachine', resource: sfnArn('stateMachine:NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: "events:PutRule under bob's prefix", action: 'events:PutRule', resource: ruleArn('mfenv-bob_NightlyFlow'), expected: 'ImplicitlyDenied' },
  { what: "events:PutTargets on Step Functions' Batch events rule", action: 'events:PutTargets', resource: ruleArn('StepFunctionsGetEventsForBatchJobsRule'), expected: 'Allowed' },
  { what: "dynamodb:UpdateItem in its own environment's foreach table", action: 'dynamodb:UpdateItem', resource: alice.sfnTableArn, expected: 'Allowed' },
  { what: "dynamodb:UpdateItem in bob's foreach table", action: 'dynamodb:UpdateItem', resource: bob.sfnTableArn, expected: 'ImplicitlyDenied' },
  { what: "dynamodb:DeleteTable of its own environment's table", action: 'dynamodb:DeleteTable', resource: alice.sfnTableArn, expected: 'ImplicitlyDenied' },
  { what: "iam:PassRole of its own Step Functions role to states", action: 'iam:PassRole', resource: alice.sfnRoleArn, context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'Allowed' },
  { what: "iam:PassRole of bob's Step Functions role to states", action: 'iam:PassRole', resource: bob.sfnRoleArn, context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'ImplicitlyDenied' },
  { what: "iam:PassRole of its own events role to states", action: 'iam:PassRole', resource: alice.eventsRoleArn, context: { 'iam:PassedToService': 'states.amazonaws.com' }, expected: 'ImplicitlyDenied' },
];

describe('a role created without the environment tags gets nothing from the boundary', () => {
  it.each([
    ['s3:GetObject', `${alice.bucketArn}/metaflow/x`, {}],
    ['batch:SubmitJob', alice.jobQueueArn, {}],
    ['iam:PassRole', alice.jobRoleArn, { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }],
  ])('%s on %s → ImplicitlyDenied', async (action, resource, context) => {
    // act
    const decision = await evaluate({
      identity: ALLOW_EVERYTHING,
      boundary,
      action,
      resource,
      resourceAccount: ACCOUNT,
      principal: untaggedRogue.principal,
      context: { ...untaggedRogue.context, ...context },
    });
    // assess
    expect(decision).toBe('ImplicitlyDenied');
  });
});

describe('the permissions boundary caps a role whose own policy allows everything', () => {
  it.each(cappedRows)('$what → $expected', async ({ action, resource, resourceAccount, context, resourcePolicy, expected }) => {
    // prepare
    const request: SimulationRequest = {
      identity: ALLOW_EVERYTHING,
      boundary,
      resourcePolicy,
      action,
      resource,
      resourceAccount,
      principal: rogue.principal,
      context: { ...rogue.context, ...context },
    };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe(expected);
  });

  // Control: without the boundary the same requests go through, so each deny above is the boundary's doing
  // (and not a request the simulator would have refused anyway).
  it.each(cappedRows.filter((row) => row.expected !== 'Allowed'))('without the boundary, $what → Allowed', async ({ action, resource, resourceAccount, context, resourcePolicy }) => {
    // prepare
    const request: SimulationRequest = {
      identity: ALLOW_EVERYTHING,
      resourcePolicy,
      action,
      resource,
      resourceAccount,
      principal: rogue.principal,
      context: { ...rogue.context, ...context },
    };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe('Allowed');
  });
});

// ---------------------------------------------------------------------------------------------------------
// The job role a Batch task runs with.
// ---------------------------------------------------------------------------------------------------------

describe("alice's job role", () => {
  const task = taggedFor(roleSession(alice.jobRoleName, 'AROAALICEJOB000000001', 'ecs-task-0123', alice.iamPath), alice, 'alice');

  it.each<{ who: string; caller: Caller; expected: Decision }>([
    { who: 'ECS tasks of this account', caller: asService({ principal: 'ecs-tasks.amazonaws.com', sourceAccount: ACCOUNT }), expected: 'Allowed' },
    { who: 'ECS tasks of another account', caller: asService({ principal: 'ecs-tasks.amazonaws.com', sourceAccount: OTHER_ACCOUNT }), expected: 'ImplicitlyDenied' },
    { who: 'EC2', caller: asService({ principal: 'ec2.amazonaws.com', sourceAccount: ACCOUNT }), expected: 'ImplicitlyDenied' },
    { who: 'alice', caller: user('alice', ALICE_ID), expected: 'ImplicitlyDenied' },
  ])('is assumable by $who → $expected', async ({ caller, expected }) => {
    // prepare
    const request: SimulationRequest = { resourcePolicy: jobRoleTrustPolicy(ACCOUNT), action: 'sts:AssumeRole', resource: alice.jobRoleArn, ...caller };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe(expected);
  });

  it.each<ActionRow>([
    { what: "GetObject in alice's bucket", action: 's3:GetObject', resource: `${alice.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, expected: 'Allowed' },
    { what: "PutObject in alice's bucket", action: 's3:PutObject', resource: `${alice.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, expected: 'Allowed' },
    { what: "ListBucket on alice's bucket", action: 's3:ListBucket', resource: alice.bucketArn, resourceAccount: ACCOUNT, expected: 'Allowed' },
    { what: "GetObject in bob's bucket", action: 's3:GetObject', resource: `${bob.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, expected: 'ImplicitlyDenied' },
    { what: "SubmitJob to alice's queue", action: 'batch:SubmitJob', resource: alice.jobQueueArn, expected: 'ImplicitlyDenied' },
    { what: "UpdateItem in alice's foreach table (a scheduled foreach)", action: 'dynamodb:UpdateItem', resource: alice.sfnTableArn, expected: 'Allowed' },
    { what: "PutItem in bob's foreach table", action: 'dynamodb:PutItem', resource: bob.sfnTableArn, expected: 'ImplicitlyDenied' },
    { what: "DeleteTable of alice's foreach table", action: 'dynamodb:DeleteTable', resource: alice.sfnTableArn, expected: 'ImplicitlyDenied' },
  ])('$what → $expected', async ({ action, resource, resourceAccount, expected }) => {
    // prepare
    const request: SimulationRequest = {
      identity: jobRolePolicy(alice),
      boundary,
      action,
      resource,
      resourceAccount,
      ...task,
      context: { ...task.context, ...HTTPS },
    };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Scheduled flows: the role Step Functions runs alice's flows with, and the one EventBridge starts them with.
// ---------------------------------------------------------------------------------------------------------

describe("alice's scheduling roles", () => {
  const stateMachine = taggedFor(roleSession(alice.sfnRoleName, 'AROAALICESFN000000001', 'states-session', alice.iamPath), alice, 'alice');
  const scheduler = taggedFor(roleSession(alice.eventsRoleName, 'AROAALICEEVENTS000001', 'events-session', alice.iamPath), alice, 'alice');

  it.each<{ who: string; trust: object; resource: string; caller: Caller; expected: Decision }>([
    { who: 'Step Functions of this account, the Step Functions role', trust: sfnRoleTrustPolicy(ACCOUNT), resource: alice.sfnRoleArn, caller: asService({ principal: 'states.amazonaws.com', sourceAccount: ACCOUNT }), expected: 'Allowed' },
    { who: 'Step Functions of another account, the Step Functions role', trust: sfnRoleTrustPolicy(ACCOUNT), resource: alice.sfnRoleArn, caller: asService({ principal: 'states.amazonaws.com', sourceAccount: OTHER_ACCOUNT }), expected: 'ImplicitlyDenied' },
    { who: 'EventBridge, the Step Functions role', trust: sfnRoleTrustPolicy(ACCOUNT), resource: alice.sfnRoleArn, caller: asService({ principal: 'events.amazonaws.com', sourceAccount: ACCOUNT }), expected: 'ImplicitlyDenied' },
    { who: 'EventBridge of this account, the events role', trust: eventsRoleTrustPolicy(ACCOUNT), resource: alice.eventsRoleArn, caller: asService({ principal: 'events.amazonaws.com', sourceAccount: ACCOUNT }), expected: 'Allowed' },
    { who: 'EventBridge of another account, the events role', trust: eventsRoleTrustPolicy(ACCOUNT), resource: alice.eventsRoleArn, caller: asService({ principal: 'events.amazonaws.com', sourceAccount: OTHER_ACCOUNT }), expected: 'ImplicitlyDenied' },
    { who: 'alice, the events role', trust: eventsRoleTrustPolicy(ACCOUNT), resource: alice.eventsRoleArn, caller: user('alice', ALICE_ID), expected: 'ImplicitlyDenied' },
  ])('are assumable: $who → $expected', async ({ trust, resource, caller, expected }) => {
    // prepare
    const request: SimulationRequest = { resourcePolicy: trust, action: 'sts:AssumeRole', resource, ...caller };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe(expected);
  });

  it.each<ActionRow & { as: 'sfn' | 'events' }>([
    { as: 'sfn', what: "SubmitJob to alice's queue", action: 'batch:SubmitJob', resource: alice.jobQueueArn, expected: 'Allowed' },
    { as: 'sfn', what: 'SubmitJob with a Metaflow job definition', action: 'batch:SubmitJob', resource: batchArn('job-definition/metaflow_abc:2'), expected: 'Allowed' },
    { as: 'sfn', what: "SubmitJob to bob's queue", action: 'batch:SubmitJob', resource: bob.jobQueueArn, expected: 'ImplicitlyDenied' },
    { as: 'sfn', what: 'DescribeJobs', action: 'batch:DescribeJobs', resource: '*', expected: 'Allowed' },
    { as: 'sfn', what: 'TerminateJob', action: 'batch:TerminateJob', resource: batchArn('job/0123abcd'), expected: 'Allowed' },
    { as: 'sfn', what: 'PutRule on the managed Batch events rule', action: 'events:PutRule', resource: ruleArn('StepFunctionsGetEventsForBatchJobsRule'), expected: 'Allowed' },
    { as: 'sfn', what: 'PutRule on any other rule', action: 'events:PutRule', resource: ruleArn('mfenv-alice_NightlyFlow'), expected: 'ImplicitlyDenied' },
    { as: 'sfn', what: "GetItem in alice's foreach table", action: 'dynamodb:GetItem', resource: alice.sfnTableArn, expected: 'Allowed' },
    { as: 'sfn', what: "GetItem in bob's foreach table", action: 'dynamodb:GetItem', resource: bob.sfnTableArn, expected: 'ImplicitlyDenied' },
    { as: 'sfn', what: "GetObject in alice's bucket", action: 's3:GetObject', resource: `${alice.bucketArn}/metaflow/x`, resourceAccount: ACCOUNT, expected: 'ImplicitlyDenied' },
    { as: 'sfn', what: "PassRole of alice's job role", action: 'iam:PassRole', resource: alice.jobRoleArn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, expected: 'ImplicitlyDenied' },
    { as: 'events', what: 'StartExecution of mfenv-alice_NightlyFlow', action: 'states:StartExecution', resource: sfnArn('stateMachine:mfenv-alice_NightlyFlow'), expected: 'Allowed' },
    { as: 'events', what: "StartExecution of bob's flow", action: 'states:StartExecution', resource: sfnArn('stateMachine:mfenv-bob_NightlyFlow'), expected: 'ImplicitlyDenied' },
    { as: 'events', what: "StartExecution of the deployment's teardown", action: 'states:StartExecution', resource: sfnArn('stateMachine:mfenv-teardown'), expected: 'ImplicitlyDenied' },
    { as: 'events', what: 'DeleteStateMachine of mfenv-alice_NightlyFlow', action: 'states:DeleteStateMachine', resource: sfnArn('stateMachine:mfenv-alice_NightlyFlow'), expected: 'ImplicitlyDenied' },
  ])('$as: $what → $expected', async ({ as, action, resource, resourceAccount, context, expected }) => {
    // prepare
    const caller = as === 'sfn' ? stateMachine : scheduler;
    const request: SimulationRequest = {
      identity: as === 'sfn' ? sfnRolePolicy(alice) : eventsRolePolicy(alice),
      boundary,
      action,
      resource,
      resourceAccount,
      ...caller,
      context: { ...caller.context, ...HTTPS, ...context },
    };
    // act
    const decision = await evaluate(request);
    // assess
    expect(decision).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The wrapper itself: a request the simulator cannot evaluate must fail the test, never pass as a deny.
// ---------------------------------------------------------------------------------------------------------

describe('the simulator wrapper', () => {
  const reader = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] };
  const caller = user('alice', ALICE_ID);
  const valid: SimulationRequest = { identity: reader, action: 's3:GetObject', resource: `${alice.bucketArn}/k`, resourceAccount: ACCOUNT, ...caller };

  it.each<{ broken: string; request: SimulationRequest }>([
    { broken: 'an invalid policy', request: { ...valid, identity: { Version: '2012-10-17', Statement: [{ Effect: 'Maybe', Action: 's3:GetObject', Resource: '*' }] } } },
    { broken: 'an unknown action', request: { ...valid, action: 's3:GetObjekt' } },
    { broken: 'a wildcard resource', request: { ...valid, resource: `${alice.bucketArn}/*` } },
    { broken: 'a context key the action does not take', request: { ...valid, context: { ...caller.context, 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } } },
    { broken: 'an S3 resource without its account', request: { ...valid, resourceAccount: undefined, principal: 'ecs-tasks.amazonaws.com' } },
  ])('throws on $broken', async ({ request }) => {
    // act
    const decision = simulate(request);
    // assess
    await expect(decision).rejects.toThrow(SimulationError);
  });

  it('answers a well-formed request', async () => {
    // act
    const decision = await simulate(valid);
    // assess
    expect(decision).toBe('Allowed');
  });
});

// ---------------------------------------------------------------------------------------------------------
// The instance role: job code on a Batch instance can read its credentials (host network mode), so they
// must reach nothing of another environment — in particular not another environment's ECS cluster, where a
// fake container instance would be handed that environment's tasks and job-role credentials.
// ---------------------------------------------------------------------------------------------------------
describe("an instance role reaches its own environment's ECS cluster only", () => {
  // Batch names each compute environment's cluster; the ARN is read from the compute environment once VALID.
  const aliceCluster = `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/mfenv-alice_Batch_0f3c1a2b-1111-2222-3333-444455556666`;
  const bobCluster = `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/mfenv-bob_Batch_7e9d8c6b-1111-2222-3333-444455556666`;
  const instanceOf = (cluster: string) => `${cluster.replace(':cluster/', ':container-instance/')}/5f1e2d3c4b5a69788796a5b4c3d2e1f0`;
  const aliceInstanceRole = asRoleSession({
    accountId: ACCOUNT,
    name: 'mfenv-alice-instance',
    path: '/mfenv/',
    uniqueId: 'AROAALICEINSTANCE0001',
    session: 'i-0123456789abcdef0',
  });
  const policy = instanceRolePolicy(aliceCluster, logGroupArn);

  it.each<[string, string, string, Record<string, string>, Decision]>([
    ['registers an instance into its own cluster', 'ecs:RegisterContainerInstance', aliceCluster, {}, 'Allowed'],
    ['submits task state changes to its own cluster', 'ecs:SubmitTaskStateChange', aliceCluster, {}, 'Allowed'],
    ["registers an instance into bob's cluster", 'ecs:RegisterContainerInstance', bobCluster, {}, 'ImplicitlyDenied'],
    ["submits task state changes to bob's cluster", 'ecs:SubmitTaskStateChange', bobCluster, {}, 'ImplicitlyDenied'],
    ['polls for tasks as an instance of its own cluster', 'ecs:Poll', instanceOf(aliceCluster), { 'ecs:cluster': aliceCluster }, 'Allowed'],
    ["polls for tasks as an instance of bob's cluster", 'ecs:Poll', instanceOf(bobCluster), { 'ecs:cluster': bobCluster }, 'ImplicitlyDenied'],
    ["polls naming its own instance but bob's cluster", 'ecs:Poll', instanceOf(aliceCluster), { 'ecs:cluster': bobCluster }, 'ImplicitlyDenied'],
    ['creates a cluster of its own', 'ecs:CreateCluster', `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/anything`, {}, 'ImplicitlyDenied'],
    ["reads alice's bucket (job data is the job role's business)", 's3:GetObject', `${alice.bucketArn}/metaflow/data/x`, {}, 'ImplicitlyDenied'],
  ])('%s (%s on %s, context %j) → %s', async (_what, action, resource, extra, expected) => {
    // act
    const decision = await evaluate({
      identity: policy,
      boundary,
      action,
      principal: aliceInstanceRole.principal,
      resource,
      resourceAccount: ACCOUNT,
      context: { ...aliceInstanceRole.context, ...extra },
    });
    // assess
    expect(decision).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Network isolation: the bucket policy admits the environment's job and instance roles only through the
// stack's S3 gateway endpoint, from the VPC, from the environment's own addresses. A job that runs with
// alice's job role elsewhere (a colleague submitted her job definition to their own queue) gets nothing.
// ---------------------------------------------------------------------------------------------------------
describe("alice's bucket admits her job and instance roles only from her own subnets, through the endpoint", () => {
  const VPC = 'vpc-0a1b2c3d4e5f60718';
  const ENDPOINT = 'vpce-0123456789abcdef0';
  const ALICE_BLOCK = '10.20.130.0/23';
  const policy = bucketPolicy(alice, true, { vpcId: VPC, s3EndpointId: ENDPOINT, cidr: ALICE_BLOCK })!;
  const fromAliceSubnet = { 'aws:SourceVpce': ENDPOINT, 'aws:SourceVpc': VPC, 'aws:VpcSourceIp': '10.20.130.17' };
  const fromBobSubnet = { 'aws:SourceVpce': ENDPOINT, 'aws:SourceVpc': VPC, 'aws:VpcSourceIp': '10.20.132.40' };
  const jobRole = taggedFor(roleSession(alice.jobRoleName, 'AROAALICEJOB000000001', 'ecs-task-0123', alice.iamPath), alice, 'alice');
  const instanceRole = taggedFor(roleSession(alice.instanceRoleName, 'AROAALICEINSTANCE0001', 'i-0123456789abcdef0', alice.iamPath), alice, 'alice');

  it.each<[string, Decision, Caller, object, Record<string, string>]>([
    ['her job role, from her subnet, through the endpoint', 'Allowed', jobRole, jobRolePolicy(alice), fromAliceSubnet],
    ["her job role, from bob's subnet (a job on bob's queue)", 'ExplicitlyDenied', jobRole, jobRolePolicy(alice), fromBobSubnet],
    ['her job role, from her subnet but not through the endpoint', 'ExplicitlyDenied', jobRole, jobRolePolicy(alice), { 'aws:SourceVpc': VPC, 'aws:VpcSourceIp': '10.20.130.17' }],
    ['her job role, through the endpoint of another VPC with her addresses', 'ExplicitlyDenied', jobRole, jobRolePolicy(alice), { ...fromAliceSubnet, 'aws:SourceVpc': 'vpc-0fedcba9876543210', 'aws:SourceVpce': 'vpce-0fedcba9876543210' }],
    ['her job role, from the internet (no VPC keys at all)', 'ExplicitlyDenied', jobRole, jobRolePolicy(alice), {}],
    ['her instance role, from her subnet, through the endpoint', 'Allowed', instanceRole, ALLOW_EVERYTHING, fromAliceSubnet],
    ["her instance role, from bob's subnet", 'ExplicitlyDenied', instanceRole, ALLOW_EVERYTHING, fromBobSubnet],
    ['her access role, from her laptop (no VPC keys)', 'Allowed', aliceAccess, accessRolePolicy(alice, logGroupArn), {}],
  ])('%s → %s', async (_who, expected, caller, identity, network) => {
    // act
    const decision = await evaluate({
      identity,
      boundary,
      resourcePolicy: policy,
      action: 's3:GetObject',
      principal: caller.principal,
      resource: `${alice.bucketArn}/metaflow/ShardFlow/1/start/1/0.attempt.json`,
      resourceAccount: ACCOUNT,
      context: { ...caller.context, ...HTTPS, ...network },
    });
    // assess
    expect(decision).toBe(expected);
  });
});
