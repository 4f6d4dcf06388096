/**
 * The workflows: the ASL files are valid and agree with the catalogue (a step cannot be forgotten), and
 * the state machines in the template are those files, inline, with every placeholder filled by the right
 * step Lambda, logged, traced, and allowed to invoke exactly the functions they name.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { stateMachineName, taskFunctionPlaceholders } from '../../infra/workflows';
import { STATE_MACHINES, STEP_FUNCTIONS, STEP_FUNCTION_IDS, type StateMachineId, type StepFunctionId } from '../../lambdas/steps/catalogue';
import { CONTEXT } from '../../infra/config';
import { LOG_RETENTION } from '../../infra/functions';
import { PROJECT_ROOT, type Synthesized, logicalIdOf, readable, resourcesOfType, synthesize } from './synth';

// asl-validator ships no type declarations.
const aslValidator = require('asl-validator') as (definition: unknown) => { isValid: boolean; errorsText: (separator?: string) => string };

type State = Record<string, any>;
const MACHINE_IDS = Object.keys(STATE_MACHINES) as StateMachineId[];

function definitionOf(id: StateMachineId): { States: Record<string, State> } {
  return JSON.parse(readFileSync(path.join(PROJECT_ROOT, STATE_MACHINES[id].file), 'utf8'));
}

/** Every state of a definition, nested ones (Parallel branches, Map processors) included, by name. */
function allStates(definition: { States: Record<string, State> }): [string, State][] {
  return Object.entries(definition.States).flatMap(([name, state]) => [
    [name, state] as [string, State],
    ...((state.Branches ?? []) as { States: Record<string, State> }[]).flatMap(allStates),
    ...(state.ItemProcessor ?? state.Iterator ? allStates(state.ItemProcessor ?? state.Iterator) : []),
  ]);
}

const placeholderToFunction = new Map(STEP_FUNCTION_IDS.map((id) => [`\${${STEP_FUNCTIONS[id].placeholder}}`, id]));

