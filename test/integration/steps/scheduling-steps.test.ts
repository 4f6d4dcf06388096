import { BatchClient, DescribeJobDefinitionsCommand, RegisterJobDefinitionCommand } from '@aws-sdk/client-batch';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient, ListTagsOfResourceCommand } from '@aws-sdk/client-dynamodb';
import { DescribeRuleCommand, EventBridgeClient, ListTargetsByRuleCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateRoleCommand, GetRoleCommand, GetRolePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateStateMachineCommand, ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { TAG } from '../../../lambdas/core/naming';
import { eventsRolePolicy, eventsRoleTrustPolicy, sfnRolePolicy, sfnRoleTrustPolicy } from '../../../lambdas/core/policies';
import { SETTING } from '../../../lambdas/core/settings';
import { EVENTS_ROLE_INLINE_POLICY, SFN_ROLE_INLINE_POLICY, TABLE_TTL_ATTRIBUTE, handler } from '../../../lambdas/steps/scheduling-steps';
import { EMULATOR_ACCOUNT_ID } from '../../../infra/local/emulator';
import { useEmulator } from '../../support/emulator';
import { invoke, namesOf, quietLogs, uniqueName, workflowEnvironment } from './fixtures';

const { context } = useEmulator({ networkIsolation: false });
let iam: IAMClient;
let dynamo: DynamoDBClient;
let sfn: SFNClient;
let events: EventBridgeClient;
let batch: BatchClient;

beforeAll(() => {
  quietLogs();
  iam = new IAMClient(context.clientConfig);
  dynamo = new DynamoDBClient(context.clientConfig);
  sfn = new SFNClient(context.clientConfig);
  events = new EventBridgeClient(context.clientConfig);
  batch = new BatchClient(context.clientConfig);
});
afterAll(() => {
  for (const client of [iam, dynamo, sfn, events, batch]) client?.destroy();
});

const decode = (document: string | undefined) => JSON.parse(decodeURIComponent(document ?? ''));
const tagMap = (tags: Array<{ Key?: string; Value?: string }> = []) => Object.fromEntries(tags.map((tag) => [tag.Key, tag.Value]));
const scheduled = (base: string) => workflowEnvironment(uniqueName(base), { spec: { maxVcpus: 16, gpu: true, scheduling: true } });
const DEFINITION = JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Succeed' } } });

/** What `step-functions create` leaves: a state machine `<prefix>_<flow>`, and a rule of that name targeting it. */
async function deployAsMetaflowWould(stateMachineName: string, roleArn: string, eventsRoleArn: string): Promise<string> {
  const { stateMachineArn } = await sfn.send(new CreateStateMachineCommand({ name: stateMachineName, definition: DEFINITION, roleArn }));
  await events.send(new PutRuleCommand({ Name: stateMachineName, ScheduleExpression: 'cron(0 6 * * ? *)', State: 'ENABLED' }));
  await events.send(new PutTargetsCommand({ Rule: stateMachineName, Targets: [{ Id: stateMachineName, Arn: stateMachineArn, RoleArn: eventsRoleArn }] }));
  return stateMachineArn!;
}

const stateMachineNames = async () => ((await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? []).map((machine) => machine.name);
const ruleExists = (name: string) =>
  events.send(new DescribeRuleCommand({ Name: name })).then(
    () => true,
    (error: { name?: string }) => (error.name === 'ResourceNotFoundException' ? false : Promise.reject(error)),
  );
const roleExists = (name: string) =>
  iam.send(new GetRoleCommand({ RoleName: name })).then(
    () => true,
    (error: { name?: string }) => (error.name === 'NoSuchEntityException' ? false : Promise.reject(error)),
  );

describe('createScheduling', () => {
  it('makes both roles with the boundary, trust, tags and policy, and the on-demand foreach table with its TTL; twice is the same', async () => {
    // prepare
    const environment = scheduled('sched');
    const names = namesOf(environment.name);

    // act
    const first = await invoke(handler, { step: 'createScheduling', environment });
    const second = await invoke(handler, { step: 'createScheduling', environment });

    // assess
    expect(second).toEqual(first);
    expect(first).toEqual({ sfnRoleArn: names.sfnRoleArn, eventsRoleArn: names.eventsRoleArn, sfnTableName: names.sfnTableName });
    for (const [roleName, trust, policyName, policy] of [
      [names.sfnRoleName, sfnRoleTrustPolicy(EMULATOR_ACCOUNT_ID), SFN_ROLE_INLINE_POLICY, sfnRolePolicy(names)],
      [names.eventsRoleName, eventsRoleTrustPolicy(EMULATOR_ACCOUNT_ID), EVENTS_ROLE_INLINE_POLICY, eventsRolePolicy(names)],
    ] as const) {
      const { Role } = await iam.send(new GetRoleCommand({ RoleName: roleName }));
      expect(Role?.Path).toBe(names.iamPath);
      expect(Role?.PermissionsBoundary?.PermissionsBoundaryArn).toBe(process.env[SETTING.permissionsBoundaryArn]);
      expect(decode(Role?.AssumeRolePolicyDocument)).toEqual(trust);
      expect(tagMap(Role?.Tags)).toMatchObject({ [TAG.environment]: environment.name, [TAG.bucket]: names.bucket });
      const inline = await iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }));
      expect(decode(inline.PolicyDocument)).toEqual(policy);
    }
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: names.sfnTableName }));
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'pathspec', KeyType: 'HASH' }]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    const { TimeToLiveDescription } = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: names.sfnTableName }));
    expect(TimeToLiveDescription).toMatchObject({ AttributeName: TABLE_TTL_ATTRIBUTE, TimeToLiveStatus: 'ENABLED' });
    const { Tags } = await dynamo.send(new ListTagsOfResourceCommand({ ResourceArn: Table!.TableArn }));
    expect(tagMap(Tags)).toMatchObject({ [TAG.environment]: environment.name });
  });

  it('refuses a Step Functions role of its name that is not its own, and makes nothing else', async () => {
    // prepare
    const environment = scheduled('sched-taken');
    const names = namesOf(environment.name);
    await iam.send(
      new CreateRoleCommand({ RoleName: names.sfnRoleName, Path: names.iamPath, AssumeRolePolicyDocument: JSON.stringify(sfnRoleTrustPolicy(EMULATOR_ACCOUNT_ID)) }),
    );

    // act
    const attempt = invoke(handler, { step: 'createScheduling', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict', message: expect.stringContaining(names.sfnRoleName) });
    expect(await roleExists(names.eventsRoleName)).toBe(false);
  });
});

