/**
 * The shared network: a public subnet per zone behind an internet gateway, nothing billed by the hour,
 * and a security group that admits nothing.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { CONTEXT, ConfigError } from '../../infra/config';
import { type Synthesized, logicalIdOf, resourcesOfType, synthesize } from './synth';

describe('the shared VPC (default: the stack zones)', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize();
  });

  it('has one public subnet in each of the stack zones, with public addresses for Batch instances', () => {
    // prepare
    const { json } = synthesized;

    // act
    const subnets = resourcesOfType(json, 'AWS::EC2::Subnet').map(([, subnet]) => subnet.Properties!);

    // assess: environment-agnostic, so CloudFormation picks the region's first two zones.
    expect(subnets).toHaveLength(2);
    expect(subnets.map((subnet) => subnet.AvailabilityZone)).toEqual([
      { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] },
      { 'Fn::Select': [1, { 'Fn::GetAZs': '' }] },
    ]);
    for (const subnet of subnets) {
      expect(subnet.MapPublicIpOnLaunch).toBe(true);
      expect(subnet.Tags).toEqual(expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Public' }]));
    }
  });

  it('routes every subnet to the internet gateway, and has no NAT gateway nor Elastic IP', () => {
    // prepare
    const { template, json } = synthesized;

    // act
    const routes = resourcesOfType(json, 'AWS::EC2::Route').map(([, route]) => route.Properties!);
    const gatewayId = resourcesOfType(json, 'AWS::EC2::InternetGateway')[0]?.[0];

    // assess
    template.resourceCountIs('AWS::EC2::InternetGateway', 1);
    expect(routes).toHaveLength(2);
    for (const route of routes) {
      expect(route).toMatchObject({ DestinationCidrBlock: '0.0.0.0/0', GatewayId: { Ref: gatewayId } });
    }
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::EIP', 0);
    expect(resourcesOfType(json, 'AWS::EC2::Subnet').some(([id]) => /private|isolated/i.test(id))).toBe(false);
  });

  it('gives the Batch instances a security group with no ingress and open egress', () => {
    // prepare
    const { template, stack } = synthesized;

    // act
    const groups = template.findResources('AWS::EC2::SecurityGroup');

    // assess
    expect(Object.keys(groups)).toEqual([logicalIdOf(stack.network.securityGroup)]);
    const group = Object.values(groups)[0]!.Properties;
    expect(group.SecurityGroupIngress).toBeUndefined();
    expect(group.SecurityGroupEgress).toEqual([{ CidrIp: '0.0.0.0/0', Description: expect.any(String), IpProtocol: '-1' }]);
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  it('logs rejected flows to a log group with retention', () => {
    // prepare
    const { template } = synthesized;

    // act
    const flowLogs = template.findResources('AWS::EC2::FlowLog');

    // assess
    expect(Object.values(flowLogs)).toHaveLength(1);
    expect(Object.values(flowLogs)[0]!.Properties).toMatchObject({ TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
  });

  it('gives the Batch instances a launch template that requires IMDSv2 with one hop, named by the compute-environment step', () => {
    // prepare
    const { json, stack } = synthesized;

    // act
    const templates = resourcesOfType(json, 'AWS::EC2::LaunchTemplate');
    const batchFunction = json.Resources[logicalIdOf(stack.workflows.stepFunctions.batch)]!;

    // assess
    expect(templates).toHaveLength(1);
    const [templateId, launchTemplate] = templates[0]!;
    expect(launchTemplate.Properties!.LaunchTemplateData.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
    expect(batchFunction.Properties!.Environment.Variables.MFENV_LAUNCH_TEMPLATE_ID).toEqual({ Ref: templateId });
  });

  it('gives the shared subnets a free S3 gateway endpoint', () => {
    // prepare
    const { json } = synthesized;

    // act
    const endpoints = resourcesOfType(json, 'AWS::EC2::VPCEndpoint');

    // assess
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]![1].Properties).toMatchObject({ VpcEndpointType: 'Gateway' });
    expect(JSON.stringify(endpoints[0]![1].Properties!.ServiceName)).toContain('.s3');
    expect(endpoints[0]![1].Properties!.RouteTableIds).toHaveLength(resourcesOfType(json, 'AWS::EC2::Subnet').length);
  });
});

describe('the shared VPC with explicit zones', () => {
  it('creates one public subnet in each zone listed in mfenv:availabilityZones', () => {
    // prepare
    const zones = ['us-east-1a', 'us-east-1b', 'us-east-1d'];

    // act
    const { json } = synthesize({ [CONTEXT.availabilityZones]: zones });

    // assess
    const subnets = resourcesOfType(json, 'AWS::EC2::Subnet').map(([, subnet]) => subnet.Properties!);
    expect(subnets.map((subnet) => subnet.AvailabilityZone)).toEqual(zones);
    expect(subnets.every((subnet) => subnet.MapPublicIpOnLaunch === true)).toBe(true);
    expect(resourcesOfType(json, 'AWS::EC2::NatGateway')).toHaveLength(0);
  });
});

describe('an existing VPC (mfenv:vpcId)', () => {
  const saved = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
  afterEach(() => {
    for (const [key, value] of [['CDK_DEFAULT_ACCOUNT', saved.account], ['CDK_DEFAULT_REGION', saved.region]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('uses its public subnets and creates no network of its own', () => {
    // prepare: the lookup answers from context, as `cdk` caches it in cdk.context.json after the first synth.
    process.env.CDK_DEFAULT_ACCOUNT = '123456789012';
    process.env.CDK_DEFAULT_REGION = 'eu-west-1';
    const lookupKey =
      'vpc-provider:account=123456789012:filter.vpc-id=vpc-0123456789abcdef0:region=eu-west-1:returnAsymmetricSubnets=true';
    const cached = {
      vpcId: 'vpc-0123456789abcdef0',
      vpcCidrBlock: '10.0.0.0/16',
      ownerAccountId: '123456789012',
      availabilityZones: [],
      subnetGroups: [
        {
          name: 'Public',
          type: 'Public',
          subnets: [
            { subnetId: 'subnet-0aaa', cidr: '10.0.0.0/24', availabilityZone: 'eu-west-1a', routeTableId: 'rtb-0aaa' },
            { subnetId: 'subnet-0bbb', cidr: '10.0.1.0/24', availabilityZone: 'eu-west-1b', routeTableId: 'rtb-0bbb' },
          ],
        },
      ],
    };

    // act
    const { template, json, stack } = synthesize({ [CONTEXT.vpcId]: 'vpc-0123456789abcdef0', [CONTEXT.environmentSubnetRange]: '10.0.128.0/17', [lookupKey]: cached });

    // assess
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0123456789abcdef0', SecurityGroupIngress: Match.absent() });
    const batchSteps = json.Resources[logicalIdOf(stack.workflows.stepFunctions.batch)]!;
    expect(batchSteps.Properties!.Environment.Variables.MFENV_SUBNET_IDS).toBe('subnet-0aaa,subnet-0bbb');
  });

  it('refuses to look a VPC up without an account and region to look in', () => {
    // prepare
    delete process.env.CDK_DEFAULT_ACCOUNT;
    delete process.env.CDK_DEFAULT_REGION;

    // act
    const build = () => synthesize({ [CONTEXT.vpcId]: 'vpc-0123456789abcdef0', [CONTEXT.environmentSubnetRange]: '10.0.128.0/17' });

    // assess
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/needs the target account and region/);
  });
});
