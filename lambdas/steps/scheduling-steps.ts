/**
 * Scheduling steps: what Metaflow's `step-functions create` needs of an environment that asks for scheduled
 * flows (`spec.scheduling`), and the teardown of what Metaflow itself made in the environment's name.
 *
 * - createScheduling: the role Step Functions runs a flow's Batch jobs with, the role EventBridge starts
 *   executions with (both with the boundary, tagged, under `/<prefix>/`), and an on-demand foreach table
 *   (`pathspec` hash key, `ttl` expiry: Metaflow's dynamo_db_client.py). Idempotent; a resource of ours is
 *   re-asserted, one with our name that is not ours is a conflict. Usable on a READY environment too.
 * - deleteScheduling: the EventBridge rules and state machines named `<prefix>-<name>_*` (running executions
 *   stopped first), then the table and the two roles. Run by every teardown, scheduling on or not, so a
 *   leftover of a failed create or a half-done change is found all the same.
 * - deregisterJobDefinitions: every active job definition whose job role is the environment's, for every
 *   environment (Metaflow registers one per image and resources, and they outlive the role they name).
 *
 * Metaflow tags none of its state machines or rules, so they are ours by name; the name is reserved to the
 * environment by its access role (policies.ts). A Step Functions role or job role of our name that is not ours
 * (another deployment with the same prefix) means those names are not ours either: then nothing is touched.
 */
import {
  type AttributeDefinition,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type KeySchemaElement,
  ListTagsOfResourceCommand,
  type TableDescription,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { DeregisterJobDefinitionCommand, DescribeJobDefinitionsCommand } from '@aws-sdk/client-batch';
import { DeleteRuleCommand, ListRulesCommand, ListTargetsByRuleCommand, RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  DeleteStateMachineCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  type StateMachineListItem,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { batchClient, dynamoClient, eventsClient, sfnClient } from '../core/clients';
import type { WorkflowEnvironment } from '../core/environment';
import { TransientError, ValidationError } from '../core/errors';
import { logger } from '../core/logger';
import { SFN_PREFIX_MAX_LENGTH, namesFor, roleTagListFor, schedulingPrefixFits, tagListFor } from '../core/naming';
import {
  type PolicyDocument,
  eventsRolePolicy,
  eventsRoleTrustPolicy,
  sfnRolePolicy,
  sfnRoleTrustPolicy,
} from '../core/policies';
import { currentDeployment, settings } from '../core/settings';
import { hasErrorCode } from './aws-errors';
import { assertOurs, isOurs } from './ownership';
import { deleteInlinePoliciesAndRole, ensureRole, getRole, ownRoleToDelete, putRolePolicy } from './roles';
import { type StepInput, type StepTable, stepHandler } from './step';

/** Inline policy names of the two roles. */
export const SFN_ROLE_INLINE_POLICY = 'run-own-flows';
export const EVENTS_ROLE_INLINE_POLICY = 'start-own-state-machines';

/** Metaflow's foreach table: `pathspec` is its key, `ttl` (epoch seconds) when DynamoDB may drop an item. */
const TABLE_KEY: KeySchemaElement[] = [{ AttributeName: 'pathspec', KeyType: 'HASH' }];
const TABLE_ATTRIBUTES: AttributeDefinition[] = [{ AttributeName: 'pathspec', AttributeType: 'S' }];
export const TABLE_TTL_ATTRIBUTE = 'ttl';

function context(environment: WorkflowEnvironment) {
  const deployment = currentDeployment();
  return {
    names: namesFor(deployment, environment.name),
    roleTags: roleTagListFor(deployment, environment.name, environment.owner),
    tags: tagListFor(deployment, environment.name, environment.owner),
  };
}

async function unlessGone<T>(call: () => Promise<T>, ...codes: string[]): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (hasErrorCode(error, ...codes)) return undefined;
    throw error;
  }
}

/** A role with the boundary, trust and tags, or one of ours re-asserted, and its one inline policy put. */
async function ensureRoleWithPolicy(
  environment: WorkflowEnvironment,
  role: { name: string; path: string; trust: PolicyDocument; policyName: string; policy: PolicyDocument; description: string },
  tags: { Key: string; Value: string }[],
): Promise<void> {
  await ensureRole(environment, { name: role.name, path: role.path, trust: role.trust, description: role.description, tags });
  await putRolePolicy(role.name, role.policyName, role.policy);
}

const describeTable = (tableName: string): Promise<TableDescription | undefined> =>
  unlessGone(async () => (await dynamoClient().send(new DescribeTableCommand({ TableName: tableName }))).Table, 'ResourceNotFound');

