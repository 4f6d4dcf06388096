/**
 * Each environment's own subnets (DESIGN §6): one per availability zone of the shared VPC, carved from a
 * range the deployment sets aside for them. An environment holds one block of that range (a /23), claimed
 * in the registry with a conditional write, so two environments can never get the same addresses; each of
 * its subnets is a /25 of the block (up to four zones, 123 usable addresses each).
 *
 * The bucket policy admits the environment's job and instance roles only from those addresses, through
 * the stack's S3 gateway endpoint, so a job that runs with an environment's role anywhere else (a colleague
 * who submits its job definition to their own queue) cannot reach its data.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from './clients';
import { ConfigurationError, QuotaExceededError } from './errors';
import { settings } from './settings';

/** Prefix length of one environment's block, and of each of its subnets. */
export const BLOCK_PREFIX = 23;
export const SUBNET_PREFIX = 25;
/** Zones one block can serve: (2^(32-23)) / (2^(32-25)) subnets. */
export const MAX_ZONES = 2 ** (SUBNET_PREFIX - BLOCK_PREFIX);

const toNumber = (ip: string) => ip.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
const toIp = (value: number) => [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');

/** `a.b.c.d/n` → its first address as a number and its prefix length; throws on anything else. */
export function parseCidr(cidr: string): { base: number; prefix: number } {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!match || match.slice(1, 5).some((octet) => Number(octet) > 255) || Number(match[5]) > 32) {
    throw new ConfigurationError(`"${cidr}" is not an IPv4 CIDR block like 10.20.128.0/17.`);
  }
  const prefix = Number(match[5]);
  const base = toNumber(match.slice(1, 5).join('.'));
  if (base % 2 ** (32 - prefix) !== 0) throw new ConfigurationError(`"${cidr}" does not start on a /${prefix} boundary.`);
  return { base, prefix };
}

/** How many environment blocks a range holds. */
export function blockCount(range: string): number {
  const { prefix } = parseCidr(range);
  if (prefix > BLOCK_PREFIX) throw new ConfigurationError(`The environment subnet range ${range} is smaller than one /${BLOCK_PREFIX} block.`);
  return 2 ** (BLOCK_PREFIX - prefix);
}

/** The CIDR of block `index` of the range. */
export function blockCidr(range: string, index: number): string {
  const { base } = parseCidr(range);
  if (!Number.isInteger(index) || index < 0 || index >= blockCount(range)) {
    throw new ConfigurationError(`Block ${index} is outside the environment subnet range ${range}.`);
  }
  return `${toIp(base + index * 2 ** (32 - BLOCK_PREFIX))}/${BLOCK_PREFIX}`;
}

/** The subnet CIDR of zone `zoneIndex` inside an environment's block. */
export function subnetCidr(block: string, zoneIndex: number): string {
  const { base, prefix } = parseCidr(block);
  if (prefix !== BLOCK_PREFIX || zoneIndex < 0 || zoneIndex >= MAX_ZONES) {
    throw new ConfigurationError(`Zone ${zoneIndex} has no subnet in the block ${block}.`);
  }
  return `${toIp(base + zoneIndex * 2 ** (32 - SUBNET_PREFIX))}/${SUBNET_PREFIX}`;
}

/** The registry item of a block: keyed by its addresses, so a changed range can never hand out one twice. */
const claimKey = (cidr: string) => `NETWORK#${cidr}`;

/**
 * The block of `environment`: the one it holds already, else the lowest free one, claimed with a conditional
 * write (a claim already taken fails, so a concurrent create moves on to the next). Refuses cleanly when the
 * range is full.
 */
export async function claimNetworkBlock(environment: string): Promise<{ index: number; cidr: string }> {
  const range = settings.environmentSubnetRange();
  const table = settings.tableName();
  const count = blockCount(range);
  for (let index = 0; index < count; index += 1) {
    try {
      await dynamoClient().send(
        new PutCommand({
          TableName: table,
          Item: { pk: claimKey(blockCidr(range, index)), kind: 'network-block', environment, cidr: blockCidr(range, index) },
          ConditionExpression: 'attribute_not_exists(pk) OR #environment = :environment',
          ExpressionAttributeNames: { '#environment': 'environment' },
          ExpressionAttributeValues: { ':environment': environment },
        }),
      );
      return { index, cidr: blockCidr(range, index) };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException) && (error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
    }
  }
  throw new QuotaExceededError(
    `All ${count} network blocks of the range ${range} are held by other environments; delete an unused environment, or ask the platform owner for a larger range.`,
  );
}

/** The block `environment` holds, if any (read, never claimed). */
export async function heldNetworkBlock(environment: string): Promise<{ index: number; cidr: string } | undefined> {
  const range = settings.environmentSubnetRange();
  for (let index = 0; index < blockCount(range); index += 1) {
    const { Item } = await dynamoClient().send(
      new GetCommand({ TableName: settings.tableName(), Key: { pk: claimKey(blockCidr(range, index)) }, ConsistentRead: true }),
    );
    if (Item?.environment === environment) return { index, cidr: String(Item.cidr) };
  }
  return undefined;
}

/** Gives the block of `environment` back; nothing to do when it holds none. */
export async function releaseNetworkBlock(environment: string): Promise<boolean> {
  const held = await heldNetworkBlock(environment);
  if (!held) return false;
  try {
    await dynamoClient().send(
      new DeleteCommand({
        TableName: settings.tableName(),
        Key: { pk: claimKey(held.cidr) },
        ConditionExpression: '#environment = :environment',
        ExpressionAttributeNames: { '#environment': 'environment' },
        ExpressionAttributeValues: { ':environment': environment },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException) && (error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
  }
  return true;
}
