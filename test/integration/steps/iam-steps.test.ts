import { BatchClient, DescribeComputeEnvironmentsCommand, UntagResourceCommand } from '@aws-sdk/client-batch';
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePermissionsBoundaryCommand,
  DeleteRolePolicyCommand,
  GetInstanceProfileCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  RemoveRoleFromInstanceProfileCommand,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { iamClient, withStepClients } from '../../../lambdas/core/clients';
import { TAG, tagsFor } from '../../../lambdas/core/naming';
import {
  accessRolePolicy,
  accessRoleTrustPolicy,
  batchJobLogGroupArn,
  instanceRolePolicy,
  instanceRoleTrustPolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
} from '../../../lambdas/core/policies';
import { SETTING, currentDeployment } from '../../../lambdas/core/settings';
import { handler as batchSteps } from '../../../lambdas/steps/batch-steps';
import {
  ACCESS_ROLE_INLINE_POLICY,
  INSTANCE_PROFILE_SIGHTINGS,
  INSTANCE_ROLE_INLINE_POLICY,
  JOB_ROLE_INLINE_POLICY,
  handler,
} from '../../../lambdas/steps/iam-steps';
import { EMULATOR_ACCOUNT_ID, EMULATOR_REGION } from '../../../infra/local/emulator';
import { useEmulator } from '../../support/emulator';
import { outcomeOf } from '../../support/outcome';
import { OWNER, invoke, namesOf, quietLogs, uniqueName, withSetting, workflowEnvironment } from './fixtures';

// scopeInstanceRole needs a compute environment: in the shared subnets here (network-steps.test.ts has the own ones).
const { context } = useEmulator({ networkIsolation: false });
let iam: IAMClient;
let batch: BatchClient;

beforeAll(() => {
  quietLogs();
  iam = new IAMClient(context.clientConfig);
  batch = new BatchClient(context.clientConfig);
});
afterAll(() => {
  iam?.destroy();
  batch?.destroy();
});

const boundaryArn = () => process.env[SETTING.permissionsBoundaryArn];
const decode = (document: string | undefined) => JSON.parse(decodeURIComponent(document ?? ''));
const tagMap = (tags: Array<{ Key?: string; Value?: string }> = []) => Object.fromEntries(tags.map((tag) => [tag.Key, tag.Value]));
const otherTeamsTrust = JSON.stringify(instanceRoleTrustPolicy());
/** An environment role's tags: the common ones and the bucket the boundary scopes it to (roleTagListFor). */
const roleTags = (name: string) => ({ ...tagsFor(currentDeployment(), name, OWNER), [TAG.bucket]: namesOf(name).bucket });

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
    expect(tagMap(Role?.Tags)).toEqual(roleTags(environment.name));
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

describe('two deployments with one prefix in one account', () => {
  it("refuse each other's resources: a namesake tagged for this environment by another stack is not adopted nor deleted", async () => {
    // prepare: another deployment (same prefix, another stack name) made a job role of the same name
    const environment = workflowEnvironment(uniqueName('twin'));
    const names = namesOf(environment.name);
    const otherStacksTags = Object.entries(tagsFor({ ...currentDeployment(), stackName: 'mfenv-team2' }, environment.name, OWNER)).map(
      ([Key, Value]) => ({ Key, Value }),
    );
    await iam.send(new CreateRoleCommand({ RoleName: names.jobRoleName, Path: names.iamPath, AssumeRolePolicyDocument: otherTeamsTrust, Tags: otherStacksTags }));

    // act
    const create = outcomeOf(invoke(handler, { step: 'createJobRole', environment }));
    const remove = await invoke(handler, { step: 'deleteJobRole', environment });

    // assess
    expect(await create).toMatchObject({ name: 'ResourceConflict', message: expect.stringContaining('managed by the deployment "mfenv-team2"') });
    expect(remove).toEqual({ roleDeleted: false });
    expect(await roleExists(names.jobRoleName)).toBe(true);
  });
});

describe('createInstanceRole', () => {
  it('creates the instance role with the boundary and no policy yet, and a tagged instance profile holding it; twice is the same', async () => {
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
    expect(tagMap(Role?.Tags)).toEqual(roleTags(environment.name));
    // No managed policy (AWS's ECS one reaches every cluster): scopeInstanceRole writes its own once the cluster exists.
    const { AttachedPolicies } = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: names.instanceRoleName }));
    expect(AttachedPolicies).toEqual([]);
    const { InstanceProfile } = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName }));
    expect(InstanceProfile?.Arn).toBe(names.instanceProfileArn);
    expect(InstanceProfile?.Path).toBe('/mfenv/');
    expect(tagMap(InstanceProfile?.Tags)).toEqual(roleTags(environment.name));
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