describe('the ASL files', () => {
  it.each(MACHINE_IDS)('%s is valid Amazon States Language', (id) => {
    // prepare
    const definition = definitionOf(id);

    // act
    const { isValid, errorsText } = aslValidator(definition);

    // assess
    expect(errorsText('\n')).toBe('');
    expect(isValid).toBe(true);
  });

  it.each(MACHINE_IDS)('%s invokes only catalogued step Lambdas, each with one of its own steps, and no SDK integration', (id) => {
    // prepare
    const definition = definitionOf(id);

    // act
    const tasks = allStates(definition).filter(([, state]) => state.Type === 'Task');

    // assess
    expect(tasks.length).toBeGreaterThan(0);
    for (const [name, task] of tasks) {
      expect({ name, resource: task.Resource }).toEqual({ name, resource: 'arn:aws:states:::lambda:invoke' });
      const fnId = placeholderToFunction.get(task.Parameters.FunctionName);
      expect({ name, functionName: task.Parameters.FunctionName, catalogued: fnId !== undefined }).toEqual({
        name,
        functionName: task.Parameters.FunctionName,
        catalogued: true,
      });
      const steps: readonly string[] = STEP_FUNCTIONS[fnId!].steps;
      expect({ name, step: task.Parameters.Payload.step, inCatalogue: steps.includes(task.Parameters.Payload.step) }).toEqual({
        name,
        step: task.Parameters.Payload.step,
        inCatalogue: true,
      });
    }
  });

  it.each(MACHINE_IDS)('%s ends every failure through a Catch that leads to a Fail state, and has no uncatchable execution timeout', (id) => {
    // prepare
    const definition = definitionOf(id) as { States: Record<string, State>; TimeoutSeconds?: number; TimeoutSecondsPath?: string };
    /**
     * Whatever happens in `name` (success or any error), the execution goes on to a Fail state. A Choice, Pass or
     * Wait passes on to every state it may go to (an undo path chooses what to undo); coming back to a state
     * already on the path is a poll loop, which its Task ends by throwing after MAX_POLL_ATTEMPTS checks, so
     * only the loop's ways out decide.
     */
    const endsInFail = (name: string, seen: Set<string> = new Set()): boolean => {
      const state = definition.States[name]!;
      if (state.Type === 'Fail') return true;
      if (seen.has(name)) return state.Type !== 'Task' || (state.Catch ?? []).length > 0;
      const next = new Set([...seen, name]);
      if (state.Type === 'Choice') {
        const targets = [...(state.Choices ?? []).map((choice: { Next: string }) => choice.Next), state.Default].filter(Boolean) as string[];
        return state.Default !== undefined && targets.every((target) => endsInFail(target, next));
      }
      if (state.Type === 'Pass' || state.Type === 'Wait') return state.Next !== undefined && endsInFail(state.Next, next);
      if (state.Type !== 'Task' || !state.Next) return false;
      const catchAll = (state.Catch ?? []).find((catcher: { ErrorEquals: string[] }) => catcher.ErrorEquals.includes('States.ALL'));
      return catchAll !== undefined && endsInFail(state.Next, next) && endsInFail(catchAll.Next, next);
    };

    // act
    const topLevel = Object.entries(definition.States).filter(([, state]) => state.Type === 'Task' || state.Type === 'Parallel');
    const catchTargets = topLevel.map(([name, state]) => ({
      name,
      catchAll: (state.Catch ?? []).find((catcher: { ErrorEquals: string[] }) => catcher.ErrorEquals.includes('States.ALL'))?.Next as string | undefined,
    }));

    // assess: an execution-level timeout cannot be caught and would leave the registry record as it was
    expect(definition.TimeoutSeconds).toBeUndefined();
    expect(definition.TimeoutSecondsPath).toBeUndefined();
    expect(catchTargets.length).toBeGreaterThan(5);
    for (const { name, catchAll } of catchTargets) {
      expect({ name, catchAll: catchAll !== undefined }).toEqual({ name, catchAll: true });
      expect({ name, endsInFail: endsInFail(catchAll!) }).toEqual({ name, endsInFail: true });
    }
    // ... and every Task, nested ones included, is bounded by its own timeout.
    for (const [name, state] of allStates(definition).filter(([, state]) => state.Type === 'Task')) {
      expect({ name, timeout: state.TimeoutSeconds }).toEqual({ name, timeout: expect.any(Number) });
    }
  });

  it.each(MACHINE_IDS)('%s retries the Lambda service errors of every Task as AWS recommends: backoff from 2 s, 6 attempts, full jitter', (id) => {
    // prepare: the errors AWS documents for the lambda:invoke integration as worth retrying
    const lambdaErrors = [
      'Lambda.ServiceException',
      'Lambda.AWSLambdaException',
      'Lambda.SdkClientException',
      'Lambda.TooManyRequestsException',
      'Lambda.ClientExecutionTimeoutException',
    ];
    const tasks = allStates(definitionOf(id)).filter(([, state]) => state.Type === 'Task');

    // act
    const retriers = tasks.map(([name, state]) => ({
      name,
      retrier: ((state.Retry ?? []) as { ErrorEquals: string[] }[]).find((retrier) => retrier.ErrorEquals.includes('Lambda.ServiceException')),
    }));

    // assess
    expect(tasks.length).toBeGreaterThan(5);
    for (const { name, retrier } of retriers) {
      expect({ name, retrier }).toEqual({
        name,
        retrier: {
          ErrorEquals: expect.arrayContaining(lambdaErrors),
          IntervalSeconds: 2,
          MaxAttempts: 6,
          BackoffRate: 2,
          JitterStrategy: 'FULL',
        },
      });
    }
  });

  it('uses every catalogued step and every step Lambda somewhere (a step cannot be forgotten)', () => {
    // prepare
    const used = new Set<string>();
    for (const id of MACHINE_IDS) {
      for (const [, state] of allStates(definitionOf(id))) {
        if (state.Type !== 'Task') continue;
        used.add(`${placeholderToFunction.get(state.Parameters.FunctionName)}.${state.Parameters.Payload.step}`);
      }
    }

    // act
    const catalogued = STEP_FUNCTION_IDS.flatMap((fnId) => STEP_FUNCTIONS[fnId].steps.map((step) => `${fnId}.${step}`));

    // assess
    expect(catalogued.filter((step) => !used.has(step))).toEqual([]);
    expect([...used].filter((step) => !catalogued.includes(step))).toEqual([]);
  });

  it('finds the placeholders the stack substitutes the same way this test does', () => {
    // prepare
    const definitions = MACHINE_IDS.map(definitionOf);

    // act
    const found = definitions.map((definition) => [...taskFunctionPlaceholders(definition)].sort());

    // assess
    const expected = definitions.map((definition) =>
      [
        ...new Set(
          allStates(definition)
            .filter(([, state]) => state.Type === 'Task')
            .map(([, state]) => (state.Parameters.FunctionName as string).slice(2, -1)),
        ),
      ].sort(),
    );
    expect(found).toEqual(expected);
  });
});

