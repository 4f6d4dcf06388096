/**
 * The HTTP API as API Gateway will run it: the routes of DESIGN §4, IAM auth on each, the account-only
 * resource policy, logging and tracing, the POST body model, and RFC 9457 answers for API Gateway's own errors.
 */
import { z } from 'zod';
import { API_STAGE, API_THROTTLING, GATEWAY_PROBLEMS, createRequestJsonSchema, problemTemplate, updateRequestJsonSchema } from '../../infra/api';
import { problemTypeOf } from '../../lambdas/api/http';
import { CONTEXT } from '../../infra/config';
import { LOG_RETENTION } from '../../infra/functions';
import { createRequestSchema } from '../../lambdas/core/environment';
import { type Caller, type Decision, asIdentityCenterSession, asRoleSession, asUser, simulate } from '../support/iam-simulator';
import { type Synthesized, logicalIdOf, readable, resourcesOfType, synthesize } from './synth';

type Resources = Synthesized['json']['Resources'];

const ACCOUNT = '123456789012';
const API_ARN = `arn:aws:execute-api:us-east-1:${ACCOUNT}:a1b2c3d4e5`;

/**
 * The API's resource policy as API Gateway applies it: the stack's pseudo parameters filled in, and
 * `execute-api:/*` expanded to the API's own ARN (API Gateway does that when it stores the policy).
 */
function apiResourcePolicy(json: Synthesized['json']): any {
  const [, restApi] = resourcesOfType(json, 'AWS::ApiGateway::RestApi')[0]!;
  const text = JSON.stringify(readable(restApi.Properties!.Policy))
    .replaceAll('${AWS::AccountId}', ACCOUNT)
    .replaceAll('${AWS::Partition}', 'aws')
    .replaceAll('"execute-api:/*"', `"${API_ARN}/*"`);
  return JSON.parse(text);
}

/** `METHOD /path` of every API Gateway method, from the resource tree. */
function routesOf(resources: Resources): Map<string, Record<string, any>> {
  const paths = new Map<string, string>();
  const pathOf = (ref: unknown): string => {
    if (typeof ref === 'object' && ref && 'Fn::GetAtt' in ref) return ''; // the root resource
    const id = (ref as { Ref: string }).Ref;
    if (!paths.has(id)) {
      const resource = resources[id]!.Properties!;
      paths.set(id, `${pathOf(resource.ParentId)}/${resource.PathPart}`);
    }
    return paths.get(id)!;
  };
  const routes = new Map<string, Record<string, any>>();
  for (const [, method] of Object.entries(resources).filter(([, r]) => r.Type === 'AWS::ApiGateway::Method')) {
    const properties = method.Properties!;
    routes.set(`${properties.HttpMethod} ${pathOf(properties.ResourceId) || '/'}`, properties);
  }
  return routes;
}

/**
 * A value with everything that breaks JSON when put in raw: quotes (as in API Gateway's validator texts,
 * `instance type (string) does not match any allowed primitive type (allowed: ["integer"])`), a backslash,
 * a newline (as in its signature-mismatch message).
 */
const HOSTILE = 'instance value ("Alice") not found in enum; \\d+ expected\nThe Canonical String was \'POST\'';

/**
 * A gateway response body with every `$context` variable filled in as API Gateway does: as it is, without
 * escaping, except the `...String` variables, which API Gateway writes as a quoted, escaped JSON string.
 * Every variable gets the hostile value, so only a template that is JSON whatever the variables hold parses.
 */
function renderProblem(template: string): Record<string, unknown> {
  const rendered = template.replace(/\$context\.[A-Za-z.]+/g, (variable) => (variable.endsWith('String') ? JSON.stringify(HOSTILE) : HOSTILE));
  return JSON.parse(rendered);
}

