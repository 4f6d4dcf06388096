/**
 * The shared network every compute environment launches into: a public subnet per availability zone, an
 * internet gateway, and nothing that bills by the hour (no NAT gateway, no Elastic IP, no private subnet).
 * Batch instances get public addresses to reach ECS, ECR and S3; their security group admits no inbound
 * traffic at all, so nothing on the internet can open a connection to them.
 *
 * Availability zones: with context mfenv:availabilityZones the VPC gets one public subnet in each zone
 * listed. Without it the stack stays environment-agnostic and uses the stack's zones, which CloudFormation
 * resolves at deploy time to the region's first two (Fn::GetAZs). Spot capacity is found more easily in
 * more zones: list three or more when the region has them. With context mfenv:vpcId an existing VPC is used
 * instead (its public subnets), which needs an account and region to look it up.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ConfigError, CONTEXT, VPC_CIDR } from './config';
import { LOG_RETENTION } from './functions';

export interface NetworkProps {
  /** Use this existing VPC instead of creating one. */
  vpcId?: string;
  /** Zones of the new VPC; empty means the stack's zones. */
  availabilityZones: string[];
}

export class Network extends Construct {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.ISubnet[];
  readonly securityGroup: ec2.SecurityGroup;
  /**
   * The S3 gateway endpoint (free): S3 traffic of the Batch instances stays in the VPC, and bucket policies
   * can require it (aws:SourceVpce) together with the instances' addresses (aws:VpcSourceIp).
   */
  readonly s3Endpoint: ec2.GatewayVpcEndpoint;
  /** The route table environment subnets join: the shared public subnets' (internet gateway + S3 endpoint). */
  readonly routeTableId: string;
  /**
   * The launch template every compute environment names: instance metadata only through IMDSv2 (session
   * tokens, which a request forged through a proxy or an SSRF cannot carry), one hop, so containers on a
   * bridge network cannot reach it. Batch runs single-node jobs in host network mode, where job code can still
   * read the instance role's credentials: that role is scoped to its own environment's ECS cluster for that.
   */
  readonly launchTemplate: ec2.LaunchTemplate;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.vpc = props.vpcId ? ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: props.vpcId }) : this.createVpc(props.availabilityZones);
    this.subnets = this.vpc.publicSubnets;
    if (this.subnets.length === 0) {
      throw new ConfigError(
        `The VPC ${props.vpcId} (context ${CONTEXT.vpcId}) has no public subnets; Batch instances need subnets routed to an internet gateway.`,
      );
    }
    this.s3Endpoint = this.vpc.addGatewayEndpoint('S3', {
      service: ec2.GatewayVpcEndpointAwsService.S3,
      subnets: [{ subnets: this.subnets }],
    });
    this.routeTableId = this.subnets[0]!.routeTable.routeTableId;
    this.launchTemplate = new ec2.LaunchTemplate(this, 'BatchInstanceTemplate', {
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      httpEndpoint: true,
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'BatchInstances', {
      vpc: this.vpc,
      description: 'mfenv Batch instances: no inbound traffic, outbound to ECS, ECR, S3 and package mirrors',
      allowAllOutbound: true,
    });
  }

  private createVpc(availabilityZones: string[]): ec2.Vpc {
    // Rejected flows are what matter for instances that admit nothing; accepted ones (image pulls, S3 traffic
    // of every job) would only add ingestion cost.
    const flowLogs = new logs.LogGroup(this, 'RejectedFlows', { retention: LOG_RETENTION });
    return new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(VPC_CIDR),
      ...(availabilityZones.length > 0 ? { availabilityZones } : { maxAzs: 3 }),
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 20, mapPublicIpOnLaunch: true }],
      // Nothing is launched into the default security group; restricting it would add a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
      flowLogs: {
        rejected: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.REJECT },
      },
    });
  }
}
