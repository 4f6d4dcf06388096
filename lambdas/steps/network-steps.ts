/**
 * Network steps: each environment's own subnets in the shared VPC (DESIGN §6, lambdas/core/network.ts).
 * allocateNetwork claims the environment's address block first, so the bucket policy and the subnets are
 * made from the same addresses; createSubnets makes one public subnet per zone of the shared subnets,
 * joined to the shared route table (internet gateway and S3 gateway endpoint); deleteSubnets removes them
 * once the compute environment is gone, then gives the block back. With network isolation off (a
 * deployment setting) every step does nothing and the compute environment uses the shared subnets.
 */
import {
  AssociateRouteTableCommand,
  CreateSubnetCommand,
  DeleteSubnetCommand,
  DescribeRouteTablesCommand,
  DescribeSubnetsCommand,
  DisassociateRouteTableCommand,
  ModifySubnetAttributeCommand,
} from '@aws-sdk/client-ec2';
import { ec2Client } from '../core/clients';
import { ConfigurationError, QuotaExceededError, TransientError } from '../core/errors';
import { logger } from '../core/logger';
import { namesFor, tagListFor } from '../core/naming';
import { MAX_ZONES, claimNetworkBlock, heldNetworkBlock, releaseNetworkBlock, subnetCidr } from '../core/network';
import { currentDeployment, settings } from '../core/settings';
import { hasErrorCode } from './aws-errors';
import { type StepInput, type StepTable, stepHandler } from './step';
import { environmentSubnets } from './subnets';

/** Tag naming which zone of the environment a subnet serves: its index in the shared subnets' zone order. */
export const ZONE_INDEX_TAG = 'mfenv:zone-index';

/** The zones of the shared subnets, in a fixed order: environment subnet i goes to zone i. */
async function sharedZones(): Promise<string[]> {
  const { Subnets = [] } = await ec2Client().send(new DescribeSubnetsCommand({ SubnetIds: settings.subnetIds() }));
  const zones = [...new Set(Subnets.map((subnet) => subnet.AvailabilityZone!).filter(Boolean))].sort();
  if (zones.length > MAX_ZONES) {
    throw new ConfigurationError(`The shared subnets span ${zones.length} zones; an environment's block serves at most ${MAX_ZONES}.`);
  }
  return zones;
}

/** AWS allows 200 subnets per VPC (a quota that can be raised): https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html */
export const SUBNETS_PER_VPC = 200;

/** How many subnets the shared VPC holds now (the shared ones, every environment's, and any other). */
async function subnetsInVpc(): Promise<number> {
  let count = 0;
  let NextToken: string | undefined;
  do {
    const page = await ec2Client().send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [settings.vpcId()] }], NextToken }));
    count += page.Subnets?.length ?? 0;
    NextToken = page.NextToken;
  } while (NextToken);
  return count;
}

async function allocateNetwork({ environment }: StepInput) {
  if (!settings.networkIsolation()) return { cidr: null };
  const held = await heldNetworkBlock(environment.name);
  if (held) return { cidr: held.cidr };
  // Admission: an environment that could not get its subnets would fail later, after its roles and bucket.
  const [inVpc, zones] = await Promise.all([subnetsInVpc(), sharedZones()]);
  if (inVpc + zones.length > SUBNETS_PER_VPC) {
    throw new QuotaExceededError(
      `The shared VPC holds ${inVpc} subnets and this environment needs ${zones.length} more, over AWS's quota of ${SUBNETS_PER_VPC} per VPC: ` +
        'delete an unused environment, or ask the platform owner to raise the quota (Service Quotas, "Subnets per VPC").',
    );
  }
  const block = await claimNetworkBlock(environment.name);
  return { cidr: block.cidr };
}

