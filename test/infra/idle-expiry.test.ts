/**
 * Idle expiry in the template (infra/idle-expiry.ts): absent unless mfenv:idleExpiryDays is set; set, one
 * daily rule invoking one checker whose role holds exactly what its code calls, and nothing cdk-nag objects to.
 * (functions.test.ts and permissions.test.ts check the default stack, which has no checker.)
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CONTEXT, readConfig } from '../../infra/config';
import { acknowledgements } from '../../infra/nag';
import { MfenvStack } from '../../infra/stack';
import { SETTING } from '../../lambdas/core/settings';
import { IDLE_EXPIRY_FUNCTION } from '../../lambdas/steps/catalogue';
import { scratchDir } from '../support/scratch';
import { actionsCalledBy, settingsReadBy } from './sources';
import { type Synthesized, cdkJsonContext, logicalIdOf, readable, resourcesOfType } from './synth';

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string>>;
}
const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

const ON = { [CONTEXT.idleExpiryDays]: 14, [CONTEXT.idleExpiryGraceDays]: 5 };

/**
 * The stack as synth.ts builds it, but with cdk-nag run by the test itself (validateScope) instead of as a
 * synth plugin: the nag test below looks at this construct's findings, which another construct's cannot hide.
 */
function synthesize(context: Record<string, unknown> = {}): Synthesized {
  const app = new App({ outdir: scratchDir('synth'), context: { ...cdkJsonContext(), ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new MfenvStack(app, 'Mfenv', { config: readConfig(app.node) });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as Synthesized['json'] };
}

describe('idle expiry, off (the default)', () => {
  it('puts no rule and no checker in the stack', () => {
    // act
    const { stack, json } = synthesize();

    // assess
    expect(stack.idleExpiry).toBeUndefined();
    expect(resourcesOfType(json, 'AWS::Events::Rule')).toEqual([]);
    const variables = resourcesOfType(json, 'AWS::Lambda::Function').map(([, fn]) => Object.keys(fn.Properties!.Environment.Variables));
    expect(variables.flat()).not.toContain(SETTING.idleExpiryDays);
  });
});

describe('idle expiry, on', () => {
  let synthesized: Synthesized;
  let statements: Statement[];
  beforeAll(() => {
    synthesized = synthesize(ON);
    const roleId = logicalIdOf(synthesized.stack.idleExpiry!.function.role);
    statements = resourcesOfType(synthesized.json, 'AWS::IAM::Policy')
      .filter(([, policy]) => policy.Properties!.Roles.some((role: { Ref: string }) => role.Ref === roleId))
      .flatMap(([, policy]) => readable(policy.Properties!.PolicyDocument.Statement) as Statement[]);
  });

  it('runs the checker once a day from an EventBridge rule, and never retries a failed run', () => {
    // prepare
    const { stack, json } = synthesized;
    const fn = logicalIdOf(stack.idleExpiry!.function);

    // act
    const rules = resourcesOfType(json, 'AWS::Events::Rule').map(([, rule]) => rule.Properties!);
    const invokeConfigs = resourcesOfType(json, 'AWS::Lambda::EventInvokeConfig').map(([, config]) => config.Properties!);

    // assess
    expect(rules).toEqual([
      expect.objectContaining({ ScheduleExpression: 'rate(1 day)', State: 'ENABLED', Targets: [expect.objectContaining({ Arn: { 'Fn::GetAtt': [fn, 'Arn'] } })] }),
    ]);
    expect(invokeConfigs).toEqual([expect.objectContaining({ FunctionName: { Ref: fn }, MaximumRetryAttempts: 0 })]);
  });

  it('tells the checker the period and the grace', () => {
    // act
    const variables = synthesized.json.Resources[logicalIdOf(synthesized.stack.idleExpiry!.function)]!.Properties!.Environment.Variables;

    // assess
    expect(variables).toMatchObject({ [SETTING.idleExpiryDays]: '14', [SETTING.idleExpiryGraceDays]: '5' });
  });

  it('gives it exactly the settings its code reads', async () => {
    // prepare
    const provided = ['region'];

    // act
    const read = (await settingsReadBy(IDLE_EXPIRY_FUNCTION.entry)).filter((name) => !provided.includes(name)).map((name) => SETTING[name]);
    const given = Object.keys(synthesized.json.Resources[logicalIdOf(synthesized.stack.idleExpiry!.function)]!.Properties!.Environment.Variables).filter(
      (variable) => variable.startsWith('MFENV_'),
    );

    // assess
    expect(given.sort()).toEqual(read.sort());
  });

  it('allows every AWS call its code makes, and only the registry, ListJobs, the teardown and mfenv events', async () => {
    // prepare
    const { stack } = synthesized;
    const table = `\${${logicalIdOf(stack.node.findChild('Registry'))}.Arn}`;
    const allowed = statements.filter((statement) => statement.Effect === 'Allow');

    // act
    const called = await actionsCalledBy(IDLE_EXPIRY_FUNCTION.entry);

    // assess
    const granted = new Set(allowed.flatMap((statement) => list(statement.Action)));
    expect(called).toEqual(expect.arrayContaining(['batch:ListJobs', 'dynamodb:Scan', 'dynamodb:UpdateItem', 'events:PutEvents', 'states:StartExecution']));
    // One call the bundle holds sits on a path the check never takes, and stays ungranted (least privilege): a
    // transaction (TransactWriteItems, authorized as PutItem and UpdateItem) only for a change into or out of
    // DELETED (the check moves READY to READY or DELETING: one UpdateItem).
    const neverTaken = ['dynamodb:PutItem'];
    expect(called.filter((action) => !granted.has(action))).toEqual(neverTaken);
    const of = (action: string) => allowed.filter((statement) => list(statement.Action).includes(action));
    expect(of('dynamodb:UpdateItem')).toEqual([expect.objectContaining({ Action: ['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:UpdateItem'], Resource: table })]);
    expect(of('states:StartExecution')).toEqual([expect.objectContaining({ Resource: `\${${logicalIdOf(stack.workflows.stateMachines.teardown)}}` })]);
    expect(of('events:PutEvents')).toEqual([
      expect.objectContaining({
        Resource: 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default',
        Condition: { StringEquals: { 'events:source': 'mfenv' } },
      }),
    ]);
    expect(of('batch:ListJobs')).toEqual([expect.objectContaining({ Action: 'batch:ListJobs', Resource: '*' })]);
    const foreign = [...granted].filter((action) => !/^(dynamodb:(Scan|GetItem|UpdateItem)|batch:ListJobs|states:StartExecution|events:PutEvents|logs:|xray:)/.test(action));
    expect(foreign).toEqual([]);
  });

  it('passes the AwsSolutions checks, with an acknowledgement only for what it needs', () => {
    // prepare
    const { stack } = synthesized;

    const path = stack.idleExpiry!.node.path;

    // act
    const report = new AwsSolutionsChecks(stack).validateScope(stack);
    const findings = report.violations.flatMap((violation) =>
      violation.violatingResources.map((resource) => `${violation.ruleName} @ ${(resource as { constructPath: string }).constructPath}`),
    );
    const own = acknowledgements(stack, 'mfenv').filter((acknowledgement) => acknowledgement.construct.node.path.startsWith(path));

    // assess
    expect(findings.filter((finding) => finding.includes(`@ ${path}/`))).toEqual([]);
    expect(own.map(({ rule }) => rule)).toEqual(['AwsSolutions-IAM5[Resource::*]']);
  });
});
