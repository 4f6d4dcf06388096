/**
 * Every Lambda of the stack is an MfenvFunction: the runtime, architecture, bundling, tracing, logging and
 * role defaults are fixed here once. The `bind*` helpers set a setting (the environment variable named in
 * lambdas/core/settings.ts) together with the grant that makes it usable, so a function can never be told
 * about a resource it may not touch, nor be allowed to touch one it was not told about.
 */
import * as path from 'node:path';
import { ArnFormat, AssetHashType, Duration, type ILocalBundling, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { TAG } from '../lambdas/core/naming';
import { REGISTRY_TABLE } from '../lambdas/core/registry';
import { SETTING, type SettingName } from '../lambdas/core/settings';
import { BUNDLE_FILE, PROJECT_ROOT, bundleLambdaSync, treeShakenSections } from './lambda-bundle';
import { type ResourcePatterns, preflightPermissions } from './permissions';

/** The newest Node.js runtime aws-cdk-lib offers (infra/lambda-bundle.ts builds for it). */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** How long function logs are kept. Long enough to investigate a failed provisioning, short enough to cost nothing. */
export const LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/**
 * The settings the code of `entry` reads: `settings.<name>()` calls, and `currentDeployment()` (the naming
 * settings), in the project files of its tree-shaken bundle, so only what the function can actually run counts.
 */
export function settingsReadByEntry(entry: string): SettingName[] {
  const read = new Set<SettingName>();
  for (const { file, code } of treeShakenSections(entry)) {
    if (file === 'lambdas/core/settings.ts') continue; // defines them all
    for (const [, name] of code.matchAll(/\bsettings\d*\.(\w+)\(/g)) if (name! in SETTING) read.add(name as SettingName);
    if (/\bcurrentDeployment\d*\(/.test(code)) for (const name of ['prefix', 'accountId', 'region', 'stackName', 'partition'] as const) read.add(name);
  }
  return [...read].sort();
}

export interface MfenvFunctionProps {
  /** Source file, relative to the repository root; it exports `handler`. */
  entry: string;
  description: string;
  /** Defaults to 30 seconds. */
  timeout?: Duration;
}

/**
 * CDK's local bundling of one function. Its fields are data, not only a method: CDK reuses a staged asset
 * whose bundling options serialize alike, so the entry and settings must be part of them.
 */
class LocalLambdaBundling implements ILocalBundling {
  constructor(
    readonly entry: string,
    readonly requiredSettings: readonly string[],
  ) {}

  tryBundle(outdir: string): boolean {
    bundleLambdaSync({ entry: this.entry, outdir, requiredSettings: this.requiredSettings });
    return true;
  }
}

export class MfenvFunction extends lambda.Function {
  /** The function's own role: no managed policy, only what the bind helpers and callers grant. */
  override readonly role: iam.Role;
  /** Its own log group, with retention (the function's logGroup accessor only offers an ILogGroup). */
  readonly functionLogs: logs.LogGroup;
  /** Its source file, relative to the project root. */
  readonly entry: string;

  constructor(scope: Construct, id: string, props: MfenvFunctionProps) {
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${id} function: ${props.description}`.slice(0, 1000),
    });
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: LOG_RETENTION });
    // Read from the code only when the stack's bundles are built (a synth that skips bundling needs no list).
    const requiredSettings = Stack.of(scope).bundlingRequired ? settingsReadByEntry(props.entry) : [];
    super(scope, id, {
      // Built on this machine by infra/lambda-bundle.ts (esbuild with a plugin, which NodejsFunction's
      // command-line esbuild cannot take); the asset's hash is the bundle's, so an unchanged bundle is not
      // uploaded again. Local bundling always succeeds or throws: the image is never pulled.
      code: lambda.Code.fromAsset(PROJECT_ROOT, {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          image: FUNCTION_RUNTIME.bundlingImage,
          local: new LocalLambdaBundling(props.entry, requiredSettings),
        },
      }),
      handler: `${path.parse(BUNDLE_FILE).name}.handler`,
      description: props.description,
      runtime: FUNCTION_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: props.timeout ?? Duration.seconds(30),
      tracing: lambda.Tracing.ACTIVE,
      role,
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'mfenv',
      },
    });
    this.role = role;
    this.functionLogs = logGroup;
    this.entry = props.entry;
    // Write access to its own log group only (instead of AWSLambdaBasicExecutionRole, which allows every group).
    logGroup.grantWrite(role);
  }

  /** Sets one setting (lambdas/core/settings.ts) on this function. */
  setSetting(name: SettingName, value: string): this {
    this.addEnvironment(SETTING[name], value);
    return this;
  }
}

/** What names derive from: the same settings every function needs (lambdas/core/naming.ts); the region is the runtime's. */
export interface DeploymentSettings {
  prefix: string;
  stackName: string;
  accountId: string;
  /** The stack's partition (`Stack.partition`, a token resolved at deploy time), for every ARN the functions build. */
  partition: string;
}

export function bindDeployment(fn: MfenvFunction, deployment: DeploymentSettings): void {
  fn.setSetting('prefix', deployment.prefix)
    .setSetting('stackName', deployment.stackName)
    .setSetting('accountId', deployment.accountId)
    .setSetting('partition', deployment.partition);
}

/**
 * The registry table. The registry steps read and write single records, the other steps only read them; the API also lists (index query, and
 * a scan for admins) and creates idempotency records. No delete: records expire through TTL. Both also
 * write a record with its quota counters in one TransactWriteItems, which IAM authorizes as the PutItem and
 * UpdateItem it holds (there is no TransactWriteItems action).
 */
export function bindRegistry(fn: MfenvFunction, table: dynamodb.ITable, access: 'read' | 'workflow' | 'api'): void {
  fn.setSetting('tableName', table.tableName);
  if (access === 'read') {
    // Destructive steps read an environment's record before acting (lambdas/steps/teardown-guard.ts).
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadRegistryRecords', actions: ['dynamodb:GetItem'], resources: [table.tableArn] }));
    return;
  }
  const itemActions = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'];
  if (access === 'workflow') {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'RegistryRecords', actions: itemActions, resources: [table.tableArn] }));
    return;
  }
  fn.addToRolePolicy(
    new iam.PolicyStatement({ sid: 'RegistryRecords', actions: [...itemActions, 'dynamodb:Scan'], resources: [table.tableArn] }),
  );
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      // A refused request releases the Idempotency-Key it claimed (lambdas/core/idempotency-records.ts): those
      // records only, never an environment's.
      sid: 'ReleaseIdempotencyKeys',
      actions: ['dynamodb:DeleteItem'],
      resources: [table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['IDEMPOTENCY#*'] } },
    }),
  );
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'RegistryByOwner',
      actions: ['dynamodb:Query'],
      resources: [`${table.tableArn}/index/${REGISTRY_TABLE.ownerIndex.name}`],
    }),
  );
}

/**
 * A state machine the function starts: its ARN setting and states:StartExecution on exactly that ARN.
 * With `describeExecutionsOf` (the state machine's name), also states:DescribeExecution and
 * states:GetExecutionHistory on its executions: the API looks up whether the workflow driving an environment
 * still runs, and which step it is in (an environment's `progress`). An execution's ARN names the state
 * machine by name (`execution:<name>:<execution>`), so the grant cannot be derived from the ARN.
 */
export function bindStateMachine(
  fn: MfenvFunction,
  setting: Extract<SettingName, 'provisionStateMachineArn' | 'teardownStateMachineArn' | 'updateStateMachineArn'>,
  stateMachineArn: string,
  options: { describeExecutionsOf?: string } = {},
): void {
  const workflow = setting.replace('StateMachineArn', '').replace(/^./, (c) => c.toUpperCase());
  fn.setSetting(setting, stateMachineArn);
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: `Start${workflow}Workflow`,
      actions: ['states:StartExecution'],
      resources: [stateMachineArn],
    }),
  );
  if (options.describeExecutionsOf === undefined) return;
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: `Read${workflow}Executions`,
      actions: ['states:DescribeExecution', 'states:GetExecutionHistory'],
      resources: [
        Stack.of(fn).formatArn({
          service: 'states',
          resource: 'execution',
          resourceName: `${options.describeExecutionsOf}:*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    }),
  );
}

/**
 * The shared network the compute environments launch into. Batch validates the subnets and security group
 * with the caller's permissions; EC2 Describe calls support no resource-level permissions.
 */
export function bindNetwork(
  fn: MfenvFunction,
  subnets: ec2.ISubnet[],
  securityGroup: ec2.ISecurityGroup,
  launchTemplate: ec2.ILaunchTemplate,
): void {
  fn.setSetting('subnetIds', subnets.map((subnet) => subnet.subnetId).join(','));
  fn.setSetting('securityGroupId', securityGroup.securityGroupId);
  fn.setSetting('launchTemplateId', launchTemplate.launchTemplateId!);
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'DescribeNetworkForBatch',
      actions: ['ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups', 'ec2:DescribeVpcs', 'ec2:DescribeLaunchTemplateVersions'],
      resources: ['*'],
    }),
  );
}

