/**
 * The registry table (as lambdas/core/registry.ts expects it) and the permissions boundary (as
 * lambdas/core/policies.ts defines it).
 */
import { permissionsBoundaryPolicy } from '../../lambdas/core/policies';
import { REGISTRY_TABLE } from '../../lambdas/core/registry';
import { CONTEXT } from '../../infra/config';
import { type Synthesized, readable, resourcesOfType, synthesize } from './synth';

describe('the registry table', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize();
  });

  it('has the layout the registry store uses: pk, the byOwner index (owner, name, all attributes), TTL on expiresAt', () => {
    // prepare
    const { json } = synthesized;

    // act
    const tables = resourcesOfType(json, 'AWS::DynamoDB::Table');

    // assess
    expect(tables).toHaveLength(1);
    const table = tables[0]![1].Properties!;
    expect(table.KeySchema).toEqual([{ AttributeName: REGISTRY_TABLE.partitionKey, KeyType: 'HASH' }]);
    expect(table.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: REGISTRY_TABLE.ownerIndex.name,
        KeySchema: [
          { AttributeName: REGISTRY_TABLE.ownerIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: REGISTRY_TABLE.ownerIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    expect(table.AttributeDefinitions).toEqual(
      expect.arrayContaining(
        [REGISTRY_TABLE.partitionKey, REGISTRY_TABLE.ownerIndex.partitionKey, REGISTRY_TABLE.ownerIndex.sortKey].map((name) => ({
          AttributeName: name,
          AttributeType: 'S',
        })),
      ),
    );
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: REGISTRY_TABLE.ttlAttribute, Enabled: true });
  });

  it('is on demand, recoverable to a point in time, encrypted, protected and kept when the stack goes', () => {
    // prepare
    const { json } = synthesized;

    // act
    const [, table] = resourcesOfType(json, 'AWS::DynamoDB::Table')[0]!;

    // assess
    expect(table.Properties!.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.Properties!.ProvisionedThroughput).toBeUndefined();
    expect(table.Properties!.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.Properties!.SSESpecification).toEqual({ SSEEnabled: true });
    expect(table.Properties!.DeletionProtectionEnabled).toBe(true);
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });
});

describe('the permissions boundary', () => {
  it('is the policy lambdas/core/policies.ts defines for the prefix, under the IAM path /<prefix>/', () => {
    // prepare
    const prefix = 'team7';

    // act
    const { json } = synthesize({ [CONTEXT.prefix]: prefix, [CONTEXT.stackName]: 'mfenv-team7' });

    // assess
    const policies = resourcesOfType(json, 'AWS::IAM::ManagedPolicy');
    expect(policies).toHaveLength(1);
    const boundary = policies[0]![1].Properties!;
    expect(boundary.Path).toBe(`/${prefix}/`);
    expect(boundary.ManagedPolicyName).toBe('mfenv-team7-environment-boundary');
    const expected = permissionsBoundaryPolicy(prefix, '${AWS::Partition}', { accountId: '${AWS::AccountId}', region: '${AWS::Region}' });
    expect(readable(boundary.PolicyDocument)).toEqual(expected);
  });
});
