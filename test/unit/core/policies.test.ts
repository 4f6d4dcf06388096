import {
  batchJobLogGroupArn,
  bucketPolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
  permissionsBoundaryPolicy,
  type PolicyStatement,
  accessRolePolicy,
  accessRoleTrustPolicy,
  identityCenterPermissionSet,
  eventsRolePolicy,
  eventsRoleTrustPolicy,
  sfnRolePolicy,
  sfnRoleTrustPolicy,
} from '../../../lambdas/core/policies';
import { namesFor } from '../../../lambdas/core/naming';

const deployment = { prefix: 'mfenv', accountId: '123456789012', region: 'us-east-1', stackName: 'mfenv' };
const alice = namesFor(deployment, 'alice');
const actionsOf = (statement: PolicyStatement) => ([] as string[]).concat(statement.Action);
const resourcesOf = (statement: PolicyStatement) => ([] as string[]).concat(statement.Resource ?? []);

describe('job role', () => {
  it('is assumable by ECS tasks of this account only', () => {
    // act
    const trust = jobRoleTrustPolicy('123456789012');
    // assess
    expect(trust.Statement).toHaveLength(1);
    expect(trust.Statement[0]).toMatchObject({
      Effect: 'Allow',
      Principal: { Service: 'ecs-tasks.amazonaws.com' },
      Action: 'sts:AssumeRole',
      Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
    });
  });

  it('reaches its own bucket and its own foreach table, and nothing else', () => {
    // act
    const policy = jobRolePolicy(alice);
    // assess
    const resources = policy.Statement.flatMap(resourcesOf);
    expect(resources.every((resource) => [alice.bucketArn, `${alice.bucketArn}/*`, alice.sfnTableArn].includes(resource))).toBe(true);
    const table = policy.Statement.filter((statement) => resourcesOf(statement).includes(alice.sfnTableArn));
    expect(table.flatMap(actionsOf).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(policy.Statement.flatMap(actionsOf).every((action) => action.startsWith('s3:') || action.startsWith('dynamodb:'))).toBe(true);
    expect(policy.Statement.flatMap(actionsOf)).not.toContain('s3:*');
  });
});

describe('access role policy', () => {
  const policy = accessRolePolicy(alice, batchJobLogGroupArn('us-east-1', '123456789012'));
  const byAction = (action: string) => policy.Statement.filter((statement) => actionsOf(statement).includes(action));

  it('submits only to its own queue with Metaflow job definitions', () => {
    // assess
    const [submit, ...others] = byAction('batch:SubmitJob');
    expect(others).toHaveLength(0);
    // The new job is a resource of SubmitJob too; its ARN names no queue, the queue in the same request does.
    expect(resourcesOf(submit!).sort()).toEqual([alice.jobDefinitionArnPattern, alice.jobQueueArn, 'arn:aws:batch:us-east-1:123456789012:job/*'].sort());
    expect(resourcesOf(byAction('batch:RegisterJobDefinition')[0]!)).toEqual([alice.jobDefinitionArnPattern]);
  });

  it('passes only its own job, Step Functions and events roles, each only to the service that uses it', () => {
    // assess
    expect(byAction('iam:PassRole').map((statement) => [resourcesOf(statement), statement.Condition])).toEqual([
      [[alice.jobRoleArn], { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } }],
      [[alice.sfnRoleArn], { StringEquals: { 'iam:PassedToService': 'states.amazonaws.com' } }],
      [[alice.eventsRoleArn], { StringEquals: { 'iam:PassedToService': 'events.amazonaws.com' } }],
    ]);
  });

  it("reaches state machines, executions and rules under the environment's prefix only, listing excepted", () => {
    // assess
    const scheduling = policy.Statement.filter((statement) => actionsOf(statement).some((a) => a.startsWith('states:') || a.startsWith('events:')));
    const resources = scheduling.flatMap(resourcesOf);
    expect(resources.sort()).toEqual(
      [
        '*',
        'arn:aws:states:us-east-1:123456789012:stateMachine:mfenv-alice_*',
        'arn:aws:states:us-east-1:123456789012:execution:mfenv-alice_*:*',
        'arn:aws:events:us-east-1:123456789012:rule/mfenv-alice_*',
      ].sort(),
    );
    const anywhere = scheduling.filter((statement) => resourcesOf(statement).includes('*'));
    expect(anywhere.flatMap(actionsOf)).toEqual(['states:ListStateMachines']);
  });

  it('fits, with the longest names, in the 10,240 characters of inline policy a role may hold', () => {
    // prepare
    const longest = namesFor({ ...deployment, prefix: 'abcdefghijklmnop', partition: 'aws-us-gov', region: 'us-gov-west-1' }, 'a'.repeat(32));
    // act
    const written = accessRolePolicy(longest, batchJobLogGroupArn('us-gov-west-1', '123456789012', 'aws-us-gov'));
    // assess: IAM counts characters without whitespace; the access role has no other inline policy.
    expect(JSON.stringify(written).replace(/\s/g, '').length).toBeLessThan(10_240);
  });

  it('touches no other bucket and grants no wildcard service access', () => {
    // assess
    const s3Resources = policy.Statement.filter((statement) => actionsOf(statement).some((a) => a.startsWith('s3:'))).flatMap(resourcesOf);
    expect(s3Resources.every((resource) => resource.startsWith(alice.bucketArn))).toBe(true);
    expect(policy.Statement.flatMap(actionsOf).some((action) => action.endsWith(':*') || action === '*')).toBe(false);
  });
});

