/**
 * The uninstall guard in the template: CloudFormation deletes a resource before everything it depends on, so
 * the guard must depend on all that a teardown needs, and it may read the registry and nothing else.
 */
import { logicalIdOf, resourcesOfType, type Synthesized, synthesize } from './synth';

describe('the uninstall guard', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize();
  });

  it('is deleted before the registry, the workflows, their functions, the API and the network', () => {
    // prepare
    const { json, stack } = synthesized;
    const guards = resourcesOfType(json, 'Custom::MfenvUninstallGuard');
    expect(guards).toHaveLength(1);
    const [guardId, guard] = guards[0] as unknown as [string, { DependsOn?: string[] }];
    const mustOutlive = [
      ...resourcesOfType(json, 'AWS::DynamoDB::Table'),
      ...resourcesOfType(json, 'AWS::StepFunctions::StateMachine'),
      ...resourcesOfType(json, 'AWS::ApiGateway::RestApi'),
      ...resourcesOfType(json, 'AWS::EC2::VPC'),
      ...resourcesOfType(json, 'AWS::EC2::Subnet'),
      ...resourcesOfType(json, 'AWS::Lambda::Function').filter(([id]) => id !== logicalIdOf(stack.uninstallGuard.function)),
    ].map(([id]) => id);

    // act
    const dependsOn = new Set(guard.DependsOn ?? []);

    // assess
    expect(guardId).toBe(logicalIdOf(stack.uninstallGuard.resource));
    expect(mustOutlive.length).toBeGreaterThan(8);
    expect(mustOutlive.filter((id) => !dependsOn.has(id))).toEqual([]);
  });

  it('keeps its logical id, so an update never deletes (and so never runs) the guard', () => {
    // act
    const id = logicalIdOf(synthesized.stack.uninstallGuard.resource);

    // assess
    expect(id).toBe('UninstallGuardC26E9FD9');
  });

  it('may only scan the registry table', () => {
    // prepare
    const { json, stack } = synthesized;
    const policies = resourcesOfType(json, 'AWS::IAM::Policy').filter(([, policy]) =>
      (policy.Properties!.Roles as { Ref: string }[]).some((role) => role.Ref === logicalIdOf(stack.uninstallGuard.function.role)),
    );

    // act
    const statements = policies.flatMap(([, policy]) => policy.Properties!.PolicyDocument.Statement as { Sid?: string; Action: string | string[]; Resource: unknown }[]);

    // assess
    expect(statements.map((statement) => [statement.Sid, statement.Action])).toEqual(
      expect.arrayContaining([['ListEnvironments', 'dynamodb:Scan']]),
    );
    const actions = statements.flatMap((statement) => [statement.Action].flat());
    expect(actions.filter((action) => !/^(dynamodb:Scan|logs:CreateLogStream|logs:PutLogEvents|xray:PutTraceSegments|xray:PutTelemetryRecords)$/.test(action))).toEqual([]);
  });
});