describe('the state machines', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize();
  });

  const machineResource = (id: StateMachineId) => synthesized.json.Resources[logicalIdOf(synthesized.stack.workflows.stateMachines[id])]!;

  it.each(MACHINE_IDS)('%s is inline, under its fixed name, standard, logged at ALL to a log group with retention, and traced', (id) => {
    // prepare
    const { json } = synthesized;

    // act
    const machine = machineResource(id).Properties!;

    // assess
    expect(typeof machine.DefinitionString).toBe('string');
    expect(machine.DefinitionS3Location).toBeUndefined();
    expect(machine.StateMachineName).toBe(stateMachineName('mfenv', id));
    expect(machine.StateMachineType).toBe('STANDARD');
    expect(machine.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
    const logGroupId = machine.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0];
    expect(json.Resources[logGroupId]!.Properties!.RetentionInDays).toBe(LOG_RETENTION);
    expect(machine.TracingConfiguration).toEqual({ Enabled: true });
  });

  it.each(MACHINE_IDS)('%s has every placeholder filled with its step Lambda, and none left over', (id) => {
    // prepare
    const { stack, json } = synthesized;
    const machine = machineResource(id).Properties!;

    // act: what CloudFormation does with DefinitionSubstitutions.
    // A Lambda ARN is shown as <LogicalId.Arn>, so that no `${` can come from the substitution itself.
    let definition: string = machine.DefinitionString;
    for (const [placeholder, value] of Object.entries(machine.DefinitionSubstitutions as Record<string, { 'Fn::GetAtt': string[] }>)) {
      definition = definition.replaceAll(`\${${placeholder}}`, `<${value['Fn::GetAtt'].join('.')}>`);
    }

    // assess
    expect(definition).not.toMatch(/\$\{/);
    expect(definition).toBe(readFileSync(path.join(PROJECT_ROOT, STATE_MACHINES[id].file), 'utf8').replace(/\$\{(\w+)\}/g, (_, placeholder: string) => {
      const fnId = STEP_FUNCTION_IDS.find((candidate) => STEP_FUNCTIONS[candidate].placeholder === placeholder)!;
      return `<${logicalIdOf(stack.workflows.stepFunctions[fnId])}.Arn>`;
    }));
    for (const value of Object.values(machine.DefinitionSubstitutions as Record<string, { 'Fn::GetAtt': [string, string] }>)) {
      const [target, attribute] = value['Fn::GetAtt'];
      expect(json.Resources[target]!.Type).toBe('AWS::Lambda::Function');
      expect(attribute).toBe('Arn');
    }
    expect(() => JSON.parse(definition)).not.toThrow();
  });

  it.each(MACHINE_IDS)('%s may invoke exactly the step Lambdas its file names, by their unqualified ARN', (id) => {
    // prepare
    const { stack, json } = synthesized;
    const roleId = logicalIdOf(stack.workflows.stateMachines[id].role);
    const expected = [...taskFunctionPlaceholders(definitionOf(id))]
      .map((placeholder) => STEP_FUNCTION_IDS.find((fnId) => STEP_FUNCTIONS[fnId].placeholder === placeholder) as StepFunctionId)
      .map((fnId) => `\${${logicalIdOf(stack.workflows.stepFunctions[fnId])}.Arn}`)
      .sort();

    // act
    const statements = resourcesOfType(json, 'AWS::IAM::Policy')
      .filter(([, policy]) => policy.Properties!.Roles.some((role: { Ref: string }) => role.Ref === roleId))
      .flatMap(([, policy]) => readable(policy.Properties!.PolicyDocument.Statement) as { Action: string | string[]; Resource: string | string[] }[]);

    // assess
    const invoke = statements.filter((statement) => [statement.Action].flat().includes('lambda:InvokeFunction'));
    expect(invoke.flatMap((statement) => [statement.Resource].flat()).sort()).toEqual(expected);
    expect(statements.flatMap((statement) => [statement.Action].flat()).filter((action) => action.startsWith('lambda:'))).toEqual(
      expected.map(() => 'lambda:InvokeFunction'),
    );
  });

  it('lets the registry steps start the teardown by the ARN of its fixed name (a rollback)', () => {
    // prepare
    const { stack, json } = synthesized;

    // act
    const registrySteps = json.Resources[logicalIdOf(stack.workflows.stepFunctions.registry)]!.Properties!;
    const teardownArn = readable(registrySteps.Environment.Variables.MFENV_TEARDOWN_STATE_MACHINE_ARN);

    // assess
    expect(teardownArn).toBe(`arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:${stateMachineName('mfenv', 'teardown')}`);
    expect(machineResource('teardown').Properties!.StateMachineName).toBe(stateMachineName('mfenv', 'teardown'));
  });
});

describe('the state machines of a renamed stack', () => {
  it('are named after the stack, so two stacks in one account do not collide', () => {
    // prepare
    const stackName = 'mfenv-research';

    // act
    const { template } = synthesize({ [CONTEXT.stackName]: stackName });

    // assess
    for (const id of MACHINE_IDS) {
      template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: `${stackName}-${id}` });
    }
  });
});
