/**
 * Local bootstrap: creates in the emulator what the CDK bootstrap stack creates on AWS (the shared VPC with
 * a public subnet per AZ and no NAT, the security group without ingress, the registry table, the Batch
 * service role, the permissions boundary) and returns the settings every function reads (lambdas/core/settings.ts).
 */
import {
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSecurityGroupCommand,
  CreateLaunchTemplateCommand,
  CreateVpcEndpointCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  AssociateRouteTableCommand,
  EC2Client,
  ModifySubnetAttributeCommand,
} from '@aws-sdk/client-ec2';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { CreatePolicyCommand, CreateRoleCommand, CreateServiceLinkedRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { permissionsBoundaryName, permissionsBoundaryPolicy } from '../../lambdas/core/policies';
import { REGISTRY_TABLE } from '../../lambdas/core/registry';
import { SETTING, SETTING_DEFAULTS, type SpotAllocationStrategy } from '../../lambdas/core/settings';
import { DEFAULT_ENVIRONMENT_SUBNET_RANGE, VPC_CIDR } from '../config';
import { EMULATOR_ACCOUNT_ID, EMULATOR_ADMIN_CREDENTIALS, EMULATOR_REGION } from './emulator';

export interface LocalBootstrapOptions {
  prefix?: string;
  stackName?: string;
  /** Comma-separated admin principal ARNs. */
  admins?: string;
  maxVcpusCeiling?: number;
  maxEnvironments?: number;
  maxEnvironmentsPerOwner?: number;
  spotAllocationStrategy?: SpotAllocationStrategy;
  /** Each environment in subnets of its own (default: on, as the stack). */
  networkIsolation?: boolean;
  deletedRecordRetentionDays?: number;
  /**
   * The Batch service role compute environments name: Batch's service-linked role (default), or "own", an
   * ordinary role as a deployment names with mfenv:batchServiceRoleArn, with which AWS changes no instance
   * types in place (a resize then re-creates the compute environment).
   */
  batchServiceRole?: 'service-linked' | 'own';
}

export interface LocalBootstrap {
  vpcId: string;
  subnetIds: string[];
  securityGroupId: string;
  tableName: string;
  /** Environment variables: the settings of every function, plus the SDK's endpoint and credentials. */
  env: Record<string, string>;
}

/** SDK client options for talking to the emulator as its root. */
export function emulatorClientConfig(endpoint: string) {
  return { endpoint, region: EMULATOR_REGION, credentials: EMULATOR_ADMIN_CREDENTIALS };
}

/** The public subnet of the zone at `index`: a /20 of VPC_CIDR each, as the CDK stack lays them out. */
function subnetCidr(index: number): string {
  const [first, second] = VPC_CIDR.split('.');
  return `${first}.${second}.${index * 16}.0/20`;
}

export async function bootstrapEmulator(endpoint: string, options: LocalBootstrapOptions = {}): Promise<LocalBootstrap> {
  const prefix = options.prefix ?? SETTING_DEFAULTS.prefix;
  const stackName = options.stackName ?? 'mfenv-local';
  // The emulator knows the commercial partition only.
  const partition = SETTING_DEFAULTS.partition;
  const config = emulatorClientConfig(endpoint);
  const ec2 = new EC2Client(config);
  const dynamo = new DynamoDBClient(config);
  const iam = new IAMClient(config);

  // Network: one public subnet per availability zone, an internet gateway, no NAT gateway.
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: VPC_CIDR }))).Vpc!.VpcId!;
  const igwId = (await ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!.InternetGatewayId!;
  await ec2.send(new AttachInternetGatewayCommand({ VpcId: vpcId, InternetGatewayId: igwId }));
  const routeTableId = (await ec2.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!.RouteTableId!;
  await ec2.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igwId }));
  const subnetIds: string[] = [];
  for (const [index, zone] of ['a', 'b'].entries()) {
    const subnetId = (
      await ec2.send(
        new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: subnetCidr(index), AvailabilityZone: `${EMULATOR_REGION}${zone}` }),
      )
    ).Subnet!.SubnetId!;
    await ec2.send(new ModifySubnetAttributeCommand({ SubnetId: subnetId, MapPublicIpOnLaunch: { Value: true } }));
    await ec2.send(new AssociateRouteTableCommand({ SubnetId: subnetId, RouteTableId: routeTableId }));
    subnetIds.push(subnetId);
  }
  // The S3 gateway endpoint on the shared route table, which environment subnets join (network isolation).
  const s3EndpointId = (
    await ec2.send(
      new CreateVpcEndpointCommand({
        VpcId: vpcId,
        VpcEndpointType: 'Gateway',
        ServiceName: `com.amazonaws.${EMULATOR_REGION}.s3`,
        RouteTableIds: [routeTableId],
      }),
    )
  ).VpcEndpoint!.VpcEndpointId!;
  // The launch template of the Batch instances, as the stack makes it: instance metadata through IMDSv2 only.
  const launchTemplateId = (
    await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: `${stackName}-batch-instances`,
        LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' } },
      }),
    )
  ).LaunchTemplate!.LaunchTemplateId!;
  // A new security group has no ingress rule and allows all egress: exactly what Batch instances need.
  const securityGroupId = (
    await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: `${prefix}-batch`,
        Description: 'mfenv Batch instances: no ingress, all egress',
        VpcId: vpcId,
      }),
    )
  ).GroupId!;

  // Registry table, laid out as in the CDK stack.
  const tableName = `${stackName}-environments`;
  await dynamo.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: REGISTRY_TABLE.partitionKey, AttributeType: 'S' },
        { AttributeName: REGISTRY_TABLE.ownerIndex.partitionKey, AttributeType: 'S' },
        { AttributeName: REGISTRY_TABLE.ownerIndex.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: REGISTRY_TABLE.partitionKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: REGISTRY_TABLE.ownerIndex.name,
          KeySchema: [
            { AttributeName: REGISTRY_TABLE.ownerIndex.partitionKey, KeyType: 'HASH' },
            { AttributeName: REGISTRY_TABLE.ownerIndex.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  await dynamo.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: REGISTRY_TABLE.ttlAttribute, Enabled: true },
    }),
  );

  // The Batch service-linked role, named in the settings: the emulator, unlike AWS, requires a compute
  // environment to name a service role. Then the permissions boundary of every environment role.
  const serviceLinkedRoleArn = (await iam.send(new CreateServiceLinkedRoleCommand({ AWSServiceName: 'batch.amazonaws.com' }))).Role!.Arn!;
  const serviceRoleArn =
    options.batchServiceRole === 'own'
      ? (
          await iam.send(
            new CreateRoleCommand({
              RoleName: `${stackName}-batch-service`,
              AssumeRolePolicyDocument: JSON.stringify({
                Version: '2012-10-17',
                Statement: [{ Effect: 'Allow', Principal: { Service: 'batch.amazonaws.com' }, Action: 'sts:AssumeRole' }],
              }),
            }),
          )
        ).Role!.Arn!
      : serviceLinkedRoleArn;
  const boundaryArn = (
    await iam.send(
      new CreatePolicyCommand({
        PolicyName: permissionsBoundaryName(stackName),
        Path: `/${prefix}/`,
        PolicyDocument: JSON.stringify(permissionsBoundaryPolicy(prefix, partition, { accountId: EMULATOR_ACCOUNT_ID, region: EMULATOR_REGION })),
      }),
    )
  ).Policy!.Arn!;

  const env: Record<string, string> = {
    AWS_REGION: EMULATOR_REGION,
    AWS_DEFAULT_REGION: EMULATOR_REGION,
    AWS_ACCESS_KEY_ID: EMULATOR_ADMIN_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: EMULATOR_ADMIN_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL: endpoint,
    [SETTING.tableName]: tableName,
    [SETTING.prefix]: prefix,
    [SETTING.stackName]: stackName,
    [SETTING.partition]: partition,
    [SETTING.accountId]: EMULATOR_ACCOUNT_ID,
    [SETTING.subnetIds]: subnetIds.join(','),
    [SETTING.securityGroupId]: securityGroupId,
    [SETTING.vpcId]: vpcId,
    [SETTING.launchTemplateId]: launchTemplateId,
    [SETTING.routeTableId]: routeTableId,
    [SETTING.s3EndpointId]: s3EndpointId,
    [SETTING.environmentSubnetRange]: DEFAULT_ENVIRONMENT_SUBNET_RANGE,
    [SETTING.networkIsolation]: String(options.networkIsolation ?? SETTING_DEFAULTS.networkIsolation === 'true'),
    [SETTING.batchServiceRoleArn]: serviceRoleArn,
    [SETTING.permissionsBoundaryArn]: boundaryArn,
    [SETTING.spotAllocationStrategy]: options.spotAllocationStrategy ?? SETTING_DEFAULTS.spotAllocationStrategy,
    // The emulator offers g4dn, g5 and g6 in its region, as AWS does in us-east-1 (preflight checks).
    [SETTING.gpuInstanceFamilies]: SETTING_DEFAULTS.gpuInstanceFamilies,
    [SETTING.maxVcpusCeiling]: String(options.maxVcpusCeiling ?? SETTING_DEFAULTS.maxVcpusCeiling),
    [SETTING.maxEnvironments]: String(options.maxEnvironments ?? SETTING_DEFAULTS.maxEnvironments),
    [SETTING.maxEnvironmentsPerOwner]: String(options.maxEnvironmentsPerOwner ?? SETTING_DEFAULTS.maxEnvironmentsPerOwner),
    [SETTING.admins]: options.admins ?? SETTING_DEFAULTS.admins,
    [SETTING.deletedRecordRetentionDays]: String(options.deletedRecordRetentionDays ?? SETTING_DEFAULTS.deletedRecordRetentionDays),
    // The emulator cannot evaluate aws:SecureTransport: the TLS-only bucket statement is left out here.
    [SETTING.bucketTlsOnly]: 'false',
    [SETTING.metaflowS3EndpointUrl]: endpoint,
    [SETTING.s3ForcePathStyle]: 'true',
  };
  ec2.destroy();
  dynamo.destroy();
  iam.destroy();
  return { vpcId, subnetIds, securityGroupId, tableName, env };
}
