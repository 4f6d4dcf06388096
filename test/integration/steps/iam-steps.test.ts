import {
  AttachRolePolicyCommand,
  AttachUserPolicyCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateRoleCommand,
  CreateUserCommand,
  DeleteRolePermissionsBoundaryCommand,
  DeleteRolePolicyCommand,
  GetInstanceProfileCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListAttachedUserPoliciesCommand,
  ListPolicyVersionsCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { TAG, tagsFor } from '../../../lambdas/core/naming';
import {
  ECS_INSTANCE_MANAGED_POLICY,
  batchJobLogGroupArn,
  instanceRoleTrustPolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
  teammatePolicy,
} from '../../../lambdas/core/policies';
import { SETTING, currentDeployment } from '../../../lambdas/core/settings';
import { JOB_ROLE_INLINE_POLICY, handler } from '../../../lambdas/steps/iam-steps';
import { EMULATOR_ACCOUNT_ID, EMULATOR_REGION } from '../../../infra/local/emulator';
import { useEmulator } from '../../support/emulator';
import { OWNER, invoke, namesOf, quietLogs, uniqueName, workflowEnvironment } from './fixtures';

const { context } = useEmulator();
let iam: IAMClient;

beforeAll(() => {
  quietLogs();
  iam = new IAMClient(context.clientConfig);
});
afterAll(() => iam?.destroy());

const boundaryArn = () => process.env[SETTING.permissionsBoundaryArn];
const decode = (document: string | undefined) => JSON.parse(decodeURIComponent(document ?? ''));
const tagMap = (tags: Array<{ Key?: string; Value?: string }> = []) => Object.fromEntries(tags.map((tag) => [tag.Key, tag.Value]));
const otherTeamsTrust = JSON.stringify(instanceRoleTrustPolicy());

async function roleExists(roleName: string): Promise<boolean> {
  return iam.send(new GetRoleCommand({ RoleName: roleName })).then(
    () => true,
    (error) => (error.name === 'NoSuchEntityException' ? false : Promise.reject(error)),
  );
}

async function createForeignRole(roleName: string): Promise<void> {
  await iam.send(
    new CreateRoleCommand({ RoleName: roleName, AssumeRolePolicyDocument: otherTeamsTrust, Tags: [{ Key: TAG.environment, Value: 'bob' }] }),
  );
}

describe('createJobRole', () => {
  it('creates the job role under the prefix path, with the boundary, the ECS-tasks trust, tags and its bucket-only policy', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('job'));
    const names = namesOf(environment.name);

    // act
    const answer = await invoke(handler, { step: 'createJobRole', environment });

    // assess
    expect(answer).toEqual({ jobRoleArn: names.jobRoleArn });
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.jobRoleName }));
    expect(Role?.Arn).toBe(names.jobRoleArn);
    expect(Role?.Path).toBe('/mfenv/');
    expect(Role?.PermissionsBoundary?.PermissionsBoundaryArn).toBe(boundaryArn());
    expect(decode(Role?.AssumeRolePolicyDocument)).toEqual(jobRoleTrustPolicy(EMULATOR_ACCOUNT_ID));
    expect(tagMap(Role?.Tags)).toEqual(tagsFor(currentDeployment(), environment.name, OWNER));
    const inline = await iam.send(new GetRolePolicyCommand({ RoleName: names.jobRoleName, PolicyName: JOB_ROLE_INLINE_POLICY }));
    expect(decode(inline.PolicyDocument)).toEqual(jobRolePolicy(names));
  });

  it('run twice, and on a role of ours that lost its boundary and policy, ends with both restored', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('job-again'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createJobRole', environment });
    await iam.send(new DeleteRolePermissionsBoundaryCommand({ RoleName: names.jobRoleName }));
    await iam.send(new DeleteRolePolicyCommand({ RoleName: names.jobRoleName, PolicyName: JOB_ROLE_INLINE_POLICY }));

    // act
    await invoke(handler, { step: 'createJobRole', environment });
    await invoke(handler, { step: 'createJobRole', environment });

    // assess
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.jobRoleName }));
    expect(Role?.PermissionsBoundary?.PermissionsBoundaryArn).toBe(boundaryArn());
    const { PolicyNames } = await iam.send(new ListRolePoliciesCommand({ RoleName: names.jobRoleName }));
    expect(PolicyNames).toEqual([JOB_ROLE_INLINE_POLICY]);
  });

  it('refuses a role with its name that belongs to another environment, and leaves it as it was', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('job-taken'));
    const names = namesOf(environment.name);
    await createForeignRole(names.jobRoleName);

    // act
    const attempt = invoke(handler, { step: 'createJobRole', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict', message: expect.stringContaining(names.jobRoleName) });
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.jobRoleName }));
    expect(Role?.PermissionsBoundary).toBeUndefined();
    const { PolicyNames } = await iam.send(new ListRolePoliciesCommand({ RoleName: names.jobRoleName }));
    expect(PolicyNames).toEqual([]);
  });
});

