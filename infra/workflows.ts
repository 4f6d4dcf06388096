/**
 * The two workflows (STATE_MACHINES in lambdas/steps/catalogue.ts) and their step Lambdas (STEP_FUNCTIONS):
 * one function per entry, each with its own role holding only what its steps need. The ASL files are
 * loaded as they are and inlined into the template; their `${...}` placeholders are filled with the step
 * functions' ARNs, and each state machine may invoke exactly the functions its file names.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  STATE_MACHINES,
  STEP_FUNCTIONS,
  STEP_FUNCTION_IDS,
  type StateMachineId,
  type StepFunctionId,
} from '../lambdas/steps/catalogue';
import type { MfenvConfig } from './config';
import {
  bindBatchServiceRole,
  bindDeployment,
  bindNetwork,
  bindEnvironmentSubnets,
  bindIsolation,
  bindNetworkBlocks,
  bindPermissionsBoundary,
  type IsolationSettings,
  bindRegistry,
  bindStateMachine,
  type DeploymentSettings,
  LOG_RETENTION,
  MfenvFunction,
} from './functions';
import { PROJECT_ROOT } from './lambda-bundle';
import type { Network } from './network';
import { type ResourcePatterns, resourcePatterns, STEP_PERMISSIONS } from './permissions';

export interface WorkflowsProps {
  config: MfenvConfig;
  deployment: DeploymentSettings;
  table: dynamodb.ITable;
  network: Network;
  boundaryArn: string;
  /** Service role the compute environments name; undefined: none, so Batch uses its service-linked role. */
  batchServiceRoleArn?: string;
}

/** Network isolation as the functions read it: on or off (context mfenv:networkIsolation), and where. */
function isolationOf(c: WorkflowsProps): IsolationSettings {
  return {
    enabled: c.config.networkIsolation,
    vpcId: c.network.vpc.vpcId,
    routeTableId: c.network.routeTableId,
    s3EndpointId: c.network.s3Endpoint.vpcEndpointId,
    environmentSubnetRange: c.config.environmentSubnetRange,
  };
}

/**
 * Every Task state of the ASL files has TimeoutSeconds 120: a step Lambda gives up a little earlier, so
 * the workflow sees the function's own timeout error rather than a bare States.Timeout.
 */
const STEP_TIMEOUT = Duration.seconds(100);

/** Fixed state machine names: the registry steps start the teardown by an ARN built from its name. */
export function stateMachineName(stackName: string, id: StateMachineId): string {
  return `${stackName}-${id}`;
}

/** The `${Placeholder}` names of every Task state's FunctionName in an ASL definition (Parallel and Map included). */
export function taskFunctionPlaceholders(definition: unknown): Set<string> {
  const found = new Set<string>();
  const visit = (states: Record<string, Record<string, unknown>> | undefined) => {
    for (const state of Object.values(states ?? {})) {
      const functionName = (state.Parameters as Record<string, unknown> | undefined)?.FunctionName;
      const match = typeof functionName === 'string' ? /^\$\{(\w+)\}$/.exec(functionName) : null;
      if (state.Type === 'Task' && match?.[1]) found.add(match[1]);
      for (const branch of (state.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []) visit(branch.States);
      const processor = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, Record<string, unknown>> } | undefined;
      if (processor) visit(processor.States);
    }
  };
  visit((definition as { States?: Record<string, Record<string, unknown>> }).States);
  return found;
}

interface BindingContext extends WorkflowsProps {
  patterns: ResourcePatterns;
  teardownStateMachineArn: string;
}

