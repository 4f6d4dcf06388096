/**
 * The registry table (layout: REGISTRY_TABLE in lambdas/core/registry.ts) and the permissions boundary of
 * every environment role: the two things the stack keeps about, and above, every environment.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { permissionsBoundaryName, permissionsBoundaryPolicy } from '../lambdas/core/policies';
import { REGISTRY_TABLE } from '../lambdas/core/registry';

/**
 * On demand (nothing billed while idle), point-in-time recovery, encrypted with the AWS managed key. Kept
 * when the stack is deleted, and protected against deletion: it is the only record of which environments
 * (and so which buckets with data) exist.
 */
export function createRegistryTable(scope: Construct): dynamodb.Table {
  const table = new dynamodb.Table(scope, 'Registry', {
    partitionKey: { name: REGISTRY_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    timeToLiveAttribute: REGISTRY_TABLE.ttlAttribute,
    deletionProtection: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  table.addGlobalSecondaryIndex({
    indexName: REGISTRY_TABLE.ownerIndex.name,
    partitionKey: { name: REGISTRY_TABLE.ownerIndex.partitionKey, type: dynamodb.AttributeType.STRING },
    sortKey: { name: REGISTRY_TABLE.ownerIndex.sortKey, type: dynamodb.AttributeType.STRING },
    projectionType: dynamodb.ProjectionType.ALL,
  });
  return table;
}

/**
 * The permissions boundary: the most any role a workflow creates can ever do (see permissionsBoundaryPolicy),
 * under the IAM path `/<prefix>/` and named by permissionsBoundaryName (local mode creates the same).
 */
export function createPermissionsBoundary(scope: Construct, prefix: string, stackName: string): iam.ManagedPolicy {
  return new iam.ManagedPolicy(scope, 'EnvironmentBoundary', {
    managedPolicyName: permissionsBoundaryName(stackName),
    path: `/${prefix}/`,
    description: 'Permissions boundary of every mfenv environment role: the ECS agent, mfenv bucket objects and the Metaflow client on mfenv queues, nothing else.',
    document: iam.PolicyDocument.fromJson(
      permissionsBoundaryPolicy(prefix, Stack.of(scope).partition, { accountId: Stack.of(scope).account, region: Stack.of(scope).region }),
    ),
  });
}
