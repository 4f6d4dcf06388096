/**
 * The uninstall guard (lambdas/ops/uninstall-guard.ts): a custom resource that fails its own deletion while
 * environments are live, so deleting the bootstrap stack stops before stranding them.
 *
 * It depends on everything environments need to be torn down properly: CloudFormation deletes a resource
 * before what it depends on, so when the guard refuses, the table, the workflows and the API still stand and
 * `npm run drain` can run. Its logical id must never change: a new id would delete the old guard on update.
 */
import { CustomResource, Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IDependable } from 'constructs';
import { UNINSTALL_GUARD_FUNCTION } from '../lambdas/steps/catalogue';
import { MfenvFunction } from './functions';

export interface UninstallGuardProps {
  table: dynamodb.ITable;
  /** What must outlive the guard: the workflows, the API and anything else a teardown needs. */
  protects: IDependable[];
}

export class UninstallGuard extends Construct {
  readonly function: MfenvFunction;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: UninstallGuardProps) {
    super(scope, id);
    this.function = new MfenvFunction(this, 'Function', {
      entry: UNINSTALL_GUARD_FUNCTION.entry,
      description: UNINSTALL_GUARD_FUNCTION.description,
      timeout: Duration.seconds(30),
    });
    this.function.setSetting('tableName', props.table.tableName);
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        // Lists the environments (a scan of a table of a few hundred items) to count and name the live ones.
        sid: 'ListEnvironments',
        actions: ['dynamodb:Scan'],
        resources: [props.table.tableArn],
      }),
    );
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: this.function.functionArn,
      resourceType: 'Custom::MfenvUninstallGuard',
    });
    this.resource.node.addDependency(props.table, ...props.protects);
  }
}