async function tableTags(tableArn: string) {
  const tags: { Key?: string; Value?: string }[] = [];
  let NextToken: string | undefined;
  do {
    const page = await dynamoClient().send(new ListTagsOfResourceCommand({ ResourceArn: tableArn, NextToken }));
    tags.push(...(page.Tags ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return tags;
}

/** The foreach table, on demand (nothing bills while no flow runs), expiring items by `ttl`. */
async function ensureTable(environment: WorkflowEnvironment, tableName: string, tags: { Key: string; Value: string }[]): Promise<void> {
  const dynamo = dynamoClient();
  try {
    await dynamo.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: TABLE_KEY,
        AttributeDefinitions: TABLE_ATTRIBUTES,
        Tags: tags,
      }),
    );
  } catch (error) {
    if (!hasErrorCode(error, 'ResourceInUse')) throw error;
    const existing = await describeTable(tableName);
    if (!existing?.TableArn) throw new TransientError(`The DynamoDB table "${tableName}" is being created or deleted right now.`);
    assertOurs(`The DynamoDB table "${tableName}"`, await tableTags(existing.TableArn), environment.name);
  }
  const ttl = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  const status = ttl.TimeToLiveDescription?.TimeToLiveStatus;
  if (status === 'ENABLED' || status === 'ENABLING') return;
  try {
    await dynamo.send(
      new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: TABLE_TTL_ATTRIBUTE, Enabled: true } }),
    );
  } catch (error) {
    // A table is CREATING for a few seconds; its TTL can be set once it is ACTIVE.
    if (hasErrorCode(error, 'ResourceInUse', 'ResourceNotFound')) {
      throw new TransientError(`The DynamoDB table "${tableName}" is not active yet.`);
    }
    throw error;
  }
}

async function createScheduling({ environment }: StepInput) {
  const { names, roleTags, tags } = context(environment);
  if (!schedulingPrefixFits(names)) {
    throw new ValidationError(
      `Scheduling needs state machine names that start with "${names.sfnStateMachinePrefix}_" in at most ` +
        `${SFN_PREFIX_MAX_LENGTH + 1} characters; create the environment with a shorter name, or without scheduling.`,
    );
  }
  const accountId = settings.accountId();
  await ensureRoleWithPolicy(
    environment,
    {
      name: names.sfnRoleName,
      path: names.iamPath,
      trust: sfnRoleTrustPolicy(accountId),
      policyName: SFN_ROLE_INLINE_POLICY,
      policy: sfnRolePolicy(names),
      description: `Step Functions runs the scheduled flows of the mfenv environment ${environment.name} with it.`,
    },
    roleTags,
  );
  await ensureRoleWithPolicy(
    environment,
    {
      name: names.eventsRoleName,
      path: names.iamPath,
      trust: eventsRoleTrustPolicy(accountId),
      policyName: EVENTS_ROLE_INLINE_POLICY,
      policy: eventsRolePolicy(names),
      description: `EventBridge starts the scheduled flows of the mfenv environment ${environment.name} with it.`,
    },
    roleTags,
  );
  await ensureTable(environment, names.sfnTableName, tags);
  return { sfnRoleArn: names.sfnRoleArn, eventsRoleArn: names.eventsRoleArn, sfnTableName: names.sfnTableName };
}

// ---- Deleting ----

/** Whether a role of this name is absent or ours: when it exists and is someone else's, so are names like it. */
async function roleIsOursOrGone(environment: WorkflowEnvironment, roleName: string): Promise<boolean> {
  const role = await getRole(roleName);
  if (!role || isOurs(role.Tags, environment.name)) return true;
  logger.warn('role with our name is not ours; leaving what carries its names alone', { roleName });
  return false;
}

/** Every rule `<prefix>_*`: its targets removed (EventBridge refuses to delete a rule with targets), then itself. */
async function deleteRules(namePrefix: string): Promise<number> {
  const events = eventsClient();
  const ruleNames: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await events.send(new ListRulesCommand({ NamePrefix: namePrefix, NextToken }));
    ruleNames.push(...(page.Rules ?? []).map((rule) => rule.Name!).filter((name) => name?.startsWith(namePrefix)));
    NextToken = page.NextToken;
  } while (NextToken);
  for (const Rule of ruleNames) {
    const targets = await unlessGone(() => events.send(new ListTargetsByRuleCommand({ Rule })), 'ResourceNotFound');
    const Ids = (targets?.Targets ?? []).map((target) => target.Id!).filter(Boolean);
    if (Ids.length > 0) await unlessGone(() => events.send(new RemoveTargetsCommand({ Rule, Ids, Force: false })), 'ResourceNotFound');
    await unlessGone(() => events.send(new DeleteRuleCommand({ Name: Rule })), 'ResourceNotFound');
  }
  return ruleNames.length;
}

