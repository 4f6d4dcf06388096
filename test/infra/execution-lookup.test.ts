/**
 * The API looks up whether the workflow an environment waits on still runs (DELETE of a CREATING or
 * DELETING environment): it may describe the executions of the stack's two state machines, and nothing else.
 */
import { CONTEXT } from '../../infra/config';
import { STEP_FUNCTION_IDS } from '../../lambdas/steps/catalogue';
import { type Synthesized, logicalIdOf, readable, resourcesOfType, synthesize } from './synth';

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
}

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** The resources `action` is allowed on by the inline policies of the role with logical id `roleId`. */
function resourcesAllowed(json: Synthesized['json'], roleId: string, action: string): string[] {
  return resourcesOfType(json, 'AWS::IAM::Policy')
    .filter(([, policy]) => policy.Properties!.Roles.some((role: { Ref: string }) => role.Ref === roleId))
    .flatMap(([, policy]) => readable(policy.Properties!.PolicyDocument.Statement) as Statement[])
    .filter((statement) => statement.Effect === 'Allow' && list(statement.Action).includes(action))
    .flatMap((statement) => list(statement.Resource));
}

describe('states:DescribeExecution', () => {
  it.each([
    ['mfenv', {}],
    ['research', { [CONTEXT.stackName]: 'research' }],
  ])("is granted to the API on the executions of the %s stack's state machines only", (stackName, context) => {
    // prepare
    const { stack, json } = synthesize(context);

    // act
    const api = resourcesAllowed(json, logicalIdOf(stack.apiFunction.role), 'states:DescribeExecution');
    const steps = STEP_FUNCTION_IDS.flatMap((id) =>
      resourcesAllowed(json, logicalIdOf(stack.workflows.stepFunctions[id].role), 'states:DescribeExecution'),
    );

    // assess
    expect(api.sort()).toEqual([
      `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:${stackName}-provision:*`,
      `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:${stackName}-teardown:*`,
      `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:${stackName}-update:*`,
    ]);
    expect(steps).toEqual([]);
  });
});