/** The settings (with their grants) each step Lambda gets. Keyed by the catalogue, so none is forgotten. */
const STEP_BINDINGS: Record<StepFunctionId, (fn: MfenvFunction, context: BindingContext) => void> = {
  registry: (fn, c) => {
    bindRegistry(fn, c.table, 'workflow');
    // A failed create starts the teardown in rollback mode.
    bindStateMachine(fn, 'teardownStateMachineArn', c.teardownStateMachineArn);
    fn.setSetting('deletedRecordRetentionDays', String(c.config.deletedRecordRetentionDays));
    // markReady writes the payload, which names the registry of the task images.
    fn.setSetting('batchContainerRegistry', c.config.batchContainerRegistry);
  },
  bucket: (fn, c) => {
    bindRegistry(fn, c.table, 'read');
    fn.setSetting('bucketTlsOnly', 'true');
    // The bucket policy admits the environment's roles only through the endpoint, from the VPC.
    bindIsolation(fn, isolationOf(c), ['vpcId', 's3EndpointId']);
  },
  iam: (fn, c) => {
    bindRegistry(fn, c.table, 'read');
    bindPermissionsBoundary(fn, c.boundaryArn, c.patterns);
    // Admins may assume every access role: its trust policy names them.
    fn.setSetting('admins', c.config.admins.join(','));
  },
  network: (fn, c) => {
    // deleteSubnets reads the environment's record first, like every step that deletes (teardown-guard.ts).
    bindRegistry(fn, c.table, 'read');
    bindNetworkBlocks(fn, c.table);
    fn.setSetting('subnetIds', c.network.subnets.map((subnet) => subnet.subnetId).join(','));
    bindIsolation(fn, isolationOf(c), ['vpcId', 'routeTableId', 'environmentSubnetRange']);
    bindEnvironmentSubnets(fn, c.network.vpc.vpcId, c.network.routeTableId, c.deployment.stackName);
  },
  batch: (fn, c) => {
    bindRegistry(fn, c.table, 'read');
    bindNetwork(fn, c.network.subnets, c.network.securityGroup, c.network.launchTemplate);
    bindIsolation(fn, isolationOf(c), ['vpcId']);
    // Checked again where capacity is bought (createComputeEnvironment).
    fn.setSetting('maxVcpusCeiling', String(c.config.maxVcpusCeiling));
    bindBatchServiceRole(fn, c.batchServiceRoleArn);
    fn.setSetting('spotAllocationStrategy', c.config.spotAllocationStrategy);
    // For records made before preflight chose the families (lambdas/steps/batch-steps.ts, instanceSelectionFor).
    fn.setSetting('gpuInstanceFamilies', c.config.gpuInstanceFamilies.join(','));
  },
  scheduling: (fn, c) => {
    // deleteScheduling and deregisterJobDefinitions read the record first, like every step that deletes.
    bindRegistry(fn, c.table, 'read');
    bindPermissionsBoundary(fn, c.boundaryArn, c.patterns, [c.patterns.sfnRole, c.patterns.eventsRole]);
  },
};

const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

export class Workflows extends Construct {
  readonly stepFunctions: Record<StepFunctionId, MfenvFunction>;
  readonly stateMachines: Record<StateMachineId, sfn.StateMachine>;

  constructor(scope: Construct, id: string, props: WorkflowsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { stackName, prefix } = props.deployment;
    // Built from the fixed name, not taken from the state machine: the state machine refers to this
    // function's ARN, so a reference back would be a dependency cycle.
    const teardownStateMachineArn = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName(stackName, 'teardown'),
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const context: BindingContext = { ...props, patterns: resourcePatterns(this, prefix, stackName), teardownStateMachineArn };

    const stepFunctions = {} as Record<StepFunctionId, MfenvFunction>;
    for (const fnId of STEP_FUNCTION_IDS) {
      const entry = STEP_FUNCTIONS[fnId];
      const fn = new MfenvFunction(this, `${capitalized(fnId)}Steps`, {
        entry: entry.entry,
        description: entry.description,
        timeout: STEP_TIMEOUT,
      });
      bindDeployment(fn, props.deployment);
      STEP_BINDINGS[fnId](fn, context);
      for (const statement of STEP_PERMISSIONS[fnId](context.patterns)) fn.addToRolePolicy(statement);
      stepFunctions[fnId] = fn;
    }
    this.stepFunctions = stepFunctions;

    const byPlaceholder = new Map(STEP_FUNCTION_IDS.map((fnId) => [STEP_FUNCTIONS[fnId].placeholder as string, stepFunctions[fnId]]));

    const stateMachines = {} as Record<StateMachineId, sfn.StateMachine>;
    for (const [machineId, machine] of Object.entries(STATE_MACHINES) as [StateMachineId, (typeof STATE_MACHINES)[StateMachineId]][]) {
      const definition = readFileSync(path.join(PROJECT_ROOT, machine.file), 'utf8');
      const invoked = [...taskFunctionPlaceholders(JSON.parse(definition))].map((placeholder) => {
        const fn = byPlaceholder.get(placeholder);
        if (!fn) throw new Error(`${machine.file} invokes \${${placeholder}}, which no entry of STEP_FUNCTIONS provides.`);
        return { placeholder, fn };
      });
      const logGroup = new logs.LogGroup(this, `${capitalized(machineId)}Logs`, { retention: LOG_RETENTION });
      const stateMachine = new sfn.StateMachine(this, capitalized(machineId), {
        stateMachineName: stateMachineName(stackName, machineId),
        comment: machine.description,
        stateMachineType: sfn.StateMachineType.STANDARD,
        definitionBody: sfn.DefinitionBody.fromString(definition),
        definitionSubstitutions: Object.fromEntries(invoked.map(({ placeholder, fn }) => [placeholder, fn.functionArn])),
        logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
        tracingEnabled: true,
      });
      // Exactly the functions this file invokes, by the unqualified ARN the Task states name (no `:*`).
      for (const { fn } of invoked) {
        stateMachine.addToRolePolicy(
          new iam.PolicyStatement({
            sid: `Invoke${fn.node.id}`,
            actions: ['lambda:InvokeFunction'],
            resources: [fn.functionArn],
          }),
        );
      }
      stateMachines[machineId] = stateMachine;
    }
    this.stateMachines = stateMachines;
  }
}