describe('scheduling roles', () => {
  it('are assumed by Step Functions and by EventBridge, for this account only', () => {
    // act
    const sfn = sfnRoleTrustPolicy('123456789012');
    const events = eventsRoleTrustPolicy('123456789012');
    // assess
    for (const [trust, service] of [
      [sfn, 'states.amazonaws.com'],
      [events, 'events.amazonaws.com'],
    ] as const) {
      expect(trust.Statement).toEqual([
        { Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } } },
      ]);
    }
  });

  it("let Step Functions run the flow's jobs on the environment's queue, hear of them and read its table, nothing more", () => {
    // act
    const policy = sfnRolePolicy(alice);
    // assess
    const byResource = Object.fromEntries(policy.Statement.map((statement) => [resourcesOf(statement).join(' '), actionsOf(statement).sort()]));
    expect(byResource).toEqual({
      [`${alice.jobQueueArn} ${alice.jobDefinitionArnPattern} arn:aws:batch:us-east-1:123456789012:job/*`]: ['batch:SubmitJob'],
      '*': ['batch:DescribeJobs'],
      'arn:aws:batch:us-east-1:123456789012:job/*': ['batch:TerminateJob'],
      'arn:aws:events:us-east-1:123456789012:rule/StepFunctionsGetEventsForBatchJobsRule': ['events:DescribeRule', 'events:PutRule', 'events:PutTargets'],
      [alice.sfnTableArn]: ['dynamodb:GetItem'],
    });
  });

  it("let EventBridge start the environment's state machines only", () => {
    // act
    const policy = eventsRolePolicy(alice);
    // assess
    expect(policy.Statement).toEqual([
      { Sid: 'StartOwnStateMachines', Effect: 'Allow', Action: 'states:StartExecution', Resource: 'arn:aws:states:us-east-1:123456789012:stateMachine:mfenv-alice_*' },
    ]);
  });
});

describe('bucket policy', () => {
  it('denies plain HTTP on AWS', () => {
    // act
    const policy = bucketPolicy(alice, true);
    // assess
    expect(policy?.Statement[0]).toMatchObject({
      Effect: 'Deny',
      Condition: { Bool: { 'aws:SecureTransport': false } },
    });
    expect(resourcesOf(policy!.Statement[0]!)).toEqual([alice.bucketArn, `${alice.bucketArn}/*`]);
  });

  it('is left out where the emulator cannot evaluate it', () => {
    expect(bucketPolicy(alice, false)).toBeUndefined();
  });
});