describe('deleteScheduling', () => {
  it("deletes the environment's rules, targets and state machines, its table and both roles, and nobody else's; twice is harmless", async () => {
    // prepare
    const environment = scheduled('sched-del');
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createScheduling', environment });
    const own = `${names.sfnStateMachinePrefix}_NightlyFlow`;
    await deployAsMetaflowWould(own, names.sfnRoleArn, names.eventsRoleArn);
    // Another environment whose name starts like this one's, and a state machine of nobody's environment.
    const neighbour = `${names.sfnStateMachinePrefix}-2_NightlyFlow`;
    const unprefixed = `NightlyFlow${environment.name.replace(/-/g, '')}`;
    await deployAsMetaflowWould(neighbour, names.sfnRoleArn, names.eventsRoleArn);
    await deployAsMetaflowWould(unprefixed, names.sfnRoleArn, names.eventsRoleArn);

    // act
    const answer = await invoke(handler, { step: 'deleteScheduling', environment });
    const again = await invoke(handler, { step: 'deleteScheduling', environment });

    // assess
    expect(answer).toEqual({ rulesDeleted: 1, stateMachinesDeleted: 1, tableDeleted: true, sfnRoleDeleted: true, eventsRoleDeleted: true });
    expect(again).toEqual({ rulesDeleted: 0, stateMachinesDeleted: 0, tableDeleted: false, sfnRoleDeleted: false, eventsRoleDeleted: false });
    const remaining = await stateMachineNames();
    expect(remaining).not.toContain(own);
    expect(remaining).toEqual(expect.arrayContaining([neighbour, unprefixed]));
    expect(await ruleExists(own)).toBe(false);
    expect(await ruleExists(neighbour)).toBe(true);
    expect((await events.send(new ListTargetsByRuleCommand({ Rule: neighbour }))).Targets).toHaveLength(1);
    await expect(dynamo.send(new DescribeTableCommand({ TableName: names.sfnTableName }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(await roleExists(names.sfnRoleName)).toBe(false);
    expect(await roleExists(names.eventsRoleName)).toBe(false);
  });

  it('leaves the state machines of its prefix alone when a Step Functions role of its name is not its own', async () => {
    // prepare: another deployment with the same prefix holds the name.
    const environment = scheduled('sched-foreign');
    const names = namesOf(environment.name);
    await iam.send(
      new CreateRoleCommand({
        RoleName: names.sfnRoleName,
        Path: names.iamPath,
        AssumeRolePolicyDocument: JSON.stringify(sfnRoleTrustPolicy(EMULATOR_ACCOUNT_ID)),
        Tags: [{ Key: TAG.environment, Value: environment.name }, { Key: TAG.managedBy, Value: 'mfenv-team2' }],
      }),
    );
    const theirs = `${names.sfnStateMachinePrefix}_TheirFlow`;
    await deployAsMetaflowWould(theirs, names.sfnRoleArn, names.eventsRoleArn);

    // act
    const answer = await invoke(handler, { step: 'deleteScheduling', environment });

    // assess
    expect(answer).toMatchObject({ rulesDeleted: 0, stateMachinesDeleted: 0, sfnRoleDeleted: false });
    expect(await stateMachineNames()).toContain(theirs);
    expect(await ruleExists(theirs)).toBe(true);
    expect(await roleExists(names.sfnRoleName)).toBe(true);
  });

  it('deletes nothing when the registry shows no teardown', async () => {
    // prepare
    const environment = scheduled('sched-guard');
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createScheduling', environment });

    // act
    const attempt = invoke(handler, { step: 'deleteScheduling', environment }, { unrecorded: true });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'TeardownNotRecorded' });
    expect(await roleExists(names.sfnRoleName)).toBe(true);
  });
});

describe('deregisterJobDefinitions', () => {
  it("deregisters Metaflow's job definitions that name the environment's job role, and no other", async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('jobdefs'));
    const names = namesOf(environment.name);
    const other = namesOf(uniqueName('jobdefs-other'));
    const register = (jobDefinitionName: string, jobRoleArn: string) =>
      batch.send(
        new RegisterJobDefinitionCommand({
          jobDefinitionName,
          type: 'container',
          containerProperties: { image: 'python:3.12', jobRoleArn, command: ['true'], resourceRequirements: [{ type: 'VCPU', value: '1' }, { type: 'MEMORY', value: '1024' }] },
        }),
      );
    const ours = await register(`metaflow_${environment.name.replace(/-/g, '')}a`, names.jobRoleArn);
    const oursToo = await register(`metaflow_${environment.name.replace(/-/g, '')}a`, names.jobRoleArn);
    const someoneElses = await register(`metaflow_${environment.name.replace(/-/g, '')}b`, other.jobRoleArn);

    // act
    const answer = await invoke(handler, { step: 'deregisterJobDefinitions', environment });

    // assess
    expect(answer).toEqual({ deregistered: 2 });
    const { jobDefinitions = [] } = await batch.send(
      new DescribeJobDefinitionsCommand({ jobDefinitions: [ours.jobDefinitionArn!, oursToo.jobDefinitionArn!, someoneElses.jobDefinitionArn!] }),
    );
    const statusOf = (arn?: string) => jobDefinitions.find((definition) => definition.jobDefinitionArn === arn)?.status;
    expect(statusOf(ours.jobDefinitionArn)).toBe('INACTIVE');
    expect(statusOf(oursToo.jobDefinitionArn)).toBe('INACTIVE');
    expect(statusOf(someoneElses.jobDefinitionArn)).toBe('ACTIVE');
  });
});
