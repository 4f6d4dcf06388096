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

  it('reaches its own bucket and nothing else', () => {
    // act
    const policy = jobRolePolicy(alice);
    // assess
    const resources = policy.Statement.flatMap(resourcesOf);
    expect(resources.every((resource) => resource === alice.bucketArn || resource === `${alice.bucketArn}/*`)).toBe(true);
    expect(policy.Statement.flatMap(actionsOf).every((action) => action.startsWith('s3:'))).toBe(true);
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

  it('passes only its own job role, and only to ECS tasks', () => {
    // assess
    const [passRole] = byAction('iam:PassRole');
    expect(resourcesOf(passRole!)).toEqual([alice.jobRoleArn]);
    expect(passRole!.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
  });

  it('touches no other bucket and grants no wildcard service access', () => {
    // assess
    const s3Resources = policy.Statement.filter((statement) => actionsOf(statement).some((a) => a.startsWith('s3:'))).flatMap(resourcesOf);
    expect(s3Resources.every((resource) => resource.startsWith(alice.bucketArn))).toBe(true);
    expect(policy.Statement.flatMap(actionsOf).some((action) => action.endsWith(':*') || action === '*')).toBe(false);
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
    expect(actions.filter((action) => action.startsWith('iam:'))).toEqual(['iam:PassRole']);
    const passRole = boundary.Statement.find((statement) => actionsOf(statement).includes('iam:PassRole'))!;
    expect(resourcesOf(passRole)).toEqual(['arn:aws:iam::123456789012:role/mfenv/mfenv-${aws:PrincipalTag/mfenv:environment}-job']);
    expect(passRole.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    expect(actions.some((action) => action.startsWith('sts:') || action === '*')).toBe(false);
    const s3 = boundary.Statement.filter((statement) => actionsOf(statement).some((a) => a.startsWith('s3:')));
    expect(s3.flatMap(resourcesOf)).toEqual(['arn:aws:s3:::${aws:PrincipalTag/mfenv:bucket}', 'arn:aws:s3:::${aws:PrincipalTag/mfenv:bucket}/*']);
    expect(boundary.Statement.every((statement) => statement.Effect === 'Allow')).toBe(true);
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