describe('scopeInstanceRole', () => {
  it("gives the instance role the ECS agent's work on its own compute environment's cluster only, once that cluster exists", async () => {
    // prepare: the instance role and profile, then the compute environment (Batch makes its ECS cluster)
    const environment = workflowEnvironment(uniqueName('scope'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createInstanceRole', environment });
    await invoke(batchSteps, { step: 'createComputeEnvironment', environment });
    const { computeEnvironments = [] } = await batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [names.computeEnvironmentName] }));
    const ecsClusterArn = computeEnvironments[0]!.ecsClusterArn!;

    // act
    const first = await invoke(handler, { step: 'scopeInstanceRole', environment });
    const second = await invoke(handler, { step: 'scopeInstanceRole', environment });

    // assess
    expect(first).toEqual({ ecsClusterArn });
    expect(second).toEqual(first);
    const inline = await iam.send(new GetRolePolicyCommand({ RoleName: names.instanceRoleName, PolicyName: INSTANCE_ROLE_INLINE_POLICY }));
    expect(decode(inline.PolicyDocument)).toEqual(instanceRolePolicy(ecsClusterArn, batchJobLogGroupArn(EMULATOR_REGION, EMULATOR_ACCOUNT_ID)));
    const { AttachedPolicies } = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: names.instanceRoleName }));
    expect(AttachedPolicies).toEqual([]);
  });

  it('waits (a transient error) while the compute environment is not there, and refuses one of another environment', async () => {
    // prepare
    const missing = workflowEnvironment(uniqueName('scope-none'));
    await invoke(handler, { step: 'createInstanceRole', environment: missing });
    const foreign = workflowEnvironment(uniqueName('scope-foreign'));
    const names = namesOf(foreign.name);
    await invoke(handler, { step: 'createInstanceRole', environment: foreign });
    await invoke(batchSteps, { step: 'createComputeEnvironment', environment: { ...foreign, name: foreign.name } });
    await batch.send(new UntagResourceCommand({ resourceArn: names.computeEnvironmentArn, tagKeys: [TAG.environment] }));

    // act
    const none = outcomeOf(invoke(handler, { step: 'scopeInstanceRole', environment: missing }));
    const notOurs = outcomeOf(invoke(handler, { step: 'scopeInstanceRole', environment: foreign }));

    // assess
    expect(await none).toMatchObject({ name: 'TransientError' });
    expect(await notOurs).toMatchObject({ name: 'ResourceConflict' });
    const { PolicyNames } = await iam.send(new ListRolePoliciesCommand({ RoleName: names.instanceRoleName }));
    expect(PolicyNames).toEqual([]);
  });
});

