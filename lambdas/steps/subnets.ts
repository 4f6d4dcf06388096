/**
 * An environment's own subnets, found by their tags (a retry, the compute environment and the teardown all
 * find the same ones): made by the network steps, used by the compute environment.
 */
import { DescribeSubnetsCommand, type Subnet } from '@aws-sdk/client-ec2';
import { ec2Client } from '../core/clients';
import { TAG } from '../core/naming';
import { settings } from '../core/settings';
import { isOurs } from './ownership';

/** The subnets of this environment in the shared VPC, made by this deployment. */
export async function environmentSubnets(environmentName: string): Promise<Subnet[]> {
  const { Subnets = [] } = await ec2Client().send(
    new DescribeSubnetsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [settings.vpcId()] },
        { Name: `tag:${TAG.environment}`, Values: [environmentName] },
      ],
    }),
  );
  return Subnets.filter((subnet) => isOurs(subnet.Tags, environmentName));
}