/** What network isolation needs to know: whether it is on, and the shared VPC, route table and S3 endpoint. */
export interface IsolationSettings {
  enabled: boolean;
  vpcId: string;
  routeTableId: string;
  s3EndpointId: string;
  environmentSubnetRange: string;
}

/** The isolation settings a function reads (which of them: `keys`). */
export function bindIsolation(fn: MfenvFunction, isolation: IsolationSettings, keys: readonly (keyof Omit<IsolationSettings, 'enabled'>)[]): void {
  fn.setSetting('networkIsolation', String(isolation.enabled));
  for (const key of keys) fn.setSetting(key, isolation[key]);
}

/**
 * The registry items that record which environment holds which address block (`NETWORK#<n>`, see
 * lambdas/core/network.ts): claimed and released with conditional writes, and nothing else of the table.
 */
export function bindNetworkBlocks(fn: MfenvFunction, table: dynamodb.ITable): void {
  fn.setSetting('tableName', table.tableName);
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'ClaimNetworkBlocks',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
      resources: [table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['NETWORK#*'] } },
    }),
  );
}

/**
 * Environment subnets in the shared VPC: created only tagged as this deployment's, changed and deleted only
 * when so tagged, joined only to the shared route table.
 */
export function bindEnvironmentSubnets(fn: MfenvFunction, vpcId: string, routeTableId: string, stackName: string): void {
  const stack = Stack.of(fn);
  const vpcArn = stack.formatArn({ service: 'ec2', resource: 'vpc', resourceName: vpcId });
  const routeTableArn = stack.formatArn({ service: 'ec2', resource: 'route-table', resourceName: routeTableId });
  const subnets = stack.formatArn({ service: 'ec2', resource: 'subnet', resourceName: '*' });
  const ours = { StringEquals: { [`aws:ResourceTag/${TAG.managedBy}`]: stackName } };
  const statements: iam.PolicyStatementProps[] = [
    // EC2 Describe calls support no resource-level permissions.
    { sid: 'DescribeNetwork', actions: ['ec2:DescribeSubnets', 'ec2:DescribeRouteTables'], resources: ['*'] },
    { sid: 'CreateSubnetsInTheSharedVpc', actions: ['ec2:CreateSubnet'], resources: [vpcArn] },
    {
      sid: 'CreateSubnetsTaggedAsOurs',
      actions: ['ec2:CreateSubnet'],
      resources: [subnets],
      conditions: { StringEquals: { [`aws:RequestTag/${TAG.managedBy}`]: stackName } },
    },
    { sid: 'TagSubnetsAtCreation', actions: ['ec2:CreateTags'], resources: [subnets], conditions: { StringEquals: { 'ec2:CreateAction': 'CreateSubnet' } } },
    { sid: 'ChangeOurSubnets', actions: ['ec2:ModifySubnetAttribute', 'ec2:DeleteSubnet', 'ec2:AssociateRouteTable'], resources: [subnets], conditions: ours },
    { sid: 'JoinTheSharedRouteTable', actions: ['ec2:AssociateRouteTable', 'ec2:DisassociateRouteTable'], resources: [routeTableArn] },
  ];
  for (const statement of statements) fn.addToRolePolicy(new iam.PolicyStatement(statement));
}