describe('the API', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize();
  });

  it('serves exactly the routes of the contract', () => {
    // prepare
    const { json } = synthesized;

    // act
    const routes = [...routesOf(json.Resources).keys()].sort();

    // assess
    expect(routes).toEqual(
      [
        'GET /environments',
        'POST /environments',
        'GET /environments/{name}',
        'PATCH /environments/{name}',
        'DELETE /environments/{name}',
        'GET /environments/{name}/config',
      ].sort(),
    );
  });

  it('requires SigV4 (AWS_IAM) on every method', () => {
    // prepare
    const { json } = synthesized;

    // act
    const methods = resourcesOfType(json, 'AWS::ApiGateway::Method').map(([, method]) => method.Properties!);

    // assess
    expect(methods.length).toBeGreaterThan(0);
    for (const method of methods.filter((m) => m.HttpMethod !== 'OPTIONS')) {
      expect(method.AuthorizationType).toBe('AWS_IAM');
    }
    expect(methods.some((m) => m.HttpMethod === 'OPTIONS')).toBe(false);
  });

  it('sends every route to the one API Lambda as a proxy integration', () => {
    // prepare
    const { json, stack } = synthesized;
    const apiFunction = logicalIdOf(stack.apiFunction);

    // act
    const integrations = [...routesOf(json.Resources).values()].map((method) => readable(method.Integration));

    // assess
    for (const integration of integrations) {
      expect(integration.Type).toBe('AWS_PROXY');
      expect(integration.Uri).toContain(`/functions/\${${apiFunction}.Arn}/invocations`);
    }
    const permissions = resourcesOfType(json, 'AWS::Lambda::Permission').map(([, p]) => readable(p.Properties));
    expect(permissions).toHaveLength(integrations.length);
    for (const permission of permissions) {
      expect(permission.Principal).toBe('apigateway.amazonaws.com');
      // Only through the deployed stage, never the console's test-invoke.
      expect(permission.SourceArn).toMatch(/\/\$\{HttpApiDeploymentStage\w+\}\/(GET|POST|PATCH|DELETE)\/environments/);
    }
  });

  it('admits every principal of its own account by name (no account root), and denies everyone else explicitly', () => {
    // prepare
    const { json } = synthesized;

    // act
    const statements = apiResourcePolicy(json).Statement;

    // assess
    expect(statements.map((statement: { Sid: string; Effect: string }) => `${statement.Sid}:${statement.Effect}`)).toEqual([
      'ThisAccount:Allow',
      'NobodyElse:Deny',
    ]);
    expect(statements[0]).toMatchObject({ Principal: { AWS: '*' }, Condition: { StringEquals: { 'aws:PrincipalAccount': ACCOUNT } } });
    expect(JSON.stringify(statements)).not.toContain(':root');
  });

  describe('who may call, evaluated offline as API Gateway evaluates its resource policy', () => {
    const alice = asUser({ accountId: ACCOUNT, name: 'alice', uniqueId: 'AIDAALICE0000000001' });
    const carol = asIdentityCenterSession({
      accountId: ACCOUNT,
      permissionSet: 'DataScience',
      suffix: '0123456789abcdef',
      userName: 'carol@example.com',
      roleUniqueId: 'AROASSO000000000001',
    });
    const ops = asRoleSession({ accountId: ACCOUNT, name: 'PlatformAdmin', uniqueId: 'AROAADMIN0000000001', session: 'ops' });
    const outsider = asUser({ accountId: '210987654321', name: 'mallory', uniqueId: 'AIDAMALLORY00000001' });
    const invokeAnything = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:Invoke', Resource: '*' }] };
    const narrowed = synthesize({
      [CONTEXT.admins]: [`arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`],
      [CONTEXT.callerPrincipalArns]: [
        `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_DataScience_*`,
        `arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`,
      ],
    }).json;
    const tagged = synthesize({ [CONTEXT.callerPrincipalTag]: 'team=data-science' }).json;
    const withTag = (caller: Caller, value: string): Caller => ({ ...caller, context: { ...caller.context, 'aws:PrincipalTag/team': value } });

    it.each<[string, () => Synthesized['json'], Caller, object | undefined, Decision]>([
      ['alice, an IAM user of the account with no policy of her own', () => synthesized.json, alice, undefined, 'Allowed'],
      ['carol, an Identity Center session with no policy of her own', () => synthesized.json, carol, undefined, 'Allowed'],
      ['an outsider whose own policy allows execute-api:Invoke on *', () => synthesized.json, outsider, invokeAnything, 'ExplicitlyDenied'],
      ['alice, when the deployment admits Identity Center sessions of DataScience only', () => narrowed, alice, undefined, 'ExplicitlyDenied'],
      ['alice with her own invoke policy, when narrowed the same way', () => narrowed, alice, invokeAnything, 'ExplicitlyDenied'],
      ['carol, when the deployment admits Identity Center sessions of DataScience', () => narrowed, carol, undefined, 'Allowed'],
      ['an admin role session, when its role is among the patterns', () => narrowed, ops, undefined, 'Allowed'],
      ['alice tagged team=data-science, when that tag is required', () => tagged, withTag(alice, 'data-science'), undefined, 'Allowed'],
      ['alice tagged team=marketing, when team=data-science is required', () => tagged, withTag(alice, 'marketing'), undefined, 'ExplicitlyDenied'],
      ['carol without the tag, when it is required', () => tagged, carol, undefined, 'ExplicitlyDenied'],
    ])('%s → %s', async (_who, template, caller, identity, expected) => {
      // act
      const decision = await simulate({
        resourcePolicy: apiResourcePolicy(template()),
        identity,
        action: 'execute-api:Invoke',
        principal: caller.principal,
        resource: `${API_ARN}/v1/POST/environments`,
        context: caller.context,
      });
      // assess
      expect(decision).toBe(expected);
    });
  });

  it('logs every request as JSON to a log group with retention, traces with X-Ray and throttles the stage', () => {
    // prepare
    const { json } = synthesized;

    // act
    const stages = resourcesOfType(json, 'AWS::ApiGateway::Stage');

    // assess
    expect(stages).toHaveLength(1);
    const stage = stages[0]![1].Properties!;
    expect(stage.StageName).toBe(API_STAGE);
    expect(stage.TracingEnabled).toBe(true);
    const logGroupId = stage.AccessLogSetting.DestinationArn['Fn::GetAtt'][0];
    expect(json.Resources[logGroupId]!.Type).toBe('AWS::Logs::LogGroup');
    expect(json.Resources[logGroupId]!.Properties!.RetentionInDays).toBe(LOG_RETENTION);
    const line = JSON.parse(stage.AccessLogSetting.Format);
    expect(line).toMatchObject({ requestId: '$context.requestId', status: '$context.status', userArn: '$context.identity.userArn' });
    expect(stage.MethodSettings).toEqual([
      expect.objectContaining({
        HttpMethod: '*',
        ResourcePath: '/*',
        LoggingLevel: 'ERROR',
        DataTraceEnabled: false,
        ThrottlingRateLimit: API_THROTTLING.rateLimit,
        ThrottlingBurstLimit: API_THROTTLING.burstLimit,
      }),
    ]);
  });

  it('validates the POST body against the create-request model, and the name path parameter everywhere', () => {
    // prepare
    const { json } = synthesized;
    const routes = routesOf(json.Resources);

    // act
    const post = routes.get('POST /environments')!;
    const validatorOf = (method: Record<string, any>) => json.Resources[method.RequestValidatorId.Ref]!.Properties!;

    // assess
    expect(validatorOf(post)).toMatchObject({ ValidateRequestBody: true, ValidateRequestParameters: true });
    const model = json.Resources[post.RequestModels['application/json'].Ref]!.Properties!;
    expect(model.ContentType).toBe('application/json');
    expect(model.Schema).toEqual(createRequestJsonSchema(64));
    for (const route of ['GET /environments/{name}', 'PATCH /environments/{name}', 'DELETE /environments/{name}', 'GET /environments/{name}/config']) {
      const method = routes.get(route)!;
      expect(method.RequestParameters['method.request.path.name']).toBe(true);
      expect(validatorOf(method)).toMatchObject({ ValidateRequestParameters: true });
    }
    // PATCH's body is checked against the update request's model, at least one field, before the Lambda runs.
    const patch = routes.get('PATCH /environments/{name}')!;
    expect(validatorOf(patch)).toMatchObject({ ValidateRequestBody: true });
    expect(patch.RequestParameters['method.request.header.Idempotency-Key']).toBe(false);
    const updateModel = json.Resources[patch.RequestModels['application/json'].Ref]!.Properties!;
    expect(updateModel.Schema).toEqual(updateRequestJsonSchema(64));
    expect(updateModel.Schema).toMatchObject({ minProperties: 1, additionalProperties: false, title: 'UpdateEnvironmentRequest' });
  });

  it('answers API Gateway errors (the 4XX and 5XX defaults included) as RFC 9457 problem documents', () => {
    // prepare
    const { json } = synthesized;

    // act
    const responses = resourcesOfType(json, 'AWS::ApiGateway::GatewayResponse').map(([, r]) => r.Properties!);

    // assess
    const types = responses.map((response) => response.ResponseType);
    expect(types).toEqual(expect.arrayContaining(['DEFAULT_4XX', 'DEFAULT_5XX', 'BAD_REQUEST_BODY', 'MISSING_AUTHENTICATION_TOKEN', 'ACCESS_DENIED']));
    expect(responses).toHaveLength(GATEWAY_PROBLEMS.length);
    for (const response of responses) {
      expect(response.ResponseParameters['gatewayresponse.header.Content-Type']).toBe("'application/problem+json'");
      const problem = renderProblem(response.ResponseTemplates['application/json']);
      expect(problem).toMatchObject({
        type: expect.stringMatching(/^urn:mfenv:problem:[a-z]+(-[a-z]+)*$/),
        title: expect.any(String),
        detail: expect.any(String),
        gatewayMessage: HOSTILE,
      });
      expect((problem.detail as string).length).toBeGreaterThan(40);
      if (response.StatusCode) expect(problem.status).toBe(Number(response.StatusCode));
      else expect(response.ResponseType).toMatch(/^DEFAULT_/);
    }
    // The same situations the API Lambda also answers carry the same problem type.
    const typeOf = (responseType: string) =>
      renderProblem(responses.find((response) => response.ResponseType === responseType)!.ResponseTemplates['application/json']).type;
    expect(typeOf('BAD_REQUEST_BODY')).toBe(problemTypeOf('ValidationError'));
    expect(typeOf('ACCESS_DENIED')).toBe(problemTypeOf('ForbiddenError'));
    expect(typeOf('UNSUPPORTED_MEDIA_TYPE')).toBe(problemTypeOf('UnsupportedMediaTypeError'));
  });

  it('keeps every gateway response valid JSON whatever API Gateway puts in its variables, quotes and newlines included', () => {
    // prepare
    const templates = GATEWAY_PROBLEMS.map((problem) => ({ type: problem.type.responseType, template: problemTemplate(problem) }));
    const leaky = problemTemplate(GATEWAY_PROBLEMS[0]!).replace('"title":"', '"title":"$context.error.validationErrorString ');

    // act
    const rendered = templates.map(({ type, template }) => {
      try {
        return { type, parsed: renderProblem(template) !== undefined };
      } catch (error) {
        return { type, parsed: false, error: String(error) };
      }
    });

    // assess
    expect(rendered).toEqual(templates.map(({ type }) => ({ type, parsed: true })));
    // ... which this check would notice: a raw variable inside a JSON string does not survive it.
    expect(() => renderProblem(leaky)).toThrow(SyntaxError);
  });
});