/** Every state machine `<prefix>_*`: running executions stopped (deleting alone lets them run on), then itself. */
async function deleteStateMachines(namePrefix: string): Promise<number> {
  const sfn = sfnClient();
  const found: StateMachineListItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListStateMachinesCommand({ nextToken }));
    found.push(...(page.stateMachines ?? []).filter((machine) => machine.name?.startsWith(namePrefix)));
    nextToken = page.nextToken;
  } while (nextToken);
  for (const machine of found) {
    const stateMachineArn = machine.stateMachineArn!;
    let executionsToken: string | undefined;
    do {
      const page = await unlessGone(
        () => sfn.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', nextToken: executionsToken })),
        'StateMachineDoesNotExist',
      );
      for (const execution of page?.executions ?? []) {
        await unlessGone(
          () => sfn.send(new StopExecutionCommand({ executionArn: execution.executionArn, cause: 'The mfenv environment is being deleted.' })),
          'ExecutionDoesNotExist',
        );
      }
      executionsToken = page?.nextToken;
    } while (executionsToken);
    await unlessGone(() => sfn.send(new DeleteStateMachineCommand({ stateMachineArn })), 'StateMachineDoesNotExist');
  }
  return found.length;
}

async function deleteTable(environment: WorkflowEnvironment, tableName: string): Promise<boolean> {
  const table = await describeTable(tableName);
  if (!table?.TableArn) return false;
  if (!isOurs(await tableTags(table.TableArn), environment.name)) {
    logger.warn('table with our name is not ours; not touching it', { tableName });
    return false;
  }
  if (table.TableStatus === 'CREATING' || table.TableStatus === 'UPDATING') {
    throw new TransientError(`The DynamoDB table "${tableName}" is ${table.TableStatus}; it can be deleted once it is ACTIVE.`);
  }
  await unlessGone(() => dynamoClient().send(new DeleteTableCommand({ TableName: tableName })), 'ResourceNotFound');
  return true;
}

/** A role of ours with inline policies only (these roles are never given a managed one): emptied, then deleted. */
async function deleteRole(environment: WorkflowEnvironment, roleName: string): Promise<boolean> {
  if (!(await ownRoleToDelete(environment, roleName))) return false;
  await deleteInlinePoliciesAndRole(roleName);
  return true;
}

async function deleteScheduling({ environment }: StepInput) {
  const { names } = context(environment);
  const namePrefix = `${names.sfnStateMachinePrefix}_`;
  let rulesDeleted = 0;
  let stateMachinesDeleted = 0;
  if (await roleIsOursOrGone(environment, names.sfnRoleName)) {
    // Rules first: no schedule may start an execution of a state machine being deleted.
    rulesDeleted = await deleteRules(namePrefix);
    stateMachinesDeleted = await deleteStateMachines(namePrefix);
  }
  const tableDeleted = await deleteTable(environment, names.sfnTableName);
  const sfnRoleDeleted = await deleteRole(environment, names.sfnRoleName);
  const eventsRoleDeleted = await deleteRole(environment, names.eventsRoleName);
  return { rulesDeleted, stateMachinesDeleted, tableDeleted, sfnRoleDeleted, eventsRoleDeleted };
}

/**
 * Job definitions are account-wide and outlive the job role they name: every active one of Metaflow's
 * (`metaflow_*`) that names this environment's job role is deregistered, so none is left behind to be reused
 * with a role of the same name later.
 */
async function deregisterJobDefinitions({ environment }: StepInput) {
  const { names } = context(environment);
  if (!(await roleIsOursOrGone(environment, names.jobRoleName))) return { deregistered: 0 };
  const batch = batchClient();
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await batch.send(new DescribeJobDefinitionsCommand({ status: 'ACTIVE', maxResults: 100, nextToken }));
    for (const definition of page.jobDefinitions ?? []) {
      const jobRoleArn = definition.containerProperties?.jobRoleArn;
      if (definition.jobDefinitionName?.startsWith('metaflow_') && jobRoleArn === names.jobRoleArn && definition.jobDefinitionArn) {
        arns.push(definition.jobDefinitionArn);
      }
    }
    nextToken = page.nextToken;
  } while (nextToken);
  for (const jobDefinition of arns) {
    await unlessGone(() => batch.send(new DeregisterJobDefinitionCommand({ jobDefinition })), 'ClientException');
  }
  return { deregistered: arns.length };
}

export const steps: StepTable<'scheduling'> = { createScheduling, deleteScheduling, deregisterJobDefinitions };

export const handler = stepHandler('scheduling', steps);