/**
 * The service role of the compute environments. Unset (the default), the function learns none and names
 * none: Batch then uses its service-linked role, and creates it in an account that has none yet, which
 * needs the caller to be allowed to create it (Batch's role only). Naming the service-linked role instead
 * would fail in such an account. Set (context mfenv:batchServiceRoleArn), the function learns the role and
 * may pass it to Batch only.
 */
export function bindBatchServiceRole(fn: MfenvFunction, serviceRoleArn: string | undefined): void {
  if (serviceRoleArn === undefined) {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'CreateBatchServiceLinkedRole',
        actions: ['iam:CreateServiceLinkedRole'],
        resources: [
          Stack.of(fn).formatArn({ service: 'iam', region: '', resource: 'role', resourceName: 'aws-service-role/batch.amazonaws.com/*' }),
        ],
        conditions: { StringEquals: { 'iam:AWSServiceName': 'batch.amazonaws.com' } },
      }),
    );
    return;
  }
  fn.setSetting('batchServiceRoleArn', serviceRoleArn);
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'PassBatchServiceRoleToBatch',
      actions: ['iam:PassRole'],
      resources: [serviceRoleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'batch.amazonaws.com' } },
    }),
  );
}

/**
 * The permissions boundary every environment role must carry. The function learns its ARN and may create
 * roles and change their inline policies and trust only when the role carries exactly this boundary
 * (iam:PermissionsBoundary); it may attach no managed policy at all. It may never remove a boundary nor set another one, and
 * never change the boundary policy itself: a bug in a step cannot mint a role stronger than the boundary.
 */
