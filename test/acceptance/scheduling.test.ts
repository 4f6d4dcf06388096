/**
 * Acceptance: scheduled flows. A teammate asks for `"scheduling": true`, and the real Metaflow client deploys a
 * flow with @schedule and a foreach to Step Functions (`step-functions create`) with nothing but the served
 * payload and the environment's access role; DELETE then leaves nothing of it behind. Without scheduling,
 * Metaflow refuses to deploy as it documents.
 *
 * Local mode: Metaflow's Step Functions client reaches local mode's endpoint (AWS_ENDPOINT_URL_SFN), which hands
 * every call not on the project's own state machines to the emulator; EventBridge is the emulator's
 * (AWS_ENDPOINT_URL_EVENTBRIDGE). IAM is not enforced by the emulator (see metaflow.test.ts): that the access
 * role may touch only its own prefix is proven offline (test/unit/core/access-simulation.test.ts).
 */
import { BatchClient, DescribeJobDefinitionsCommand } from '@aws-sdk/client-batch';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeRuleCommand, EventBridgeClient, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { emulatorClientConfig } from '../../infra/local/bootstrap';
import type { LocalUser } from '../../infra/local/runtime';
import { useLocalMode } from '../support/local-mode';
import { createMetaflowProfile, type MetaflowProfile, runPython } from '../support/metaflow';
import { type ApiClient, apiClient } from '../support/signed-client';

process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
jest.setTimeout(240_000);

const context = useLocalMode();

interface Environment {
  name: string;
  status: string;
  statusReason: string | null;
  spec: { scheduling?: boolean };
  resources: Record<string, string>;
  config?: Record<string, string>;
}

const profiles: MetaflowProfile[] = [];
let sfn: SFNClient;
let events: EventBridgeClient;
let dynamo: DynamoDBClient;
let iam: IAMClient;
let batch: BatchClient;
let api: ApiClient;
/** The teammate: owner of both environments, whose keys the access role's AWS profile starts from. */
let carol: LocalUser;

beforeAll(async () => {
  const admin = emulatorClientConfig(context.local.emulatorEndpoint);
  sfn = new SFNClient(admin);
  events = new EventBridgeClient(admin);
  dynamo = new DynamoDBClient(admin);
  iam = new IAMClient(admin);
  batch = new BatchClient(admin);
  carol = await context.local.createUser('carol');
  api = apiClient(context.local.apiUrl, carol);
});

afterAll(() => {
  for (const profile of profiles) profile.dispose();
  for (const client of [sfn, events, dynamo, iam, batch]) client?.destroy();
});

