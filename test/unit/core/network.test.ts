import { BLOCK_PREFIX, MAX_ZONES, blockCidr, blockCount, parseCidr, subnetCidr } from '../../../lambdas/core/network';

describe('environment address blocks', () => {
  it('carves a /17 range into 64 blocks of /23, in order, without overlap', () => {
    // act
    const range = '10.20.128.0/17';
    const blocks = Array.from({ length: blockCount(range) }, (_, index) => blockCidr(range, index));
    // assess
    expect(blocks).toHaveLength(64);
    expect(blocks[0]).toBe('10.20.128.0/23');
    expect(blocks[1]).toBe('10.20.130.0/23');
    expect(blocks.at(-1)).toBe('10.20.254.0/23');
    expect(new Set(blocks).size).toBe(64);
  });

  it('gives each zone a /25 of the block: at most four zones', () => {
    // act + assess
    expect(MAX_ZONES).toBe(4);
    expect([0, 1, 2, 3].map((zone) => subnetCidr('10.20.130.0/23', zone))).toEqual([
      '10.20.130.0/25',
      '10.20.130.128/25',
      '10.20.131.0/25',
      '10.20.131.128/25',
    ]);
    expect(() => subnetCidr('10.20.130.0/23', 4)).toThrow(/no subnet/);
  });

  it.each([
    ['10.20.128.0', /not an IPv4 CIDR/],
    ['10.20.300.0/17', /not an IPv4 CIDR/],
    ['10.20.129.0/17', /boundary/],
  ])('refuses %s', (cidr, expected) => {
    expect(() => parseCidr(cidr)).toThrow(expected);
  });

  it(`refuses a range smaller than one /${BLOCK_PREFIX}, and a block index outside the range`, () => {
    expect(() => blockCount('10.20.128.0/24')).toThrow(/smaller than one/);
    expect(() => blockCidr('10.20.128.0/22', 2)).toThrow(/outside/);
  });
});
