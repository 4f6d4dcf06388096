/**
 * Least privilege, as the template states it (DESIGN §7): each step Lambda and the API hold only their own
 * actions, on names under the prefix; roles can only be created with the permissions boundary; PassRole
 * only towards a named service; no wildcard actions.
 */
import { CONTEXT } from '../../infra/config';
import { SETTING } from '../../lambdas/core/settings';
import { STEP_FUNCTION_IDS, type StepFunctionId } from '../../lambdas/steps/catalogue';
import { API_FUNCTION, DESTRUCTIVE_STEPS, STEP_FUNCTIONS, UNINSTALL_GUARD_FUNCTION } from '../../lambdas/steps/catalogue';
import { actionsCalledBy } from './sources';
import { type Synthesized, logicalIdOf, readable, resourcesOfType, synthesize } from './synth';

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const list = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
const actionsOf = (statements: Statement[]) => statements.flatMap((statement) => list(statement.Action));

/** Every statement of every inline policy attached to a role, readable. */
function statementsOfRole(json: Synthesized['json'], roleId: string): Statement[] {
  return resourcesOfType(json, 'AWS::IAM::Policy')
    .filter(([, policy]) => policy.Properties!.Roles.some((role: { Ref: string }) => role.Ref === roleId))
    .flatMap(([, policy]) => readable(policy.Properties!.PolicyDocument.Statement) as Statement[]);
}

/** Every statement in the template: inline policies, managed policies and role-embedded policies. */
function allStatements(json: Synthesized['json']): Statement[] {
  return Object.values(json.Resources).flatMap((resource) => {
    const properties = resource.Properties ?? {};
    if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') return readable(properties.PolicyDocument.Statement);
    if (resource.Type === 'AWS::IAM::Role') return list(properties.Policies).flatMap((policy: any) => readable(policy.PolicyDocument.Statement));
    return [];
  });
}