async function waitWhile(name: string, status: string, timeoutMs = 120_000): Promise<Environment> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await api.get(`/environments/${name}`);
    const environment = response.json as Environment;
    if (environment.status !== status) return environment;
    if (Date.now() > deadline) throw new Error(`${name} is still ${status} after ${timeoutMs / 1000} s`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

async function createReady(body: Record<string, unknown>): Promise<{ environment: Environment; configText: string }> {
  const created = await api.post('/environments', body);
  expect(created.status).toBe(202);
  const environment = await waitWhile(String(body.name), 'CREATING');
  expect(environment).toMatchObject({ status: 'READY' });
  const config = await api.get(`/environments/${body.name}/config`);
  return { environment, configText: config.text };
}

/** The teammate's machine: the served config, an AWS profile assuming the access role, Step Functions and EventBridge endpoints. */
function profileFor(environment: Environment, configText: string, flows = ['scheduled_flow.py']): MetaflowProfile {
  const profile = createMetaflowProfile({
    name: environment.name,
    config: configText,
    credentials: carol,
    accessRoleArn: environment.resources.accessRoleArn,
    emulatorEndpoint: context.local.emulatorEndpoint,
    flows,
    endpoints: { AWS_ENDPOINT_URL_SFN: context.local.sfnEndpoint, AWS_ENDPOINT_URL_EVENTBRIDGE: context.local.emulatorEndpoint },
  });
  profiles.push(profile);
  return profile;
}

const stateMachineNames = async () => ((await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? []).map((machine) => machine.name!);
const missing = (error: { name?: string }) => (/NotFound|NoSuchEntity/.test(error.name ?? '') ? 'missing' : Promise.reject(error));

const sched = { name: 'sched', environment: undefined as unknown as Environment, profile: undefined as unknown as MetaflowProfile };

test('an environment created with "scheduling": true is READY with its scheduling resources and payload keys', async () => {
  // act
  const { environment, configText } = await createReady({ name: 'sched', maxVcpus: 2, gpu: false, scheduling: true });
  sched.environment = environment;
  sched.profile = profileFor(environment, configText);

  // assess
  const { resources, config } = environment;
  expect(environment.spec.scheduling).toBe(true);
  expect(config).toMatchObject({
    METAFLOW_SFN_IAM_ROLE: resources.sfnRoleArn,
    METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE: resources.eventsRoleArn,
    METAFLOW_SFN_DYNAMO_DB_TABLE: resources.sfnTableName,
    METAFLOW_SFN_STATE_MACHINE_PREFIX: resources.sfnStateMachinePrefix,
  });
  expect(resources.sfnStateMachinePrefix).toMatch(/-sched$/);
  await iam.send(new GetRoleCommand({ RoleName: resources.sfnRoleArn!.split('/').pop() }));
  await dynamo.send(new DescribeTableCommand({ TableName: resources.sfnTableName }));
});

test('the real Metaflow client deploys a scheduled foreach flow under the environment prefix, with its access role only', async () => {
  // prepare
  const prefix = sched.environment.resources.sfnStateMachinePrefix!;
  const expected = `${prefix}_NightlyFlow`;

  // act
  const result = await runPython(['scheduled_flow.py', '--no-pylint', 'step-functions', 'create'], {
    cwd: sched.profile.workdir,
    env: sched.profile.env,
    timeoutMs: 180_000,
  });

  // assess
  expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
  const machines = await stateMachineNames();
  expect(machines).toContain(expected);
  const rule = await events.send(new DescribeRuleCommand({ Name: expected }));
  expect(rule.ScheduleExpression).toMatch(/^cron\(/);
  const { Targets = [] } = await events.send(new ListTargetsByRuleCommand({ Rule: expected }));
  expect(Targets.map((target) => target.RoleArn)).toEqual([sched.environment.resources.eventsRoleArn]);
  // Everything Metaflow made carries the environment's prefix.
  expect(machines.filter((name) => name.includes('NightlyFlow'))).toEqual([expected]);
  // Compiling registered the steps' job definitions, naming the environment's job role: the teardown must remove them.
  const { jobDefinitions = [] } = await batch.send(new DescribeJobDefinitionsCommand({ status: 'ACTIVE' }));
  expect(jobDefinitions.filter((definition) => definition.containerProperties?.jobRoleArn === sched.environment.resources.jobRoleArn).length).toBeGreaterThan(0);
});

test('DELETE leaves no state machine, rule, table, role or job definition of the environment in the emulator', async () => {
  // prepare
  const { resources } = sched.environment;
  const prefix = `${resources.sfnStateMachinePrefix}_`;

  // act
  const deleted = await api.delete('/environments/sched');
  const final = await waitWhile('sched', 'DELETING');

  // assess
  expect(deleted.status).toBe(202);
  expect(final).toMatchObject({ status: 'DELETED' });
  expect((await stateMachineNames()).filter((name) => name.startsWith(prefix))).toEqual([]);
  expect(await events.send(new DescribeRuleCommand({ Name: `${prefix}NightlyFlow` })).catch(missing)).toBe('missing');
  expect(await dynamo.send(new DescribeTableCommand({ TableName: resources.sfnTableName })).catch(missing)).toBe('missing');
  for (const roleArn of [resources.sfnRoleArn!, resources.eventsRoleArn!, resources.jobRoleArn!, resources.accessRoleArn!]) {
    expect(await iam.send(new GetRoleCommand({ RoleName: roleArn.split('/').pop() })).catch(missing)).toBe('missing');
  }
  const { jobDefinitions = [] } = await batch.send(new DescribeJobDefinitionsCommand({ status: 'ACTIVE' }));
  expect(jobDefinitions.filter((definition) => definition.containerProperties?.jobRoleArn === resources.jobRoleArn)).toEqual([]);
});

test('without scheduling, step-functions create fails for want of METAFLOW_SFN_IAM_ROLE (or, with a foreach, of the table) and makes nothing', async () => {
  // prepare
  const { environment, configText } = await createReady({ name: 'plain', maxVcpus: 2, gpu: false });
  const profile = profileFor(environment, configText, ['hourly_flow.py', 'scheduled_flow.py']);
  const deploy = (flow: string) => runPython([flow, '--no-pylint', 'step-functions', 'create'], { cwd: profile.workdir, env: profile.env, timeoutMs: 120_000 });

  // act
  const linear = await deploy('hourly_flow.py');
  const withForeach = await deploy('scheduled_flow.py');

  // assess
  expect(environment.config).not.toHaveProperty('METAFLOW_SFN_IAM_ROLE');
  expect(environment.resources).not.toHaveProperty('sfnRoleArn');
  expect(linear.code).not.toBe(0);
  // Metaflow documents "No IAM role found for AWS Step Functions" (step_functions.py, deploy), but the pinned
  // version compiles the state machine first, and compiling reads the partition from SFN_IAM_ROLE: it stops on
  // the missing role there, naming it, before it can say so in words.
  expect(`${linear.stdout}\n${linear.stderr}`).toMatch(/No IAM role found for AWS Step Functions|SFN_IAM_ROLE\.split/);
  // A foreach is compiled before the role is looked for: Metaflow names the missing table first.
  expect(withForeach.code).not.toBe(0);
  expect(`${withForeach.stdout}\n${withForeach.stderr}`).toMatch(/An AWS DynamoDB table is needed to support foreach/);
  expect((await stateMachineNames()).filter((name) => /HourlyFlow|NightlyFlow/.test(name))).toEqual([]);
});
