/**
 * The teammates' HTTP API (DESIGN §4): API Gateway REST, every method signed with SigV4 (AWS_IAM), a
 * resource policy admitting only this account (and optionally its organisation), one Lambda behind every
 * route. The POST body is checked against a model generated from the same zod schema the Lambda parses
 * with, and every answer API Gateway gives on its own (bad body, unsigned, throttled...) is an RFC 9457
 * problem document like the Lambda's.
 */
import { Aws, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { z } from 'zod';
import { problemTypeOf } from '../lambdas/api/http';
import { createRequestSchema, updateRequestSchema } from '../lambdas/core/environment';
import { LOG_RETENTION } from './functions';

export interface ApiProps {
  handler: lambda.IFunction;
  maxVcpusCeiling: number;
  organizationId?: string;
  /** Who may call, narrowed: principal ARN patterns (aws:PrincipalArn, ArnLike) and/or one principal tag. */
  callers?: CallerRestriction;
}

/** Deploy-time narrowing of who may call the API (infra/config.ts: mfenv:callerPrincipalArns, mfenv:callerPrincipalTag). */
export interface CallerRestriction {
  principalArnPatterns?: string[];
  principalTag?: { key: string; value: string };
}

/** Stage of the deployed API; part of the URL (`https://<id>.execute-api.<region>.amazonaws.com/v1/environments`). */
export const API_STAGE = 'v1';

/** Per-stage limits for the whole team: generous for people, a brake for a runaway script. */
export const API_THROTTLING = { rateLimit: 25, burstLimit: 50 };

/** The JSON schema (draft 4, what API Gateway models speak) of POST /environments, from the zod schema. */
export function createRequestJsonSchema(maxVcpusCeiling: number): Record<string, unknown> {
  const schema = z.toJSONSchema(createRequestSchema(maxVcpusCeiling), { target: 'draft-4', io: 'input' }) as Record<string, unknown>;
  return { ...schema, title: 'CreateEnvironmentRequest' };
}

/** The JSON schema (draft 4) of PATCH /environments/{name}, from the zod schema. */
export function updateRequestJsonSchema(maxVcpusCeiling: number): Record<string, unknown> {
  const schema = z.toJSONSchema(updateRequestSchema(maxVcpusCeiling), { target: 'draft-4', io: 'input' }) as Record<string, unknown>;
  return { ...schema, title: 'UpdateEnvironmentRequest' };
}

/** One API Gateway-generated answer, rewritten as an RFC 9457 problem. */
export interface GatewayProblem {
  type: apigateway.ResponseType;
  /**
   * Names the problem `type` (urn:mfenv:problem:..., as problemTypeOf makes it): the name of the API's own
   * error for the same situation where there is one, so a client branches the same way on both.
   */
  errorName: string;
  /** The HTTP status API Gateway uses for it; unknown for the DEFAULT_* catch-alls, so left out there. */
  status?: number;
  title: string;
  /** A sentence the caller can act on. */
  detail: string;
  retryAfterSeconds?: number;
}

export const GATEWAY_PROBLEMS: GatewayProblem[] = [
  {
    type: apigateway.ResponseType.BAD_REQUEST_BODY,
    errorName: 'ValidationError',
    status: 400,
    title: 'The request is not valid',
    detail:
      'The body is not a valid environment request: send a JSON object with "name" (3 to 32 lower-case letters, digits or hyphens) and optionally "maxVcpus", "gpu" and "owner", nothing else.',
  },
  {
    type: apigateway.ResponseType.BAD_REQUEST_PARAMETERS,
    errorName: 'ValidationError',
    status: 400,
    title: 'The request is not valid',
    detail: 'A required path or query parameter is missing: use /environments/{name} with an environment name.',
  },
  {
    type: apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    errorName: 'UnauthenticatedError',
    status: 403,
    title: 'Not signed, or no such route',
    detail:
      'The request is not signed, or this API has no such route: sign it with AWS Signature Version 4 (service execute-api) and use /environments, /environments/{name} or /environments/{name}/config.',
  },
  {
    type: apigateway.ResponseType.INVALID_SIGNATURE,
    errorName: 'UnauthenticatedError',
    status: 403,
    title: 'The signature does not match',
    detail:
      "The request signature does not match: sign with AWS Signature Version 4 for service execute-api in this API's region, over exactly the method, path, query and body you send.",
  },
  {
    type: apigateway.ResponseType.EXPIRED_TOKEN,
    errorName: 'UnauthenticatedError',
    status: 403,
    title: 'Credentials expired',
    detail: 'Your credentials or the request signature have expired: refresh your AWS credentials and sign the request again.',
  },
  {
    type: apigateway.ResponseType.ACCESS_DENIED,
    errorName: 'ForbiddenError',
    status: 403,
    title: 'Not allowed',
    detail:
      "Your IAM principal may not call this API: it must belong to this API's AWS account (or, allowed execute-api:Invoke by its own policy, to its organisation) and match the callers this deployment admits. Ask the platform owner.",
  },
  {
    type: apigateway.ResponseType.RESOURCE_NOT_FOUND,
    errorName: 'RouteNotFoundError',
    status: 404,
    title: 'No such route',
    detail: 'This API has no such route: use /environments, /environments/{name} or /environments/{name}/config.',
  },
  {
    type: apigateway.ResponseType.REQUEST_TOO_LARGE,
    errorName: 'RequestTooLargeError',
    status: 413,
    title: 'Request too large',
    detail: 'The request is larger than API Gateway accepts: an environment request is a small JSON object.',
  },
  {
    type: apigateway.ResponseType.UNSUPPORTED_MEDIA_TYPE,
    errorName: 'UnsupportedMediaTypeError',
    status: 415,
    title: 'Unsupported media type',
    detail: 'Send the body as JSON with the header Content-Type: application/json.',
  },
  {
    type: apigateway.ResponseType.THROTTLED,
    errorName: 'ThrottledError',
    status: 429,
    title: 'Too many requests',
    detail: 'The team is calling this API faster than its limit: wait for the Retry-After seconds, then try again.',
    retryAfterSeconds: 2,
  },
  {
    type: apigateway.ResponseType.INTEGRATION_TIMEOUT,
    errorName: 'IntegrationTimeoutError',
    status: 504,
    title: 'The API did not answer in time',
    detail: 'The API did not answer in time; nothing may have changed, or the change may be under way: GET the environment, then retry.',
  },
  {
    type: apigateway.ResponseType.INTEGRATION_FAILURE,
    errorName: 'IntegrationFailureError',
    status: 504,
    title: 'The API failed to answer',
    detail: 'The API could not run the request; nothing may have changed, or the change may be under way: GET the environment, then retry.',
  },
  {
    type: apigateway.ResponseType.DEFAULT_4XX,
    errorName: 'RequestRefusedError',
    title: 'The request was refused',
    detail: 'API Gateway refused the request before it reached mfenv: check the signature, the path and the body against the API documentation.',
  },
  {
    type: apigateway.ResponseType.DEFAULT_5XX,
    errorName: 'InternalError',
    title: 'The API failed',
    detail:
      'API Gateway failed to run the request; it is not caused by the request itself: retry later, and tell the platform owner the x-amzn-RequestId response header if it persists.',
  },
];

/**
 * API Gateway's own words, as a complete JSON string: `messageString` is the message already quoted (and
 * escaped: API Gateway's default gateway responses are `{"message":$context.error.messageString}`).
 */
export const GATEWAY_MESSAGE_VARIABLE = '$context.error.messageString';

/**
 * The mapping template of one problem. Gateway templates are not VTL: API Gateway only puts each
 * `$context` variable in as it is, without escaping. So the body holds no variable inside a JSON string
 * (`$context.error.validationErrorString` quotes the schema, a path may hold a quote: either would break
 * the JSON), only the already-quoted message as the `gatewayMessage` member. The request id reaches the
 * caller as the x-amzn-RequestId header that API Gateway adds to every answer.
 */
export function problemTemplate(problem: GatewayProblem): string {
  const body = JSON.stringify({
    type: problemTypeOf(problem.errorName),
    title: problem.title,
    ...(problem.status ? { status: problem.status } : {}),
    detail: problem.detail,
  });
  return `${body.slice(0, -1)},"gatewayMessage":${GATEWAY_MESSAGE_VARIABLE}}`;
}

export class Api extends Construct {
  readonly restApi: apigateway.RestApi;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: LOG_RETENTION });

    this.restApi = new apigateway.RestApi(this, 'Api', {
      restApiName: `${Stack.of(this).stackName}-api`,
      description: 'mfenv: self-service Metaflow environments (SigV4-signed, this account only).',
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      policy: resourcePolicy(props.organizationId, props.callers),
      defaultMethodOptions: { authorizationType: apigateway.AuthorizationType.IAM },
      // Execution logs need API Gateway's account-wide CloudWatch role. Kept on stack deletion: other APIs
      // of the account may log through it too.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: API_STAGE,
        tracingEnabled: true,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: accessLogFormat(),
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        // Request bodies stay out of the logs: they name owners.
        dataTraceEnabled: false,
        throttlingRateLimit: API_THROTTLING.rateLimit,
        throttlingBurstLimit: API_THROTTLING.burstLimit,
      },
    });
    // The stack has its own ApiUrl output.
    this.restApi.node.tryRemoveChild('Endpoint');

    for (const problem of GATEWAY_PROBLEMS) {
      this.restApi.addGatewayResponse(`Problem${problem.type.responseType}`, {
        type: problem.type,
        ...(problem.status ? { statusCode: String(problem.status) } : {}),
        responseHeaders: {
          'Content-Type': "'application/problem+json'",
          ...(problem.retryAfterSeconds ? { 'Retry-After': `'${problem.retryAfterSeconds}'` } : {}),
        },
        templates: { 'application/json': problemTemplate(problem) },
      });
    }

    const checkBodyAndParameters = this.restApi.addRequestValidator('BodyAndParameters', {
      requestValidatorName: 'body-and-parameters',
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const checkParameters = this.restApi.addRequestValidator('Parameters', {
      requestValidatorName: 'parameters',
      validateRequestParameters: true,
    });
    const createRequest = this.restApi.addModel('CreateEnvironmentRequest', {
      modelName: 'CreateEnvironmentRequest',
      contentType: 'application/json',
      description: 'Body of POST /environments.',
      schema: createRequestJsonSchema(props.maxVcpusCeiling) as apigateway.JsonSchema,
    });

    const updateRequest = this.restApi.addModel('UpdateEnvironmentRequest', {
      modelName: 'UpdateEnvironmentRequest',
      contentType: 'application/json',
      description: 'Body of PATCH /environments/{name}.',
      schema: updateRequestJsonSchema(props.maxVcpusCeiling) as apigateway.JsonSchema,
    });

    const integration = new apigateway.LambdaIntegration(props.handler, { proxy: true, allowTestInvoke: false });
    const withName = { requestValidator: checkParameters, requestParameters: { 'method.request.path.name': true } };

    const environments = this.restApi.root.addResource('environments');
    environments.addMethod('GET', integration, { requestValidator: checkParameters });
    environments.addMethod('POST', integration, {
      requestValidator: checkBodyAndParameters,
      requestModels: { 'application/json': createRequest },
      requestParameters: { 'method.request.header.Idempotency-Key': false },
    });
    const environment = environments.addResource('{name}');
    environment.addMethod('GET', integration, withName);
    environment.addMethod('PATCH', integration, {
      requestValidator: checkBodyAndParameters,
      requestModels: { 'application/json': updateRequest },
      requestParameters: { ...withName.requestParameters, 'method.request.header.Idempotency-Key': false },
    });
    environment.addMethod('DELETE', integration, {
      ...withName,
      requestParameters: { ...withName.requestParameters, 'method.request.querystring.purge': false },
    });
    environment.addResource('config').addMethod('GET', integration, withName);
  }

  /** The base URL of the API, including the stage. */
  get url(): string {
    return this.restApi.url;
  }
}