describe('access role trust', () => {
  const ACCOUNT = '123456789012';
  const conditionsOf = (trust: ReturnType<typeof accessRoleTrustPolicy>, sid: string) =>
    trust.Statement.find((statement) => statement.Sid === sid)?.Condition;

  it('names an IAM user owner by ARN with or without a path, pinned to its unique id', () => {
    // act
    const trust = accessRoleTrustPolicy({ owner: `arn:aws:iam::${ACCOUNT}:user/alice`, ownerUniqueId: 'AIDAALICE', admins: [] });
    // assess
    expect(trust.Statement).toHaveLength(1);
    expect(trust.Statement[0]).toMatchObject({ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole' });
    expect(conditionsOf(trust, 'Owner')).toEqual({
      ArnLike: { 'aws:PrincipalArn': [`arn:aws:iam::${ACCOUNT}:user/alice`, `arn:aws:iam::${ACCOUNT}:user/*/alice`] },
      StringEquals: { 'aws:userid': 'AIDAALICE' },
    });
  });

  it('names every session of a role owner, and one person of an IAM Identity Center permission set', () => {
    // act
    const role = accessRoleTrustPolicy({ owner: `arn:aws:iam::${ACCOUNT}:role/DataScience`, ownerUniqueId: 'AROADS', admins: [] });
    const sso = accessRoleTrustPolicy({
      owner: `arn:aws:sts::${ACCOUNT}:assumed-role/AWSReservedSSO_Data_Science_0123456789abcdef/carol@example.com`,
      admins: [],
    });
    // assess
    expect(conditionsOf(role, 'Owner')).toEqual({
      ArnLike: { 'aws:PrincipalArn': [`arn:aws:iam::${ACCOUNT}:role/DataScience`, `arn:aws:iam::${ACCOUNT}:role/*/DataScience`] },
      StringLike: { 'aws:userid': 'AROADS:*' },
    });
    expect(conditionsOf(sso, 'Owner')).toEqual({
      ArnLike: {
        'aws:PrincipalArn': [
          `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Data_Science_????????????????`,
          `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Data_Science_????????????????`,
        ],
      },
      StringLike: { 'aws:userid': '*:carol@example.com' },
    });
  });

  it('adds one statement per admin, the owner included when listed as an admin', () => {
    // act
    const owner = `arn:aws:iam::${ACCOUNT}:user/alice`;
    const trust = accessRoleTrustPolicy({ owner, admins: [`arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`, owner] });
    // assess
    expect(trust.Statement.map((statement) => statement.Sid)).toEqual(['Owner', 'Admin1', 'Admin2']);
    expect(trust.Statement.some((statement) => JSON.stringify(statement.Principal) !== '{"AWS":"*"}' || !statement.Condition)).toBe(false);
  });

  it('reads the permission set from an Identity Center role name', () => {
    expect(identityCenterPermissionSet('AWSReservedSSO_DataScience_0123456789abcdef')).toBe('DataScience');
    expect(identityCenterPermissionSet('AWSReservedSSO_Data_Science_0123456789abcdef')).toBe('Data_Science');
    expect(identityCenterPermissionSet('DataScience')).toBeUndefined();
  });
});

describe('permissions boundary', () => {
  it("allows no IAM but passing the role's own job role to ECS tasks, no STS, and S3 on the role's own bucket only", () => {
    // act
    const boundary = permissionsBoundaryPolicy('mfenv', 'aws', { accountId: '123456789012', region: 'us-east-1' });
    const actions = boundary.Statement.flatMap(actionsOf);
    // assess
    expect([...new Set(actions.filter((action) => action.startsWith('iam:')))]).toEqual(['iam:PassRole']);
    const passRoles = boundary.Statement.filter((statement) => actionsOf(statement).includes('iam:PassRole'));
    // The job role to ECS tasks; with scheduling, the Step Functions role to Step Functions and the events role to EventBridge.
    expect(passRoles.map((statement) => [resourcesOf(statement), statement.Condition])).toEqual([
      [['arn:aws:iam::123456789012:role/mfenv/mfenv-${aws:PrincipalTag/mfenv:environment}-job'], { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } }],
      [['arn:aws:iam::123456789012:role/mfenv/mfenv-${aws:PrincipalTag/mfenv:environment}-sfn'], { StringEquals: { 'iam:PassedToService': 'states.amazonaws.com' } }],
      [['arn:aws:iam::123456789012:role/mfenv/mfenv-${aws:PrincipalTag/mfenv:environment}-events'], { StringEquals: { 'iam:PassedToService': 'events.amazonaws.com' } }],
    ]);
    expect(actions.some((action) => action.startsWith('sts:') || action === '*')).toBe(false);
    const s3 = boundary.Statement.filter((statement) => actionsOf(statement).some((a) => a.startsWith('s3:')));
    expect(s3.flatMap(resourcesOf)).toEqual(['arn:aws:s3:::${aws:PrincipalTag/mfenv:bucket}', 'arn:aws:s3:::${aws:PrincipalTag/mfenv:bucket}/*']);
    expect(boundary.Statement.every((statement) => statement.Effect === 'Allow')).toBe(true);
  });

  it('fits in the 6,144 characters IAM allows a managed policy', () => {
    // act
    const boundary = permissionsBoundaryPolicy('abcdefghijklmnop', 'aws-us-gov', { accountId: '123456789012', region: 'us-gov-west-1' });
    // assess: IAM counts characters without whitespace; the longest prefix and partition name.
    expect(JSON.stringify(boundary).replace(/\s/g, '').length).toBeLessThan(6_144);
  });

  it("names its resources in the stack's partition", () => {
    // act
    const boundary = permissionsBoundaryPolicy('mfenv', 'aws-us-gov', { accountId: '123456789012', region: 'us-gov-west-1' });
    // assess
    const resources = boundary.Statement.flatMap(resourcesOf).filter((resource) => resource !== '*');
    expect(resources.length).toBeGreaterThan(0);
    expect(resources.filter((resource) => !resource.startsWith('arn:aws-us-gov:'))).toEqual([]);
    expect(resources).toContain('arn:aws-us-gov:logs:us-gov-west-1:123456789012:log-group:/aws/batch/job:log-stream:*');
  });
});