describe('the permissions of the functions and state machines', () => {
  let synthesized: Synthesized;
  let roles: Record<StepFunctionId | 'api' | 'uninstallGuard', Statement[]>;
  let boundaryRef: string;
  beforeAll(() => {
    synthesized = synthesize();
    const { stack, json } = synthesized;
    roles = {
      ...(Object.fromEntries(
        STEP_FUNCTION_IDS.map((id) => [id, statementsOfRole(json, logicalIdOf(stack.workflows.stepFunctions[id].role))]),
      ) as Record<StepFunctionId, Statement[]>),
      api: statementsOfRole(json, logicalIdOf(stack.apiFunction.role)),
      uninstallGuard: statementsOfRole(json, logicalIdOf(stack.uninstallGuard.function.role)),
    };
    boundaryRef = `\${${resourcesOfType(json, 'AWS::IAM::ManagedPolicy')[0]![0]}}`;
  });

  it('attaches nothing to a person: no user or group in the template, and no step may create, version or attach a policy for one', () => {
    // prepare
    const { json } = synthesized;
    const reachesPeople = /^iam:(CreatePolicy|CreatePolicyVersion|SetDefaultPolicyVersion|(Attach|Detach|Put|Delete)(User|Group)Policy|AddUserToGroup|CreateUser|CreateGroup|CreateAccessKey|CreateLoginProfile|UpdateLoginProfile)$/;

    // act
    const people = Object.values(json.Resources).filter((resource) => /^AWS::IAM::(User|Group|UserToGroupAddition|AccessKey)$/.test(resource.Type));
    const policiesOnPeople = Object.values(json.Resources).filter(
      (resource) => /^AWS::IAM::(Managed)?Policy$/.test(resource.Type) && (resource.Properties?.Users || resource.Properties?.Groups),
    );
    const granted = Object.values(roles)
      .flat()
      .filter((statement) => statement.Effect === 'Allow')
      .flatMap((statement) => list(statement.Action))
      .filter((action) => reachesPeople.test(action));

    // assess
    expect(people).toEqual([]);
    expect(policiesOnPeople).toEqual([]);
    expect(granted).toEqual([]);
  });

  it('grants no wildcard action anywhere: no "*", no "iam:*", no "<service>:*"', () => {
    // prepare
    const { json } = synthesized;

    // act
    const allowed = actionsOf(allStatements(json).filter((statement) => statement.Effect === 'Allow'));

    // assess
    expect(allowed.length).toBeGreaterThan(20);
    expect(allowed.filter((action) => action === '*' || /^[a-z0-9-]+:\*$/.test(action))).toEqual([]);
  });

  it('lets a role be created, or its permissions changed, only with the permissions boundary attached', () => {
    // prepare
    const { json } = synthesized;
    const guarded = ['iam:CreateRole', 'iam:PutRolePermissionsBoundary', 'iam:PutRolePolicy', 'iam:UpdateAssumeRolePolicy', 'iam:AttachRolePolicy'];

    // act
    const allows = allStatements(json).filter(
      (statement) => statement.Effect === 'Allow' && list(statement.Action).some((action) => guarded.includes(action)),
    );

    // assess: only the IAM and scheduling steps hold them, always under the condition
    expect(allows.length).toBeGreaterThan(0);
    for (const statement of allows) {
      expect(statement.Condition?.StringEquals?.['iam:PermissionsBoundary']).toBe(boundaryRef);
      expect([...roles.iam, ...roles.scheduling]).toContainEqual(statement);
    }
    // The scheduling steps create their two roles only.
    const scheduling = allows.filter((statement) => roles.scheduling.some((own) => JSON.stringify(own) === JSON.stringify(statement)));
    expect(scheduling.flatMap((statement) => list(statement.Resource)).sort()).toEqual(
      ['arn:${AWS::Partition}:iam::${AWS::AccountId}:role/mfenv/mfenv-*-events', 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/mfenv/mfenv-*-sfn'],
    );
    // No managed policy is attached to any environment role: every permission is an inline policy mfenv writes.
    expect(allows.filter((statement) => list(statement.Action).includes('iam:AttachRolePolicy'))).toEqual([]);
  });

  it('forbids the IAM steps to remove a boundary, swap it, change the boundary policy, or retag a role of an environment', () => {
    // prepare
    const denies = roles.iam.filter((statement) => statement.Effect === 'Deny');

    // act
    const denied = (action: string) => denies.filter((statement) => list(statement.Action).includes(action));

    // assess
    expect(denied('iam:DeleteRolePermissionsBoundary')).toEqual([expect.objectContaining({ Resource: '*' })]);
    expect(denied('iam:PutRolePermissionsBoundary')).toEqual([
      expect.objectContaining({ Resource: '*', Condition: { StringNotEquals: { 'iam:PermissionsBoundary': boundaryRef } } }),
    ]);
    for (const action of ['iam:CreatePolicyVersion', 'iam:DeletePolicy', 'iam:SetDefaultPolicyVersion']) {
      expect(denied(action)).toEqual([expect.objectContaining({ Resource: boundaryRef })]);
    }
    // The boundary scopes a role by its tags: a role that carries them can never be retagged.
    for (const action of ['iam:TagRole', 'iam:UntagRole']) {
      expect(denied(action)).toEqual([
        expect.objectContaining({ Resource: '*', Condition: { Null: { 'aws:ResourceTag/mfenv:environment': 'false' } } }),
      ]);
    }
  });

  it('lets roles be passed only to a named service', () => {
    // prepare
    const { json } = synthesized;

    // act
    const passRole = allStatements(json).filter((statement) => statement.Effect === 'Allow' && list(statement.Action).includes('iam:PassRole'));

    // assess
    expect(passRole.length).toBeGreaterThan(0);
    for (const statement of passRole) {
      expect(list(statement.Action)).toEqual(['iam:PassRole']);
      expect(statement.Condition?.StringEquals?.['iam:PassedToService']).toMatch(/^(ec2|batch|ecs-tasks|states|events)\.amazonaws\.com$/);
      expect(list(statement.Resource)).not.toContain('*');
    }
    // The instance role goes to EC2 only; no role goes to Batch unless the deployment names a service role.
    const toEc2 = passRole.filter((statement) => statement.Condition!.StringEquals!['iam:PassedToService'] === 'ec2.amazonaws.com');
    expect(toEc2.flatMap((statement) => list(statement.Resource))).toEqual(
      expect.arrayContaining(['arn:${AWS::Partition}:iam::${AWS::AccountId}:role/mfenv/mfenv-*-instance']),
    );
    for (const resource of toEc2.flatMap((statement) => list(statement.Resource))) expect(resource).toMatch(/:role\/mfenv\/mfenv-\*-instance$/);
    const toBatch = passRole.filter((statement) => statement.Condition!.StringEquals!['iam:PassedToService'] === 'batch.amazonaws.com');
    expect(toBatch).toEqual([]);
    // Job roles go to ECS tasks, passed by the Metaflow client through an access role: only the boundary (the
    // ceiling of every environment role) mentions it, and no step function may do it.
    const toEcsTasks = passRole.filter((statement) => statement.Condition!.StringEquals!['iam:PassedToService'] === 'ecs-tasks.amazonaws.com');
    expect(toEcsTasks.map((statement) => statement.Sid)).toEqual(['MetaflowClientPassOwnJobRole']);
    for (const resource of toEcsTasks.flatMap((statement) => list(statement.Resource))) expect(resource).toMatch(/:role\/mfenv\/mfenv-\$\{aws:PrincipalTag\/mfenv:environment\}-job$/);
    const stepStatements = Object.values(roles).flat();
    expect(stepStatements.filter((statement) => list(statement.Action).includes('iam:PassRole')).map((s) => s.Condition?.StringEquals?.['iam:PassedToService'])).not.toContain(
      'ecs-tasks.amazonaws.com',
    );
    // Scheduled flows: the Step Functions role to Step Functions, the events role to EventBridge, by the Metaflow
    // client through an access role; again only the boundary mentions them, and no step function passes either.
    for (const [service, suffix] of [
      ['states.amazonaws.com', 'sfn'],
      ['events.amazonaws.com', 'events'],
    ] as const) {
      const passed = passRole.filter((statement) => statement.Condition!.StringEquals!['iam:PassedToService'] === service);
      expect(passed.flatMap((statement) => list(statement.Resource))).toEqual([`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/mfenv/mfenv-\${aws:PrincipalTag/mfenv:environment}-${suffix}`]);
      expect(stepStatements.filter((statement) => list(statement.Action).includes('iam:PassRole')).map((s) => s.Condition?.StringEquals?.['iam:PassedToService'])).not.toContain(service);
    }
  });

  it("names no Batch service role by default: the batch function may create Batch's service-linked role, and only that", () => {
    // prepare
    const { stack, json } = synthesized;

    // act
    const creates = allStatements(json).filter(
      (statement) => statement.Effect === 'Allow' && list(statement.Action).includes('iam:CreateServiceLinkedRole'),
    );
    const variables = json.Resources[logicalIdOf(stack.workflows.stepFunctions.batch)]!.Properties!.Environment.Variables;

    // assess
    expect(creates).toEqual([
      expect.objectContaining({
        Action: 'iam:CreateServiceLinkedRole',
        Resource: 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/batch.amazonaws.com/*',
        Condition: { StringEquals: { 'iam:AWSServiceName': 'batch.amazonaws.com' } },
      }),
    ]);
    expect(roles.batch).toContainEqual(creates[0]);
    expect(variables).not.toHaveProperty(SETTING.batchServiceRoleArn);
  });

  it.each([
    // Status changes go out as EventBridge events (lambdas/core/events.ts): PutEvents, nothing else of EventBridge.
    ['registry', /^((dynamodb|states|logs|xray):|events:PutEvents$)/],
    // Every step that deletes reads the environment's record first (teardown-guard.ts): GetItem, nothing more.
    ['bucket', /^(s3:|logs:|xray:|dynamodb:GetItem$)/],
    // The IAM steps also read one Batch fact: the ECS cluster of a compute environment (scopeInstanceRole).
    ['iam', /^(iam:|logs:|xray:|dynamodb:GetItem$|batch:DescribeComputeEnvironments$)/],
    ['batch', /^(batch|iam:(PassRole|CreateServiceLinkedRole)$|ec2:Describe|logs|xray|dynamodb:GetItem$)/],
    // Subnets in the shared VPC, and the registry items of address blocks (Get/Put/Delete, on NETWORK# keys only).
    ['network', /^(ec2:|logs:|xray:|dynamodb:(GetItem|PutItem|DeleteItem)$)/],
    // Scheduled flows: two roles, the foreach table, and what Metaflow made (state machines, rules, job definitions).
    [
      'scheduling',
      /^(iam:|logs:|xray:|dynamodb:(GetItem|CreateTable|DescribeTable|DeleteTable|DescribeTimeToLive|UpdateTimeToLive|TagResource|ListTagsOfResource)$|states:(ListStateMachines|ListExecutions|StopExecution|DeleteStateMachine)$|events:(ListRules|ListTargetsByRule|RemoveTargets|DeleteRule)$|batch:(DescribeJobDefinitions|DeregisterJobDefinition)$)/,
    ],
    // Preflight of a create (lambdas/core/preflight.ts) reads Spot quotas, the region's offerings and subnets, and counts Batch objects.
    ['api', /^((dynamodb|states|logs|xray):|events:PutEvents$|servicequotas:Get(ServiceQuota|AWSDefaultServiceQuota)$|ec2:Describe(InstanceTypeOfferings|Subnets)$|batch:Describe(ComputeEnvironments|JobQueues)$)/],
  ] as const)('keeps the %s function to its own services', (id, allowed) => {
    // prepare
    const statements = roles[id].filter((statement) => statement.Effect === 'Allow');

    // act
    const foreign = actionsOf(statements).filter((action) => !allowed.test(action));

    // assess
    expect(statements.length).toBeGreaterThan(0);
    expect(foreign).toEqual([]);
  });

  it('lets every step function that deletes read any environment record, unconditioned (the teardown guard reads ENV#<name>)', () => {
    // prepare
    const deleting = STEP_FUNCTION_IDS.filter((id) => (STEP_FUNCTIONS[id].steps as readonly string[]).some((step) => DESTRUCTIVE_STEPS.includes(step)));

    // act
    const readers = deleting.filter((id) =>
      roles[id].some(
        (statement) => statement.Effect === 'Allow' && list(statement.Action).includes('dynamodb:GetItem') && statement.Condition === undefined,
      ),
    );

    // assess
    expect(deleting.length).toBeGreaterThan(3);
    expect(readers).toEqual(deleting);
  });

  it('keeps every S3, IAM and Batch resource of the step functions under the mfenv prefix', () => {
    // prepare
    const resources = (['bucket', 'iam', 'batch', 'scheduling'] as const).flatMap((id) =>
      roles[id].filter((statement) => statement.Effect === 'Allow').flatMap((statement) => list(statement.Resource)),
    );

    // act
    const outside = resources.filter(
      (resource) =>
        resource !== '*' &&
        !resource.startsWith('${') && // this stack's own log groups
        !/^arn:\$\{AWS::Partition\}:s3:::mfenv-\*(\/\*)?$/.test(resource) &&
        !/:(role|instance-profile)\/mfenv\/mfenv-\*-(job|instance|access|sfn|events)$/.test(resource) &&
        !/:dynamodb:\$\{AWS::Region\}:\$\{AWS::AccountId\}:table\/mfenv-\*-sfn$/.test(resource) &&
        !/:(states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(stateMachine|execution):|events:\$\{AWS::Region\}:\$\{AWS::AccountId\}:rule\/)mfenv-\*_\*(:\*)?$/.test(resource) &&
        !/:batch:\$\{AWS::Region\}:\$\{AWS::AccountId\}:job-definition\/metaflow_\*$/.test(resource) &&
        !/:batch:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(compute-environment|job-queue)\/mfenv-\*$/.test(resource) &&
        !resource.includes(':role/aws-service-role/batch.amazonaws.com/'),
    );

    // assess
    expect(resources.length).toBeGreaterThan(10);
    expect(outside).toEqual([]);
  });

  it('allows * resources only for actions that support nothing narrower, or under a narrowing condition', () => {
    // prepare
    const narrowable = (statement: Statement) =>
      list(statement.Action).filter((action) => !/^(xray:|ec2:Describe|batch:Describe|states:ListStateMachines$|events:ListRules$|servicequotas:Get(ServiceQuota|AWSDefaultServiceQuota)$|logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups))/.test(action));

    // act
    const unconditionedStar = Object.values(roles)
      .flat()
      .filter((statement) => statement.Effect === 'Allow' && list(statement.Resource).includes('*') && !statement.Condition)
      .flatMap(narrowable);

    // assess
    expect(unconditionedStar).toEqual([]);
  });

  it('gives the registry steps single-record access and the teardown only; the API also lists by owner', () => {
    // prepare
    const { stack } = synthesized;
    const table = `\${${logicalIdOf(stack.node.findChild('Registry'))}.Arn}`;

    // act
    const dynamo = (id: 'registry' | 'api') => roles[id].filter((statement) => list(statement.Action).some((action) => action.startsWith('dynamodb:')));
    const starts = (id: 'registry' | 'api') =>
      roles[id].filter((statement) => list(statement.Action).includes('states:StartExecution')).flatMap((statement) => list(statement.Resource));

    // assess
    expect(dynamo('registry')).toEqual([
      expect.objectContaining({ Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], Resource: table }),
    ]);
    expect(actionsOf(dynamo('api')).sort()).toEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:UpdateItem']);
    expect(dynamo('api').find((statement) => list(statement.Action).includes('dynamodb:Query'))!.Resource).toBe(`${table}/index/byOwner`);
    expect(starts('registry')).toEqual(['arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:mfenv-teardown']);
    expect(starts('api').sort()).toEqual(
      [
        `\${${logicalIdOf(stack.workflows.stateMachines.provision)}}`,
        `\${${logicalIdOf(stack.workflows.stateMachines.teardown)}}`,
        `\${${logicalIdOf(stack.workflows.stateMachines.update)}}`,
      ].sort(),
    );
  });

  it.each([...STEP_FUNCTION_IDS, 'api' as const, 'uninstallGuard' as const])('allows the %s function every AWS call its code makes', async (id) => {
    // prepare
    const entry = id === 'api' ? API_FUNCTION.entry : id === 'uninstallGuard' ? UNINSTALL_GUARD_FUNCTION.entry : STEP_FUNCTIONS[id].entry;
    const allowed = new Set(actionsOf(roles[id].filter((statement) => statement.Effect === 'Allow')));

    // act
    const called = await actionsCalledBy(entry);

    // assess
    expect(called.length).toBeGreaterThan(0);
    expect(called.filter((action) => !allowed.has(action))).toEqual([]);
  });

  it('gives every function its own role, trusted by Lambda only and without managed policies', () => {
    // prepare
    const { stack, json } = synthesized;
    const functions = [...STEP_FUNCTION_IDS.map((id) => stack.workflows.stepFunctions[id]), stack.apiFunction];

    // act
    const roleIds = functions.map((fn) => logicalIdOf(fn.role));

    // assess
    expect(new Set(roleIds).size).toBe(functions.length);
    for (const roleId of roleIds) {
      const role = json.Resources[roleId]!.Properties!;
      expect(role.ManagedPolicyArns).toBeUndefined();
      expect(role.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
      ]);
    }
  });
});

describe('the functions of a deployment that names its Batch service role', () => {
  it('tell the batch function the role, let it pass that role to Batch only, and create no service-linked role', () => {
    // prepare
    const serviceRoleArn = 'arn:aws:iam::123456789012:role/service-role/team-batch';

    // act
    const { stack, json } = synthesize({ [CONTEXT.batchServiceRoleArn]: serviceRoleArn });

    // assess
    const batch = statementsOfRole(json, logicalIdOf(stack.workflows.stepFunctions.batch.role));
    const variables = json.Resources[logicalIdOf(stack.workflows.stepFunctions.batch)]!.Properties!.Environment.Variables;
    expect(variables[SETTING.batchServiceRoleArn]).toBe(serviceRoleArn);
    const toBatch = allStatements(json).filter(
      (statement) => statement.Effect === 'Allow' && statement.Condition?.StringEquals?.['iam:PassedToService'] === 'batch.amazonaws.com',
    );
    expect(toBatch).toEqual([expect.objectContaining({ Action: 'iam:PassRole', Resource: serviceRoleArn })]);
    expect(batch).toContainEqual(toBatch[0]);
    expect(actionsOf(allStatements(json))).not.toContain('iam:CreateServiceLinkedRole');
  });
});

describe('the permissions of another prefix', () => {
  it('follow the prefix: names and IAM path', () => {
    // prepare
    const prefix = 'ds';

    // act
    const { json } = synthesize({ [CONTEXT.prefix]: prefix });

    // assess
    const resources = allStatements(json)
      .filter((statement) => statement.Effect === 'Allow')
      .flatMap((statement) => list(statement.Resource));
    expect(resources).toContain('arn:${AWS::Partition}:s3:::ds-*');
    expect(resources).toContain('arn:${AWS::Partition}:iam::${AWS::AccountId}:role/ds/ds-*-job');
    expect(resources).toContain('arn:${AWS::Partition}:batch:${AWS::Region}:${AWS::AccountId}:job-queue/ds-*');
    // (the stack keeps its own name, mfenv, for its state machines: only the prefix changed)
    expect(resources.filter((resource) => resource.includes('mfenv-*') || resource.includes('/mfenv/'))).toEqual([]);
  });
});