/**
 * Who may invoke, as API Gateway evaluates a resource policy with AWS_IAM auth (policy evaluation table
 * for the same account: https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-authorization-flow.html):
 * a resource policy that explicitly allows the caller is enough, with no identity policy of their own, so
 * a teammate needs no grant to call the API. The Allow therefore names every principal of the account
 * (`Principal: *` with aws:PrincipalAccount), not the account itself (`arn:...:root` would only delegate
 * to the account, and each caller would need an identity policy). Callers of the organisation, when set,
 * come from other accounts, where API Gateway also requires their own identity policy to allow
 * execute-api:Invoke. The Denies make the limits hold whatever other policy says: nobody from elsewhere,
 * and, when the deployment narrows it, nobody who does not match the principal patterns or carry the tag.
 */
export function resourcePolicy(organizationId: string | undefined, callers: CallerRestriction = {}): iam.PolicyDocument {
  const invoke = { actions: ['execute-api:Invoke'], resources: ['execute-api:/*'] };
  const everyone = [new iam.AnyPrincipal()];
  const statements = [
    new iam.PolicyStatement({
      sid: 'ThisAccount',
      principals: everyone,
      conditions: { StringEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID } },
      ...invoke,
    }),
  ];
  if (organizationId) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'ThisOrganization',
        principals: everyone,
        conditions: { StringEquals: { 'aws:PrincipalOrgID': organizationId } },
        ...invoke,
      }),
    );
  }
  statements.push(
    new iam.PolicyStatement({
      sid: 'NobodyElse',
      effect: iam.Effect.DENY,
      principals: everyone,
      conditions: {
        StringNotEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID, ...(organizationId ? { 'aws:PrincipalOrgID': organizationId } : {}) },
      },
      ...invoke,
    }),
  );
  if (callers.principalArnPatterns?.length) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'OnlyListedPrincipals',
        effect: iam.Effect.DENY,
        principals: everyone,
        conditions: { ArnNotLike: { 'aws:PrincipalArn': callers.principalArnPatterns } },
        ...invoke,
      }),
    );
  }
  if (callers.principalTag) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'OnlyTaggedPrincipals',
        effect: iam.Effect.DENY,
        principals: everyone,
        // A principal without the tag is refused too: a negated condition on a missing key is true.
        conditions: { StringNotEquals: { [`aws:PrincipalTag/${callers.principalTag.key}`]: callers.principalTag.value } },
        ...invoke,
      }),
    );
  }
  return new iam.PolicyDocument({ statements });
}