describe('createAccessRole', () => {
  const expectedPolicy = (name: string) => accessRolePolicy(namesOf(name), batchJobLogGroupArn(EMULATOR_REGION, EMULATOR_ACCOUNT_ID));
  const ADMIN = `arn:aws:iam::${EMULATOR_ACCOUNT_ID}:role/PlatformAdmin`;

  it('creates the access role with the boundary, a trust naming the owner (by unique id) and the admins, and the Metaflow policy', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('acc'), { ownerUniqueId: 'AIDAALICE0123456789' });
    const names = namesOf(environment.name);

    // act
    const answer = await withSetting(SETTING.admins, ADMIN, () => invoke(handler, { step: 'createAccessRole', environment }));

    // assess
    expect(answer).toEqual({ accessRoleArn: names.accessRoleArn });
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.accessRoleName }));
    expect(Role?.Arn).toBe(names.accessRoleArn);
    expect(Role?.Path).toBe('/mfenv/');
    expect(Role?.PermissionsBoundary?.PermissionsBoundaryArn).toBe(boundaryArn());
    expect(tagMap(Role?.Tags)).toEqual(roleTags(environment.name));
    const trust = decode(Role?.AssumeRolePolicyDocument);
    expect(trust).toEqual(accessRoleTrustPolicy({ owner: OWNER, ownerUniqueId: 'AIDAALICE0123456789', admins: [ADMIN] }));
    expect(trust.Statement.map((statement: { Sid: string }) => statement.Sid)).toEqual(['Owner', 'Admin1']);
    const inline = await iam.send(new GetRolePolicyCommand({ RoleName: names.accessRoleName, PolicyName: ACCESS_ROLE_INLINE_POLICY }));
    expect(decode(inline.PolicyDocument)).toEqual(expectedPolicy(environment.name));
    // Nothing is attached: the role's only permissions are its inline policy, capped by the boundary.
    const { AttachedPolicies } = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: names.accessRoleName }));
    expect(AttachedPolicies).toEqual([]);
  });

  it('run again on a role of ours whose trust and policy were changed, puts both back', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('acc-again'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createAccessRole', environment });
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: names.accessRoleName, PolicyDocument: otherTeamsTrust }));
    await iam.send(new DeleteRolePolicyCommand({ RoleName: names.accessRoleName, PolicyName: ACCESS_ROLE_INLINE_POLICY }));

    // act
    await invoke(handler, { step: 'createAccessRole', environment });

    // assess
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.accessRoleName }));
    expect(decode(Role?.AssumeRolePolicyDocument)).toEqual(accessRoleTrustPolicy({ owner: OWNER, ownerUniqueId: null, admins: [] }));
    const { PolicyNames } = await iam.send(new ListRolePoliciesCommand({ RoleName: names.accessRoleName }));
    expect(PolicyNames).toEqual([ACCESS_ROLE_INLINE_POLICY]);
  });

  it('refuses a role with its name that belongs to another environment, and leaves its trust as it was', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('acc-taken'));
    const names = namesOf(environment.name);
    await createForeignRole(names.accessRoleName);

    // act
    const attempt = invoke(handler, { step: 'createAccessRole', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict' });
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.accessRoleName }));
    expect(decode(Role?.AssumeRolePolicyDocument)).toEqual(JSON.parse(otherTeamsTrust));
  });
});

describe('deleting identity', () => {
  it('deleteAccessRole removes the role and its inline policy; twice is fine; a re-create gets a fresh role', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('del-acc'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createAccessRole', environment });
    const { Role: before } = await iam.send(new GetRoleCommand({ RoleName: names.accessRoleName }));

    // act
    const first = await invoke(handler, { step: 'deleteAccessRole', environment });
    const second = await invoke(handler, { step: 'deleteAccessRole', environment });
    await invoke(handler, { step: 'createAccessRole', environment: { ...environment, generation: 3 } });

    // assess
    expect(first).toEqual({ roleDeleted: true });
    expect(second).toEqual({ roleDeleted: false });
    const { Role: after } = await iam.send(new GetRoleCommand({ RoleName: names.accessRoleName }));
    expect(after?.RoleId).not.toBe(before?.RoleId);
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
    await createForeignRole(names.accessRoleName);

    // act
    const job = await invoke(handler, { step: 'deleteJobRole', environment });
    const instance = await invoke(handler, { step: 'deleteInstanceRole', environment });
    const access = await invoke(handler, { step: 'deleteAccessRole', environment });

    // assess
    expect(job).toEqual({ roleDeleted: false });
    expect(instance).toEqual({ profileDeleted: false, roleDeleted: false });
    expect(access).toEqual({ roleDeleted: false });
    expect(await roleExists(names.jobRoleName)).toBe(true);
    expect(await roleExists(names.instanceRoleName)).toBe(true);
    expect(await roleExists(names.accessRoleName)).toBe(true);
  });
});

/**
 * IAM's eventual consistency: on AWS a role made a moment ago can be unknown to the next call. The emulator
 * is consistent, so the role is deleted (over HTTP, by the emulator's root) just before the step's call that
 * follows its create: the NoSuchEntity the step then sees is the emulator's own answer. The hook sits on the
 * step's IAM client, only to time that deletion; nothing of the answer is made up.
 */
async function withRoleVanishingBefore<T>(commandName: string, roleName: string, act: () => Promise<T>): Promise<T> {
  const client = await withStepClients(async () => iamClient());
  const hook = 'testRoleVanishes';
  let armed = true;
  client.middlewareStack.add(
    (next, hookContext) => async (args) => {
      if (armed && hookContext.commandName === commandName) {
        armed = false;
        await iam.send(new DeleteRoleCommand({ RoleName: roleName }));
      }
      return next(args);
    },
    { step: 'initialize', name: hook },
  );
  try {
    return await act();
  } finally {
    client.middlewareStack.remove(hook);
  }
}

