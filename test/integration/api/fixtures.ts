/**
 * What the API integration tests share: callers (two teammates and an admin arriving through a role
 * session), stand-in state machines in the emulator's Step Functions so StartExecution really happens over
 * HTTP, readers for the executions they got, a snapshot of the registry (to prove a refused request changed
 * nothing), and a way to move a record along as the workflows would.
 */
import { DeleteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { CreateStateMachineCommand, DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { handler } from '../../../lambdas/api/handler';
import { dynamoClient } from '../../../lambdas/core/clients';
import type { EnvironmentRecord, EnvironmentStatus } from '../../../lambdas/core/environment';
import { logger } from '../../../lambdas/core/logger';
import { metaflowConfigFor } from '../../../lambdas/core/metaflow-config';
import { namesFor } from '../../../lambdas/core/naming';
import * as registry from '../../../lambdas/core/registry';
import { SETTING, currentDeployment, settings } from '../../../lambdas/core/settings';
import { ACCOUNT_ID, apiCaller, userArn } from '../../support/api-events';
import type { EmulatorContext } from '../../support/emulator';

/** The admin role as the platform owner lists it at deploy time (with its IAM path)... */
export const ADMIN_ROLE_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/platform/PlatformAdmin`;
/** ...and as API Gateway reports a caller who assumed it. */
export const ADMIN_SESSION_ARN = `arn:aws:sts::${ACCOUNT_ID}:assumed-role/PlatformAdmin/ops-on-call`;

export const asAlice = apiCaller(handler, userArn('alice'));
export const asBob = apiCaller(handler, userArn('bob'));
export const asAdmin = apiCaller(handler, ADMIN_SESSION_ARN);

export function quietLogs(): void {
  logger.setLogLevel('SILENT');
}

/** A unique environment name per test, so tests sharing an emulator do not see each other. */
let counter = 0;
export function uniqueName(base: string): string {
  counter += 1;
  return `${base}-${counter}`;
}

export interface Workflows {
  sfn: SFNClient;
  provisionArn: string;
  teardownArn: string;
  /** The update workflow's stand-in (PATCH /environments/{name}). */
  updateArn: string;
}

let standIns = 0;

/**
 * Two state machines with a trivial definition, standing in for provision and teardown: the API only starts
 * them, so what matters is that StartExecution reaches Step Functions with the right name and input.
 * Each call makes a new pair, so a test sees only the executions it caused.
 */
export async function createStandInWorkflows(context: EmulatorContext, sfn = new SFNClient(context.clientConfig)): Promise<Workflows> {
  standIns += 1;
  const create = async (name: string) =>
    (
      await sfn.send(
        new CreateStateMachineCommand({
          name,
          roleArn: `arn:aws:iam::${ACCOUNT_ID}:role/mfenv/stand-in`,
          definition: JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Pass', End: true } } }),
        }),
      )
    ).stateMachineArn!;
  const workflows = {
    sfn,
    provisionArn: await create(`provision-stand-in-${standIns}`),
    teardownArn: await create(`teardown-stand-in-${standIns}`),
    updateArn: await create(`update-stand-in-${standIns}`),
  };
  process.env[SETTING.provisionStateMachineArn] = workflows.provisionArn;
  process.env[SETTING.teardownStateMachineArn] = workflows.teardownArn;
  process.env[SETTING.updateStateMachineArn] = workflows.updateArn;
  return workflows;
}

/**
 * For files whose tests need exact counts: an empty registry and a new pair of stand-in workflows before
 * each test, the quota settings of the file restored after it. The returned object is refilled in place
 * before every test, so a file keeps one reference to it.
 */
export function useFreshRegistryAndWorkflows(emulator: { context: EmulatorContext }): Workflows {
  const workflows = {} as Workflows;
  const savedEnv = { ...process.env };
  beforeAll(() => quietLogs());
  beforeEach(async () => {
    await clearRegistry();
    Object.assign(workflows, await createStandInWorkflows(emulator.context, workflows.sfn));
  });
  afterEach(() => {
    // Quotas changed by a test go back to the file's values.
    for (const setting of [SETTING.maxEnvironmentsPerOwner, SETTING.maxEnvironments]) {
      process.env[setting] = emulator.context.bootstrap.env[setting];
    }
  });
  afterAll(() => {
    workflows.sfn?.destroy();
    process.env = savedEnv;
  });
  return workflows;
}

export interface StartedExecution {
  name: string;
  input: any;
}

/** Every execution of a state machine, with its input parsed. */
export async function executionsOf(workflows: Workflows, stateMachineArn: string): Promise<StartedExecution[]> {
  const { executions = [] } = await workflows.sfn.send(new ListExecutionsCommand({ stateMachineArn }));
  const started: StartedExecution[] = [];
  for (const execution of executions) {
    const described = await workflows.sfn.send(new DescribeExecutionCommand({ executionArn: execution.executionArn }));
    started.push({ name: described.name!, input: JSON.parse(described.input ?? 'null') });
  }
  return started.sort((a, b) => a.name.localeCompare(b.name));
}

/** Executions whose name belongs to environment `name` (names are `<environment>-<kind>-<generation>`). */
export async function executionsFor(workflows: Workflows, name: string) {
  const belongs = (execution: StartedExecution) => execution.name.startsWith(`${name}-`) && /-\d+$/.test(execution.name);
  return {
    provision: (await executionsOf(workflows, workflows.provisionArn)).filter(belongs),
    teardown: (await executionsOf(workflows, workflows.teardownArn)).filter(belongs),
    update: (await executionsOf(workflows, workflows.updateArn)).filter(belongs),
  };
}

async function executionCount(workflows: Workflows, stateMachineArn: string): Promise<number> {
  const { executions = [] } = await workflows.sfn.send(new ListExecutionsCommand({ stateMachineArn }));
  return executions.length;
}

/** Everything the API could have changed: every registry item, and the number of executions started. */
export async function snapshot(workflows: Workflows) {
  const { Items = [] } = await dynamoClient().send(new ScanCommand({ TableName: settings.tableName(), ConsistentRead: true }));
  return {
    items: Items.map((item) => JSON.stringify(item)).sort(),
    provisions: await executionCount(workflows, workflows.provisionArn),
    teardowns: await executionCount(workflows, workflows.teardownArn),
    updates: await executionCount(workflows, workflows.updateArn),
  };
}

/** Empties the registry table (environments and idempotency records): each test starts with no environment. */
export async function clearRegistry(): Promise<void> {
  const { Items = [] } = await dynamoClient().send(new ScanCommand({ TableName: settings.tableName(), ConsistentRead: true }));
  for (const item of Items) {
    await dynamoClient().send(new DeleteCommand({ TableName: settings.tableName(), Key: { pk: item.pk } }));
  }
}

/** Moves a record to `to` as a workflow would (conditional on its current status and generation). */
export async function advance(name: string, to: EnvironmentStatus, set: Partial<EnvironmentRecord> = {}): Promise<EnvironmentRecord> {
  const current = (await registry.getEnvironment(name))!;
  const names = namesFor(currentDeployment(), name);
  const config = to === 'READY' ? metaflowConfigFor({ environmentName: name, names }) : current.config;
  return registry.transition(name, {
    from: [current.status],
    generation: current.generation,
    to,
    statusReason: to.endsWith('FAILED') ? `Simulated ${to} for the test.` : null,
    set: { config, ...set },
  });
}

/** The bucket name an environment gets under the emulator's deployment. */
export const bucketOf = (name: string) => namesFor(currentDeployment(), name).bucket;