async function createSubnets({ environment, network }: StepInput) {
  if (!settings.networkIsolation()) return { subnetIds: [] };
  if (!network?.cidr) throw new ConfigurationError(`createSubnets of "${environment.name}" got no address block (allocateNetwork comes first).`);
  const ec2 = ec2Client();
  const zones = await sharedZones();
  const existing = await environmentSubnets(environment.name);
  const deployment = currentDeployment();
  const tags = tagListFor(deployment, environment.name, environment.owner);
  const names = namesFor(deployment, environment.name);
  const subnetIds: string[] = [];
  for (const [index, zone] of zones.entries()) {
    let subnet = existing.find((candidate) => candidate.AvailabilityZone === zone);
    if (!subnet) {
      try {
        subnet = (
          await ec2.send(
            new CreateSubnetCommand({
              VpcId: settings.vpcId(),
              AvailabilityZone: zone,
              CidrBlock: subnetCidr(network.cidr, index),
              // Tagged as it is made: a subnet can never exist without saying whose it is.
              TagSpecifications: [
                {
                  ResourceType: 'subnet',
                  Tags: [...tags, { Key: ZONE_INDEX_TAG, Value: String(index) }, { Key: 'Name', Value: `${names.computeEnvironmentName}-${zone}` }],
                },
              ],
            }),
          )
        ).Subnet;
      } catch (error) {
        // A subnet of ours created by an attempt whose answer was lost: the next attempt finds it by tag.
        if (hasErrorCode(error, 'InvalidSubnet.Conflict')) throw new TransientError(`A subnet of "${environment.name}" in ${zone} is being created.`);
        throw error;
      }
    }
    if (!subnet?.SubnetId) throw new TransientError(`The subnet of "${environment.name}" in ${zone} is not visible yet.`);
    // Public, as the shared subnets: instances need an address to reach ECS, ECR and S3 without a NAT gateway.
    await ec2.send(new ModifySubnetAttributeCommand({ SubnetId: subnet.SubnetId, MapPublicIpOnLaunch: { Value: true } }));
    await joinRouteTable(subnet.SubnetId);
    subnetIds.push(subnet.SubnetId);
  }
  return { subnetIds };
}

/** Associates the subnet with the shared route table, unless it already is. */
async function joinRouteTable(subnetId: string): Promise<void> {
  const ec2 = ec2Client();
  const { RouteTables = [] } = await ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: [subnetId] }] }));
  const current = RouteTables.flatMap((table) => table.Associations ?? []).find((association) => association.SubnetId === subnetId);
  if (current?.RouteTableId === settings.routeTableId()) return;
  if (current?.RouteTableAssociationId) await ec2.send(new DisassociateRouteTableCommand({ AssociationId: current.RouteTableAssociationId }));
  await ec2.send(new AssociateRouteTableCommand({ SubnetId: subnetId, RouteTableId: settings.routeTableId() }));
}

async function deleteSubnets({ environment }: StepInput) {
  if (!settings.networkIsolation()) return { deleted: 0, released: false };
  const ec2 = ec2Client();
  let deleted = 0;
  for (const subnet of await environmentSubnets(environment.name)) {
    try {
      await ec2.send(new DeleteSubnetCommand({ SubnetId: subnet.SubnetId }));
      deleted += 1;
    } catch (error) {
      if (hasErrorCode(error, 'InvalidSubnetID.NotFound')) continue;
      // Network interfaces of the instances Batch just terminated can linger for a few minutes.
      if (hasErrorCode(error, 'DependencyViolation')) {
        throw new TransientError(`The subnet ${subnet.SubnetId} of "${environment.name}" still has network interfaces; retrying.`);
      }
      throw error;
    }
  }
  // Only once no subnet of the environment is left: its addresses may then go to another environment.
  const released = await releaseNetworkBlock(environment.name);
  logger.info('environment subnets deleted', { deleted, released });
  return { deleted, released };
}

export const steps: StepTable<'network'> = { allocateNetwork, createSubnets, deleteSubnets };

export const handler = stepHandler('network', steps);