describe('IAM eventual consistency', () => {
  it('answers TransientError when IAM does not show the role just created to the next call, and the retry completes it', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('consistency'));
    const names = namesOf(environment.name);

    // act
    const first = await withRoleVanishingBefore('PutRolePolicyCommand', names.jobRoleName, () =>
      invoke(handler, { step: 'createJobRole', environment }),
    ).then(
      () => undefined,
      (error: unknown) => error,
    );
    const retried = await invoke(handler, { step: 'createJobRole', environment });

    // assess
    expect(first).toMatchObject({ name: 'TransientError', message: expect.stringContaining(`"${names.jobRoleName}" was just created`) });
    expect(retried).toEqual({ jobRoleArn: names.jobRoleArn });
    const { PolicyNames } = await iam.send(new ListRolePoliciesCommand({ RoleName: names.jobRoleName }));
    expect(PolicyNames).toEqual([JOB_ROLE_INLINE_POLICY]);
  });

  it('in a teardown, NoSuchEntity still means "already gone": a role that vanishes mid-delete is deleted', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('consistency-gone'));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createJobRole', environment });
    await iam.send(new DeleteRolePolicyCommand({ RoleName: names.jobRoleName, PolicyName: JOB_ROLE_INLINE_POLICY }));

    // act
    const answer = await withRoleVanishingBefore('DeleteRoleCommand', names.jobRoleName, () =>
      invoke(handler, { step: 'deleteJobRole', environment }),
    );

    // assess
    expect(answer).toEqual({ roleDeleted: true });
    expect(await roleExists(names.jobRoleName)).toBe(false);
  });
});

describe('pollInstanceProfile', () => {
  type ProfilePoll = { done: boolean; attempt: number; waitSeconds: number; sightings: number };
  const FIRST = { attempt: 0, waitSeconds: 2, sightings: 0 };
  const check = (environment: ReturnType<typeof workflowEnvironment>, poll: object) =>
    invoke<ProfilePoll>(handler, { step: 'pollInstanceProfile', environment, poll });

  it(`is done after ${INSTANCE_PROFILE_SIGHTINGS} checks in a row see the profile holding the instance role`, async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('profile-seen'));
    await invoke(handler, { step: 'createInstanceRole', environment });

    // act
    const answers: ProfilePoll[] = [];
    let poll: object = FIRST;
    for (let check_ = 0; check_ < INSTANCE_PROFILE_SIGHTINGS; check_ += 1) {
      const answer = await check(environment, poll);
      answers.push(answer);
      poll = answer;
    }

    // assess
    expect(INSTANCE_PROFILE_SIGHTINGS).toBe(3);
    expect(answers).toEqual([
      { done: false, attempt: 1, waitSeconds: 3, sightings: 1 },
      { done: false, attempt: 2, waitSeconds: 3, sightings: 2 },
      { done: true, attempt: 3, waitSeconds: 3, sightings: 3 },
    ]);
  });

  it('starts counting again when a check misses the role in the profile, and counts nothing while there is no profile', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('profile-miss'));
    const names = namesOf(environment.name);
    const before = await check(environment, FIRST);
    await invoke(handler, { step: 'createInstanceRole', environment });
    const seen = await check(environment, before);
    await iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, RoleName: names.instanceRoleName }));

    // act
    const missed = await check(environment, { ...seen, sightings: 2 });
    await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, RoleName: names.instanceRoleName }));
    const seenAgain = await check(environment, missed);

    // assess
    expect(before).toMatchObject({ done: false, sightings: 0 });
    expect(seen).toMatchObject({ done: false, sightings: 1 });
    expect(missed).toEqual({ done: false, attempt: 3, waitSeconds: 3, sightings: 0 });
    expect(seenAgain).toMatchObject({ done: false, attempt: 4, sightings: 1 });
  });

  it('refuses an instance profile with its name that belongs to another environment', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('profile-taken'));
    const names = namesOf(environment.name);
    await iam.send(
      new CreateInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, Path: '/mfenv/', Tags: [{ Key: TAG.environment, Value: 'bob' }] }),
    );

    // act
    const attempt = check(environment, FIRST);

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict', message: expect.stringContaining('mfenv:environment=bob') });
  });
});
