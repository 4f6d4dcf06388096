/**
 * Network steps against the emulator: each environment's address block and its own subnets in the shared
 * VPC, made twice without harm, found again by their tags, deleted (and the block given back), and never
 * anything of another deployment's.
 */
import { CreateSubnetCommand, DescribeRouteTablesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { blockCidr, claimNetworkBlock, heldNetworkBlock, subnetCidr } from '../../../lambdas/core/network';
import { TAG } from '../../../lambdas/core/naming';
import { SETTING, settings } from '../../../lambdas/core/settings';
import { handler } from '../../../lambdas/steps/network-steps';
import { useEmulator } from '../../support/emulator';
import { outcomeOf } from '../../support/outcome';
import { invoke, quietLogs, uniqueName, withSetting, workflowEnvironment } from './fixtures';

const { context } = useEmulator();
let ec2: EC2Client;

beforeAll(() => {
  quietLogs();
  ec2 = new EC2Client(context.clientConfig);
});
afterAll(() => ec2?.destroy());

type Allocation = { cidr: string | null };
type Created = { subnetIds: string[] };

async function subnetsTaggedFor(name: string) {
  const { Subnets = [] } = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: `tag:${TAG.environment}`, Values: [name] }] }));
  return Subnets;
}

describe('allocateNetwork', () => {
  it('gives each environment its own block of the range, the same one every time it asks', async () => {
    // prepare
    const alice = workflowEnvironment(uniqueName('net-a'));
    const bob = workflowEnvironment(uniqueName('net-b'));

    // act
    const first = await invoke<Allocation>(handler, { step: 'allocateNetwork', environment: alice });
    const again = await invoke<Allocation>(handler, { step: 'allocateNetwork', environment: alice });
    const other = await invoke<Allocation>(handler, { step: 'allocateNetwork', environment: bob });

    // assess
    expect(first.cidr).toMatch(/\/23$/);
    expect(again).toEqual(first);
    expect(other.cidr).not.toBe(first.cidr);
    expect(await heldNetworkBlock(alice.name)).toMatchObject({ cidr: first.cidr });
  });

  it('refuses cleanly when every block of the range is held', async () => {
    // prepare: a range of exactly two blocks, both taken
    const range = '10.99.0.0/22';
    await withSetting(SETTING.environmentSubnetRange, range, async () => {
      await claimNetworkBlock(uniqueName('full-1'));
      await claimNetworkBlock(uniqueName('full-2'));

      // act
      const attempt = invoke(handler, { step: 'allocateNetwork', environment: workflowEnvironment(uniqueName('full-3')) });

      // assess
      await expect(attempt).rejects.toMatchObject({ name: 'QuotaExceededError', message: expect.stringContaining('All 2 network blocks') });
    });
  });

  it('does nothing with network isolation off', async () => {
    // act
    const answer = await withSetting(SETTING.networkIsolation, 'false', () =>
      invoke<Allocation>(handler, { step: 'allocateNetwork', environment: workflowEnvironment(uniqueName('net-off')) }),
    );
    // assess
    expect(answer).toEqual({ cidr: null });
  });
});

describe('createSubnets and deleteSubnets', () => {
  it('makes one public subnet per shared zone in the block, on the shared route table; twice is the same; delete removes them and frees the block', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('subnets'));
    const network = await invoke<Allocation>(handler, { step: 'allocateNetwork', environment });

    // act
    const first = await invoke<Created>(handler, { step: 'createSubnets', environment, network });
    const second = await invoke<Created>(handler, { step: 'createSubnets', environment, network });

    // assess: created
    const zones = context.bootstrap.subnetIds.length;
    expect(first.subnetIds).toHaveLength(zones);
    expect(second.subnetIds.sort()).toEqual([...first.subnetIds].sort());
    const subnets = await subnetsTaggedFor(environment.name);
    expect(subnets.map((subnet) => subnet.CidrBlock).sort()).toEqual(
      Array.from({ length: zones }, (_, index) => subnetCidr(network.cidr!, index)).sort(),
    );
    for (const subnet of subnets) {
      expect(subnet.VpcId).toBe(settings.vpcId());
      expect(subnet.MapPublicIpOnLaunch).toBe(true);
    }
    const { RouteTables = [] } = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: first.subnetIds }] }),
    );
    expect(RouteTables.map((table) => table.RouteTableId)).toEqual([settings.routeTableId()]);

    // act: delete, twice
    const removed = await invoke(handler, { step: 'deleteSubnets', environment });
    const again = await invoke(handler, { step: 'deleteSubnets', environment });

    // assess: gone, and the block is free again
    expect(removed).toEqual({ deleted: zones, released: true });
    expect(again).toEqual({ deleted: 0, released: false });
    expect(await subnetsTaggedFor(environment.name)).toEqual([]);
    expect(await heldNetworkBlock(environment.name)).toBeUndefined();
  });

  it("leaves alone a subnet tagged for the environment by another deployment", async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('twin-net'));
    const foreign = await ec2.send(
      new CreateSubnetCommand({
        VpcId: settings.vpcId(),
        CidrBlock: blockCidr('10.20.0.0/16', 120).replace('/23', '/25'),
        TagSpecifications: [
          {
            ResourceType: 'subnet',
            Tags: [
              { Key: TAG.environment, Value: environment.name },
              { Key: TAG.managedBy, Value: 'mfenv-team2' },
            ],
          },
        ],
      }),
    );

    // act
    const answer = await invoke(handler, { step: 'deleteSubnets', environment });

    // assess
    expect(answer).toEqual({ deleted: 0, released: false });
    const { Subnets = [] } = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [foreign.Subnet!.SubnetId!] }));
    expect(Subnets).toHaveLength(1);
  });

  it('refuses to delete when the registry does not show the teardown', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('net-guard'));
    const network = await invoke<Allocation>(handler, { step: 'allocateNetwork', environment });
    await invoke(handler, { step: 'createSubnets', environment, network });

    // act
    const attempt = invoke(handler, { step: 'deleteSubnets', environment }, { unrecorded: true });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'TeardownNotRecorded' });
    expect(await subnetsTaggedFor(environment.name)).toHaveLength(context.bootstrap.subnetIds.length);
  });
});

describe('admission against the subnets-per-VPC quota', () => {
  // Last in the file: it fills the emulator's VPC with subnets.
  it('refuses a new environment whose subnets would pass 200 in the VPC, saying so; one that holds its block keeps it', async () => {
    // prepare: an environment that already holds a block, then the VPC filled to 199 subnets
    const holder = workflowEnvironment(uniqueName('holder'));
    const held = await invoke<Allocation>(handler, { step: 'allocateNetwork', environment: holder });
    const { Subnets = [] } = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [settings.vpcId()] }] }));
    for (let index = Subnets.length; index < 199; index += 1) {
      await ec2.send(new CreateSubnetCommand({ VpcId: settings.vpcId(), CidrBlock: `10.20.${64 + Math.floor(index / 16)}.${(index % 16) * 16}/28` }));
    }

    // act
    const attempt = outcomeOf(invoke(handler, { step: 'allocateNetwork', environment: workflowEnvironment(uniqueName('one-too-many')) }));
    const again = await invoke<Allocation>(handler, { step: 'allocateNetwork', environment: holder });

    // assess
    expect(await attempt).toMatchObject({ name: 'QuotaExceededError', message: expect.stringContaining('quota of 200 per VPC') });
    expect(again).toEqual(held);
  });
});