describe('createInstanceRole', () => {
  it('creates the instance role with the boundary and ECS policy, and a tagged instance profile holding it; twice is the same', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('inst'));
    const names = namesOf(environment.name);

    // act
    const first = await invoke(handler, { step: 'createInstanceRole', environment });
    const second = await invoke(handler, { step: 'createInstanceRole', environment });

    // assess
    expect(first).toEqual({ instanceProfileArn: names.instanceProfileArn });
    expect(second).toEqual(first);
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.instanceRoleName }));
    expect(Role?.Path).toBe('/mfenv/');
    expect(Role?.PermissionsBoundary?.PermissionsBoundaryArn).toBe(boundaryArn());
    expect(decode(Role?.AssumeRolePolicyDocument)).toEqual(instanceRoleTrustPolicy());
    expect(tagMap(Role?.Tags)).toEqual(tagsFor(currentDeployment(), environment.name, OWNER));
    const { AttachedPolicies } = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: names.instanceRoleName }));
    expect(AttachedPolicies?.map((policy) => policy.PolicyArn)).toEqual([ECS_INSTANCE_MANAGED_POLICY]);
    const { InstanceProfile } = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName }));
    expect(InstanceProfile?.Arn).toBe(names.instanceProfileArn);
    expect(InstanceProfile?.Path).toBe('/mfenv/');
    expect(tagMap(InstanceProfile?.Tags)).toEqual(tagsFor(currentDeployment(), environment.name, OWNER));
    expect(InstanceProfile?.Roles?.map((role) => role.RoleName)).toEqual([names.instanceRoleName]);
  });

  it('refuses an instance role with its name that belongs to another environment', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('inst-taken'));
    const names = namesOf(environment.name);
    await createForeignRole(names.instanceRoleName);

    // act
    const attempt = invoke(handler, { step: 'createInstanceRole', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict' });
    const { AttachedPolicies } = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: names.instanceRoleName }));
    expect(AttachedPolicies).toEqual([]);
  });
});

describe('createTeammatePolicy', () => {
  const expectedDocument = (name: string) => teammatePolicy(namesOf(name), batchJobLogGroupArn(EMULATOR_REGION, EMULATOR_ACCOUNT_ID));

  async function defaultDocument(policyArn: string) {
    const { Policy } = await iam.send(new GetPolicyCommand({ PolicyArn: policyArn }));
    const { PolicyVersion } = await iam.send(new GetPolicyVersionCommand({ PolicyArn: policyArn, VersionId: Policy?.DefaultVersionId }));
    return decode(PolicyVersion?.Document);
  }

  it('creates the tagged teammate policy with exactly this environment’s permissions; twice adds no version', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('pol'));
    const names = namesOf(environment.name);

    // act
    const first = await invoke(handler, { step: 'createTeammatePolicy', environment });
    const second = await invoke(handler, { step: 'createTeammatePolicy', environment });

    // assess
    expect(first).toEqual({ userPolicyArn: names.userPolicyArn, updated: false });
    expect(second).toEqual(first);
    expect(await defaultDocument(names.userPolicyArn)).toEqual(expectedDocument(environment.name));
    const { Policy } = await iam.send(new GetPolicyCommand({ PolicyArn: names.userPolicyArn }));
    expect(Policy?.Path).toBe('/mfenv/');
    expect(tagMap(Policy?.Tags)).toEqual(tagsFor(currentDeployment(), environment.name, OWNER));
    const { Versions } = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: names.userPolicyArn }));
    expect(Versions).toHaveLength(1);
  });

  it('makes an outdated policy of ours current, making room when it already has 5 versions', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('pol-old'));
    const names = namesOf(environment.name);
    const outdated = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'batch:ListJobs', Resource: '*' }] });
    const tags = Object.entries(tagsFor(currentDeployment(), environment.name, OWNER)).map(([Key, Value]) => ({ Key, Value }));
    await iam.send(new CreatePolicyCommand({ PolicyName: names.userPolicyName, Path: names.iamPath, PolicyDocument: outdated, Tags: tags }));
    for (let version = 2; version <= 5; version += 1) {
      await iam.send(new CreatePolicyVersionCommand({ PolicyArn: names.userPolicyArn, PolicyDocument: outdated, SetAsDefault: true }));
    }

    // act
    const answer = await invoke(handler, { step: 'createTeammatePolicy', environment });

    // assess
    expect(answer).toEqual({ userPolicyArn: names.userPolicyArn, updated: true });
    expect(await defaultDocument(names.userPolicyArn)).toEqual(expectedDocument(environment.name));
    const { Versions = [] } = await iam.send(new ListPolicyVersionsCommand({ PolicyArn: names.userPolicyArn }));
    expect(Versions).toHaveLength(5);
    expect(Versions.map((version) => version.VersionId)).not.toContain('v1');
  });

  it('refuses a policy with its name that belongs to another environment', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('pol-taken'));
    const names = namesOf(environment.name);
    const foreign = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'batch:ListJobs', Resource: '*' }] });
    await iam.send(
      new CreatePolicyCommand({ PolicyName: names.userPolicyName, Path: names.iamPath, PolicyDocument: foreign, Tags: [{ Key: TAG.environment, Value: 'bob' }] }),
    );

    // act
    const attempt = invoke(handler, { step: 'createTeammatePolicy', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict' });
    expect(await defaultDocument(names.userPolicyArn)).toEqual(JSON.parse(foreign));
  });
});