export function bindPermissionsBoundary(
  fn: MfenvFunction,
  boundaryArn: string,
  patterns: ResourcePatterns,
  // The roles this function creates: the IAM step's three by default, the scheduling step's two.
  environmentRoles: string[] = [patterns.jobRole, patterns.instanceRole, patterns.accessRole],
): void {
  fn.setSetting('permissionsBoundaryArn', boundaryArn);
  const withBoundary = { StringEquals: { 'iam:PermissionsBoundary': boundaryArn } };
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'CreateEnvironmentRolesWithBoundary',
      actions: ['iam:CreateRole', 'iam:PutRolePermissionsBoundary', 'iam:PutRolePolicy', 'iam:UpdateAssumeRolePolicy'],
      resources: environmentRoles,
      conditions: withBoundary,
    }),
  );
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      // The boundary scopes a role by its tags: once a role carries them (at CreateRole) they never change,
      // so a step can never move a role to another environment's resources.
      sid: 'NeverRetagAnEnvironmentRole',
      effect: iam.Effect.DENY,
      actions: ['iam:TagRole', 'iam:UntagRole'],
      resources: ['*'],
      conditions: { Null: { [`aws:ResourceTag/${TAG.environment}`]: 'false' } },
    }),
  );
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'NeverRemoveABoundary',
      effect: iam.Effect.DENY,
      actions: ['iam:DeleteRolePermissionsBoundary'],
      resources: ['*'],
    }),
  );
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'NeverCreateOrReboundWithoutTheBoundary',
      effect: iam.Effect.DENY,
      actions: ['iam:CreateRole', 'iam:PutRolePermissionsBoundary'],
      resources: ['*'],
      conditions: { StringNotEquals: { 'iam:PermissionsBoundary': boundaryArn } },
    }),
  );
  fn.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'NeverChangeTheBoundaryPolicy',
      effect: iam.Effect.DENY,
      actions: [
        'iam:CreatePolicyVersion',
        'iam:DeletePolicy',
        'iam:DeletePolicyVersion',
        'iam:SetDefaultPolicyVersion',
        'iam:TagPolicy',
        'iam:UntagPolicy',
      ],
      resources: [boundaryArn],
    }),
  );
}

/** What the API's preflight of a create reads (lambdas/core/preflight.ts). */
export interface PreflightSettings {
  networkIsolation: boolean;
  /** The shared subnets: checked for public addresses when network isolation is off. */
  subnets: ec2.ISubnet[];
  gpuInstanceFamilies: string[];
}

/** The settings preflight reads, with its read-only grants (Spot quotas, region offerings, subnets, Batch counts). */
export function bindPreflight(fn: MfenvFunction, preflight: PreflightSettings): void {
  fn.setSetting('networkIsolation', String(preflight.networkIsolation))
    .setSetting('subnetIds', preflight.subnets.map((subnet) => subnet.subnetId).join(','))
    .setSetting('gpuInstanceFamilies', preflight.gpuInstanceFamilies.join(','));
  for (const statement of preflightPermissions()) fn.addToRolePolicy(statement);
}