describe('the create-request model', () => {
  it('is the zod request schema, with the deployment ceiling and unknown fields refused', () => {
    // prepare
    const ceiling = 128;

    // act
    const { json } = synthesize({ [CONTEXT.maxVcpusCeiling]: ceiling });

    // assess
    const [, model] = resourcesOfType(json, 'AWS::ApiGateway::Model')[0]!;
    const schema = model.Properties!.Schema;
    expect(schema).toEqual({
      ...z.toJSONSchema(createRequestSchema(ceiling), { target: 'draft-4', io: 'input' }),
      title: 'CreateEnvironmentRequest',
    });
    expect(schema.$schema).toBe('http://json-schema.org/draft-04/schema#');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['name']);
    expect(schema.properties.maxVcpus).toMatchObject({ type: 'integer', minimum: 1, maximum: ceiling });
    expect(Object.keys(schema.properties).sort()).toEqual(['gpu', 'maxVcpus', 'name', 'owner', 'scheduling']);
  });
});

describe('the API of an organisation', () => {
  it('also admits principals of the organisation, and denies whoever is in neither', () => {
    // prepare
    const organizationId = 'o-abcd123456';

    // act
    const { json } = synthesize({ [CONTEXT.organizationId]: organizationId });

    // assess
    const [, restApi] = resourcesOfType(json, 'AWS::ApiGateway::RestApi')[0]!;
    const statements = readable(restApi.Properties!.Policy.Statement);
    expect(statements).toContainEqual({
      Sid: 'ThisOrganization',
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: 'execute-api:Invoke',
      Resource: 'execute-api:/*',
      Condition: { StringEquals: { 'aws:PrincipalOrgID': organizationId } },
    });
    expect(statements.find((statement: { Sid: string }) => statement.Sid === 'NobodyElse').Condition).toEqual({
      StringNotEquals: { 'aws:PrincipalAccount': '${AWS::AccountId}', 'aws:PrincipalOrgID': organizationId },
    });
  });
});