describe('deleting identity', () => {
  it('deleteTeammatePolicy detaches it from users and roles, drops old versions and deletes it; twice is fine', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('del-pol'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createTeammatePolicy', environment });
    await iam.send(new CreatePolicyVersionCommand({ PolicyArn: names.userPolicyArn, PolicyDocument: JSON.stringify(jobRolePolicy(names)), SetAsDefault: true }));
    const userName = `${environment.name}-teammate`;
    await iam.send(new CreateUserCommand({ UserName: userName }));
    await iam.send(new AttachUserPolicyCommand({ UserName: userName, PolicyArn: names.userPolicyArn }));
    await invoke(handler, { step: 'createJobRole', environment });
    await iam.send(new AttachRolePolicyCommand({ RoleName: names.jobRoleName, PolicyArn: names.userPolicyArn }));

    // act
    const first = await invoke(handler, { step: 'deleteTeammatePolicy', environment });
    const second = await invoke(handler, { step: 'deleteTeammatePolicy', environment });

    // assess
    expect(first).toEqual({ deleted: true });
    expect(second).toEqual({ deleted: false });
    await expect(iam.send(new GetPolicyCommand({ PolicyArn: names.userPolicyArn }))).rejects.toMatchObject({ name: 'NoSuchEntityException' });
    const { AttachedPolicies } = await iam.send(new ListAttachedUserPoliciesCommand({ UserName: userName }));
    expect(AttachedPolicies).toEqual([]);
  });

  it('deleteInstanceRole removes the profile and the role with its attachments; twice is fine', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('del-inst'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createInstanceRole', environment });

    // act
    const first = await invoke(handler, { step: 'deleteInstanceRole', environment });
    const second = await invoke(handler, { step: 'deleteInstanceRole', environment });

    // assess
    expect(first).toEqual({ profileDeleted: true, roleDeleted: true });
    expect(second).toEqual({ profileDeleted: false, roleDeleted: false });
    expect(await roleExists(names.instanceRoleName)).toBe(false);
    await expect(iam.send(new GetInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName }))).rejects.toMatchObject({
      name: 'NoSuchEntityException',
    });
  });

  it('deleteJobRole removes the role and its inline policy; twice is fine', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('del-job'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createJobRole', environment });

    // act
    const first = await invoke(handler, { step: 'deleteJobRole', environment });
    const second = await invoke(handler, { step: 'deleteJobRole', environment });

    // assess
    expect(first).toEqual({ roleDeleted: true });
    expect(second).toEqual({ roleDeleted: false });
    expect(await roleExists(names.jobRoleName)).toBe(false);
  });

  it('leaves alone roles with its names that belong to another environment', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('del-foreign'));
    const names = namesOf(environment.name);
    await createForeignRole(names.jobRoleName);
    await createForeignRole(names.instanceRoleName);

    // act
    const job = await invoke(handler, { step: 'deleteJobRole', environment });
    const instance = await invoke(handler, { step: 'deleteInstanceRole', environment });

    // assess
    expect(job).toEqual({ roleDeleted: false });
    expect(instance).toEqual({ profileDeleted: false, roleDeleted: false });
    expect(await roleExists(names.jobRoleName)).toBe(true);
    expect(await roleExists(names.instanceRoleName)).toBe(true);
  });
});