/**
 * One JSON object per request: who called what, the answer, and which of API Gateway's own refusals it was
 * (errorType). Only variables that cannot hold a double quote, so every line stays valid JSON.
 */
function accessLogFormat(): apigateway.AccessLogFormat {
  return apigateway.AccessLogFormat.custom(
    JSON.stringify({
      requestId: apigateway.AccessLogField.contextRequestId(),
      requestTime: apigateway.AccessLogField.contextRequestTime(),
      httpMethod: apigateway.AccessLogField.contextHttpMethod(),
      resourcePath: apigateway.AccessLogField.contextResourcePath(),
      path: apigateway.AccessLogField.contextPath(),
      status: apigateway.AccessLogField.contextStatus(),
      responseLength: apigateway.AccessLogField.contextResponseLength(),
      responseLatency: apigateway.AccessLogField.contextResponseLatency(),
      integrationLatency: apigateway.AccessLogField.contextIntegrationLatency(),
      caller: apigateway.AccessLogField.contextIdentityCaller(),
      userArn: apigateway.AccessLogField.contextIdentityUserArn(),
      sourceIp: apigateway.AccessLogField.contextIdentitySourceIp(),
      errorType: apigateway.AccessLogField.contextErrorResponseType(),
      xrayTraceId: apigateway.AccessLogField.contextXrayTraceId(),
    }),
  );
}
