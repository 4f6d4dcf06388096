/**
 * The bootstrap stack: deployed once by the platform owner, it holds everything the teammates' environments
 * share (network, registry, permissions boundary), the API, and the two workflows with their step Lambdas.
 * It costs nothing while idle: no NAT gateway, no Elastic IP, no database server, no provisioned capacity.
 */
import { type App, CfnOutput, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { Alarms } from './alarms';
import { Api } from './api';
import { ConfigError, CONTEXT, type MfenvConfig, readConfig } from './config';
import { API_FUNCTION } from '../lambdas/steps/catalogue';
import { bindDeployment, bindPreflight, bindRegistry, bindStateMachine, type DeploymentSettings, MfenvFunction } from './functions';
import { acknowledgeFindings } from './nag';
import { publishStatusEventsStatement } from './permissions';
import { Network } from './network';
import { createPermissionsBoundary, createRegistryTable } from './registry';
import { IdleExpiry } from './idle-expiry';
import { UninstallGuard } from './uninstall-guard';
import { Workflows, stateMachineName } from './workflows';

export interface MfenvStackProps extends StackProps {
  config: MfenvConfig;
  /** Record the reasoned cdk-nag acknowledgements (infra/nag.ts). Default true; false lets a test see every raw finding. */
  acknowledgeNagFindings?: boolean;
}

export class MfenvStack extends Stack {
  readonly network: Network;
  readonly workflows: Workflows;
  readonly api: Api;
  readonly apiFunction: MfenvFunction;
  readonly uninstallGuard: UninstallGuard;
  /** Only with mfenv:idleExpiryDays set: off, the stack has no checker and no schedule. */
  readonly idleExpiry?: IdleExpiry;

  constructor(scope: Construct, id: string, props: MfenvStackProps) {
    const { config } = props;
    super(scope, id, {
      ...props,
      stackName: config.stackName,
      description: 'mfenv bootstrap: self-service Metaflow environments (API, workflows, shared public-subnet VPC, registry).',
    });

    this.network = new Network(this, 'Network', { vpcId: config.vpcId, availabilityZones: config.availabilityZones });
    const table = createRegistryTable(this);
    const boundary = createPermissionsBoundary(this, config.prefix, this.stackName);
    const deployment: DeploymentSettings = { prefix: config.prefix, stackName: this.stackName, accountId: this.account, partition: this.partition };

    this.workflows = new Workflows(this, 'Workflows', {
      config,
      deployment,
      table,
      network: this.network,
      boundaryArn: boundary.managedPolicyArn,
      batchServiceRoleArn: config.batchServiceRoleArn,
    });
    const { provision, teardown, update } = this.workflows.stateMachines;

    this.apiFunction = new MfenvFunction(this, 'ApiHandler', {
      entry: API_FUNCTION.entry,
      description: API_FUNCTION.description,
      // API Gateway waits at most 29 seconds for an integration.
      timeout: Duration.seconds(25),
    });
    bindDeployment(this.apiFunction, deployment);
    bindRegistry(this.apiFunction, table, 'api');
    // DescribeExecution and GetExecutionHistory: a DELETE checks whether the workflow an environment waits on still runs; a GET shows which step it is in.
    bindStateMachine(this.apiFunction, 'provisionStateMachineArn', provision.stateMachineArn, {
      describeExecutionsOf: stateMachineName(this.stackName, 'provision'),
    });
    bindStateMachine(this.apiFunction, 'teardownStateMachineArn', teardown.stateMachineArn, {
      describeExecutionsOf: stateMachineName(this.stackName, 'teardown'),
    });
    // PATCH starts the update workflow; GET shows its progress, and DELETE checks whether it still runs.
    bindStateMachine(this.apiFunction, 'updateStateMachineArn', update.stateMachineArn, {
      describeExecutionsOf: stateMachineName(this.stackName, 'update'),
    });
    this.apiFunction
      .setSetting('maxVcpusCeiling', String(config.maxVcpusCeiling))
      .setSetting('maxEnvironments', String(config.maxEnvironments))
      .setSetting('maxEnvironmentsPerOwner', String(config.maxEnvironmentsPerOwner))
      .setSetting('admins', config.admins.join(','));
    // POST and DELETE write statuses (CREATING, DELETING, a CREATE_FAILED workflow that never started).
    this.apiFunction.addToRolePolicy(publishStatusEventsStatement());
    bindPreflight(this.apiFunction, {
      networkIsolation: config.networkIsolation,
      subnets: this.network.subnets,
      gpuInstanceFamilies: config.gpuInstanceFamilies,
    });

    this.api = new Api(this, 'Http', {
      handler: this.apiFunction,
      maxVcpusCeiling: config.maxVcpusCeiling,
      organizationId: config.organizationId,
      callers: { principalArnPatterns: config.callerPrincipalArns, principalTag: config.callerPrincipalTag },
    });

    // Deleting the stack deletes the guard first; it refuses while environments are live, so what tears them
    // down (API, workflows, registry, network) is still there to do it.
    this.uninstallGuard = new UninstallGuard(this, 'UninstallGuard', {
      table,
      protects: [this.network, this.workflows, this.api, this.apiFunction],
    });

    if (config.idleExpiryDays > 0) {
      this.idleExpiry = new IdleExpiry(this, 'IdleExpiry', {
        table,
        teardownStateMachineArn: teardown.stateMachineArn,
        idleDays: config.idleExpiryDays,
        graceDays: config.idleExpiryGraceDays,
      });
    }

    // Off by default: alarms bill by the month (infra/alarms.ts).
    if (config.alarms) new Alarms(this, 'Alarms', { stateMachines: this.workflows.stateMachines, api: this.api.restApi, topicArn: config.alarmTopicArn });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Base URL of the mfenv API (sign requests with SigV4, service execute-api).' });
    new CfnOutput(this, 'Region', { value: this.region, description: 'Region of the API and of every environment.' });
    new CfnOutput(this, 'RegistryTableName', { value: table.tableName, description: 'DynamoDB table of environment records.' });
    new CfnOutput(this, 'PermissionsBoundaryArn', {
      value: boundary.managedPolicyArn,
      description: 'Permissions boundary every environment role carries.',
    });

    if (props.acknowledgeNagFindings ?? true) acknowledgeFindings(this, config.prefix);
  }
}

/**
 * Builds the mfenv app from its context: the stack, checked by cdk-nag's AwsSolutions pack. Used by
 * infra/app.ts (`cdk synth`) and by the infra tests, so both check the same thing.
 */
export function buildMfenvApp(app: App): MfenvStack {
  const config = readConfig(app.node);
  let env: StackProps['env'];
  if (config.vpcId) {
    // Looking up an existing VPC needs to know where to look.
    const account = process.env.CDK_DEFAULT_ACCOUNT;
    const region = process.env.CDK_DEFAULT_REGION;
    if (!account || !region) {
      throw new ConfigError(
        `Context ${CONTEXT.vpcId} needs the target account and region: run cdk with credentials and a region (AWS_PROFILE / AWS_REGION), or leave ${CONTEXT.vpcId} empty to create a VPC.`,
      );
    }
    env = { account, region };
  }
  const stack = new MfenvStack(app, 'Mfenv', { config, env });
  // Policy validation at synth: an unacknowledged finding fails `cdk synth` (report: policy-validation-report.json).
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stack;
}
