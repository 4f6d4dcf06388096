/**
 * The API's OpenAPI 3.1 document, built from the code that serves the API rather than written beside it:
 * request and resource schemas come from the zod schemas the handlers parse and answer with, the routes
 * from the route table, the error answers from the error table (HTTP_ERRORS) and from the answers API
 * Gateway gives on its own (GATEWAY_PROBLEMS). A change to any of them changes the document.
 *
 * A pure function of its options, for scripts (infra/write-openapi.ts writes docs/openapi.json) and local
 * mode (which serves it at GET /openapi.json). The API Lambda never imports it: it would pull the CDK
 * library into the bundle.
 */
import * as z from 'zod';
import { API_STAGE, GATEWAY_PROBLEMS, type GatewayProblem } from '../../infra/api';
import { PrincipalArn } from '../core/access';
import { EnvironmentName, EnvironmentResource, MetaflowConfig, createRequestSchema, updateRequestSchema } from '../core/environment';
import { HTTP_ERRORS } from '../core/errors';
import { SETTING_DEFAULTS } from '../core/settings';
import { problemTypeOf } from './http';
import { IDEMPOTENCY_HEADER, REPLAYED_HEADER } from './idempotency';
import { problemFor } from './middleware';
import type { Route } from './router';
import { ROUTES } from './routes';

export const OPENAPI_VERSION = '3.1.0';

/** A JSON value of the document (the document is plain data: written to a file, served as JSON). */
type Json = Record<string, unknown>;

export interface OpenApiServer {
  url: string;
  description?: string;
  variables?: Record<string, { default: string; description?: string }>;
}

export interface OpenApiOptions {
  /** The deployment's largest maxVcpus (the create request's maximum and default); default the stack's default. */
  maxVcpusCeiling?: number;
  /** Where the API is; default the deployed API's URL template and local mode's default address. */
  servers?: OpenApiServer[];
}

/** Where the deployed API and local mode answer, when the caller does not say. */
export const DEFAULT_SERVERS: OpenApiServer[] = [
  {
    url: `https://{restApiId}.execute-api.{region}.amazonaws.com/${API_STAGE}`,
    description: 'The deployed API: the ApiUrl output of the stack.',
    variables: {
      restApiId: { default: 'abcdef1234', description: 'The id of the REST API (the first part of ApiUrl).' },
      region: { default: 'us-east-1', description: 'The region the stack is deployed in.' },
    },
  },
  { url: 'http://127.0.0.1:3000', description: 'Local mode (npm start), on its default port.' },
];

const ref = (kind: 'schemas' | 'parameters', name: string) => ({ $ref: `#/components/${kind}/${name}` });

/** One entry of a validation problem's `errors` (lambdas/core/errors.ts FieldError). */
const FieldError = z.object({
  field: z.string().meta({ description: 'The offending field: a body field (name, maxVcpus, ...), a query parameter, a header, or "body".' }),
  message: z.string().meta({ description: 'What is wrong with it, as a phrase that reads after the field name.' }),
});

/** Every problem `type` this API and its gateway can answer with, each with the titles it comes with. */
function problemCatalogue(): Map<string, Set<string>> {
  const catalogue = new Map<string, Set<string>>();
  const add = (type: string, title: string) => catalogue.set(type, (catalogue.get(type) ?? new Set()).add(title));
  for (const [name, { title }] of Object.entries(HTTP_ERRORS)) add(problemTypeOf(name), title);
  const internal = lambdaInternalProblem();
  add(internal.type, internal.title);
  for (const problem of GATEWAY_PROBLEMS) add(problemTypeOf(problem.errorName), problem.title);
  return catalogue;
}

/** The Lambda's answer to an error it did not expect: taken from the middleware itself, so the two agree. */
function lambdaInternalProblem(): { type: string; title: string; status: number } {
  const answer = problemFor(new Error('probe'), '/', 'probe');
  const { type, title } = JSON.parse(String(answer.body)) as { type: string; title: string };
  return { type, title, status: answer.statusCode };
}

/**
 * The RFC 9457 problem document of every error (lambdas/api/http.ts `Problem`), as the API Lambda writes it
 * and as the stack's gateway responses write it (infra/api.ts problemTemplate): those have no instance or
 * request id, and API Gateway's own message instead.
 */
function problemSchema(types: readonly string[]) {
  return z.object({
    type: z.enum(types as [string, ...string[]]).meta({ description: 'Stable identifier of the kind of problem: branch on it.' }),
    title: z.string().meta({ description: 'Short summary of the kind of problem.' }),
    status: z.number().int().min(400).max(599).optional().meta({
      description: "The HTTP status. Left out of API Gateway's catch-all answers, whose status depends on what went wrong.",
    }),
    detail: z.string().meta({ description: 'What went wrong with this request, and what to do about it.' }),
    instance: z.string().optional().meta({ description: 'The path that was called (answers of the API Lambda).' }),
    requestId: z.string().optional().meta({ description: 'The request id to quote to the platform owner (answers of the API Lambda).' }),
    errors: z.array(FieldError).optional().meta({ description: 'Validation problems only: one entry per offending field.' }),
    gatewayMessage: z.string().optional().meta({
      description: "Answers of API Gateway itself only: API Gateway's own message (e.g. \"Missing Authentication Token\").",
    }),
  });
}

/** The create request's header that makes a retried POST safe (lambdas/api/idempotency.ts). */
export const IdempotencyKey = z.string().regex(/^[!-~]{1,255}$/, 'must be 1 to 255 printable ASCII characters without spaces');

/** `?purge=` of DELETE /environments/{name} (lambdas/api/routes.ts). */
const Purge = z.enum(['true', 'false']).default('false');

/** What the document says about one route beyond what the code already tells. */
interface OperationSpec {
  operationId: string;
  summary: string;
  description: string;
  /** Names in components.parameters. */
  parameters: string[];
  success: { status: 200 | 202; description: string; schema: string; headers: Record<string, { required: boolean }> };
  /** The errors the route's handler (through the middleware) may answer with, by name (HTTP_ERRORS gives status and title). */
  errors: string[];
  /** Routes that read a body: its schema in components.schemas, and examples. */
  requestBody?: { schema: string; examples: Record<string, { summary: string; value: Json }> };
  /** Other successful answers (a PATCH with nothing to start answers 200). */
  alsoSuccess?: { status: 200; description: string; schema: string };
}

const ALWAYS = { required: true };
const SOMETIMES = { required: false };

const OPERATIONS: Record<string, OperationSpec> = {
  'POST /environments': {
    operationId: 'createEnvironment',
    summary: 'Create an environment',
    description:
      'Records the environment as CREATING and starts its provisioning workflow; poll the Location until its status is READY ' +
      '(or CREATE_FAILED, with a statusReason). Quotas per teammate and per account are checked in the same write. ' +
      'Before anything is recorded, a preflight reads what would make the environment useless: a Spot vCPU quota of 0, ' +
      "the region's Batch compute environments or job queues at AWS's limit, shared subnets that give instances no public " +
      'address (each 409, nothing recorded). What only limits it (a Spot quota below maxVcpus, no GPU quota, GPU families ' +
      'the region does not offer, a check that could not be made) is created with `warnings`.',
    parameters: ['IdempotencyKey'],
    success: {
      status: 202,
      description: 'Accepted: the environment is CREATING.',
      schema: 'Environment',
      headers: { Location: ALWAYS, 'Retry-After': ALWAYS, [REPLAYED_HEADER]: SOMETIMES },
    },
    requestBody: {
      schema: 'CreateEnvironmentRequest',
      examples: {
        smallest: { summary: 'Just a name', value: { name: 'alice' } },
        cpuOnly: { summary: 'At most 16 vCPUs, no GPU families', value: { name: 'alice-cpu', maxVcpus: 16, gpu: false } },
        scheduled: { summary: 'Scheduled flows on Step Functions (python flow.py step-functions create)', value: { name: 'alice-nightly', scheduling: true } },
      },
    },
    errors: [
      'ValidationError',
      'ForbiddenError',
      'NameTakenError',
      'QuotaExceededError',
      'SpotQuotaZeroError',
      'BatchLimitReachedError',
      'DeploymentMisconfiguredError',
      'EnvironmentStateConflictError',
      'UnsupportedMediaTypeError',
      'IdempotencyKeyReuseError',
      'IdempotencyKeyInProgressError',
      'WorkflowUnavailableError',
    ],
  },
  'GET /environments': {
    operationId: 'listEnvironments',
    summary: 'List your environments',
    description:
      'Your environments (an admin sees everyone\'s, or one teammate\'s with ?owner=). DELETED environments are left out, ' +
      'except those whose bucket was kept with data.',
    parameters: ['Owner'],
    success: { status: 200, description: 'The environments.', schema: 'EnvironmentList', headers: {} },
    errors: ['ValidationError', 'ForbiddenError'],
  },
  'GET /environments/{name}': {
    operationId: 'getEnvironment',
    summary: 'Get an environment',
    description:
      'Its status, resources and, once READY, the Metaflow configuration; while a workflow runs, the step it is in. ' +
      "Someone else's environment answers 404, as one that does not exist.",
    parameters: ['EnvironmentName'],
    success: { status: 200, description: 'The environment.', schema: 'Environment', headers: {} },
    errors: ['ValidationError', 'EnvironmentNotFoundError'],
  },
  'PATCH /environments/{name}': {
    operationId: 'updateEnvironment',
    summary: 'Resize an environment',
    description:
      'Changes maxVcpus, gpu or scheduling of a READY environment (validated as in a create; at least one field): records it ' +
      'UPDATING and starts the update workflow; poll the Location until it is READY again with the new spec, or READY with ' +
      'the previous one and a statusReason saying why the change failed (it is undone). The queue, bucket and configuration ' +
      'stay usable meanwhile. A larger maxVcpus or GPUs turned on pass the same preflight as a create. Nothing to change: 200 ' +
      'and nothing started. idleExpiryExempt (admins only, 403 otherwise) is recorded at once and starts nothing. ' +
      '409 unless READY.',
    parameters: ['EnvironmentName', 'IdempotencyKey'],
    requestBody: {
      schema: 'UpdateEnvironmentRequest',
      examples: {
        moreVcpus: { summary: 'Up to 32 vCPUs', value: { maxVcpus: 32 } },
        gpuOff: { summary: 'CPU instances only, scheduled flows on', value: { gpu: false, scheduling: true } },
      },
    },
    success: {
      status: 202,
      description: 'Accepted: the environment is UPDATING.',
      schema: 'Environment',
      headers: { Location: ALWAYS, 'Retry-After': ALWAYS, [REPLAYED_HEADER]: SOMETIMES },
    },
    alsoSuccess: { status: 200, description: 'Nothing to start: the environment unchanged, or only idleExpiryExempt recorded.', schema: 'Environment' },
    errors: [
      'ValidationError',
      'ForbiddenError',
      'EnvironmentNotFoundError',
      'EnvironmentStateConflictError',
      'SpotQuotaZeroError',
      'DeploymentMisconfiguredError',
      'UnsupportedMediaTypeError',
      'IdempotencyKeyReuseError',
      'IdempotencyKeyInProgressError',
      'WorkflowUnavailableError',
    ],
  },
  'DELETE /environments/{name}': {
    operationId: 'deleteEnvironment',
    summary: 'Delete an environment',
    description:
      'Starts the teardown: queue, compute environment, roles, then the bucket if it is empty (kept with its data otherwise, ' +
      'unless ?purge=true). Safe to repeat: resumes a failed teardown, takes over one whose workflow stopped, and with ' +
      '?purge=true removes a bucket an earlier DELETE kept. 409 while CREATING.',
    parameters: ['EnvironmentName', 'Purge'],
    success: {
      status: 202,
      description: 'Accepted: the environment is DELETING (or already DELETED: nothing left to do).',
      schema: 'Environment',
      headers: { Location: ALWAYS, 'Retry-After': SOMETIMES },
    },
    errors: ['ValidationError', 'EnvironmentNotFoundError', 'EnvironmentStateConflictError', 'WorkflowUnavailableError'],
  },
  'GET /environments/{name}/config': {
    operationId: 'getEnvironmentConfig',
    summary: 'Get the Metaflow configuration',
    description:
      'Exactly the file Metaflow reads: save it as ~/.metaflowconfig/config_<name>.json and select it with METAFLOW_PROFILE=<name>. ' +
      '409 unless the environment is READY.',
    parameters: ['EnvironmentName'],
    success: {
      status: 200,
      description: 'The Metaflow configuration.',
      schema: 'MetaflowConfig',
      headers: { 'Content-Disposition': ALWAYS },
    },
    errors: ['ValidationError', 'EnvironmentNotFoundError', 'EnvironmentStateConflictError'],
  },
};

/** Headers the Lambda adds to a problem of the given error (lambdas/api/middleware.ts problemFor). */
const LAMBDA_PROBLEM_HEADERS: Partial<Record<string, string[]>> = {
  WorkflowUnavailableError: ['Retry-After'],
  IdempotencyKeyInProgressError: ['Retry-After'],
};

/**
 * Whether one of API Gateway's own answers can be given to this route: the body check only where there is a
 * body model (POST), the parameter check only where a parameter is required (the `{name}` routes), and a
 * refused media type only where a body is read. Every other gateway answer can meet any route.
 */
function gatewayAnswersRoute(problem: GatewayProblem, route: Route): boolean {
  switch (problem.type.responseType) {
    case 'BAD_REQUEST_BODY':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return route.jsonBody === true;
    case 'BAD_REQUEST_PARAMETERS':
      return route.pattern.includes('{');
    default:
      return true;
  }
}

/** The response key of a gateway answer: its status, or `4XX` / `5XX` for the catch-alls that keep the original one. */
function gatewayStatusKey(problem: GatewayProblem): string {
  if (problem.status) return String(problem.status);
  const range = /^DEFAULT_(\dXX)$/.exec(problem.type.responseType);
  if (!range) throw new Error(`The gateway response ${problem.type.responseType} has no status and is no catch-all.`);
  return range[1]!;
}

interface ErrorAnswer {
  types: Set<string>;
  /** `urn — title (who answers)`, for the description. */
  lines: string[];
  /** Header name → how many of the answers at this status send it. */
  headers: Map<string, number>;
  answers: number;
}

function errorAnswersOf(route: Route, spec: OperationSpec): Map<string, ErrorAnswer> {
  const byStatus = new Map<string, ErrorAnswer>();
  const add = (status: string, type: string, title: string, who: string, headers: readonly string[]) => {
    const answer: ErrorAnswer = byStatus.get(status) ?? { types: new Set(), lines: [], headers: new Map(), answers: 0 };
    answer.types.add(type);
    answer.lines.push(`\`${type}\` — ${title} (${who})`);
    for (const header of headers) answer.headers.set(header, (answer.headers.get(header) ?? 0) + 1);
    answer.answers += 1;
    byStatus.set(status, answer);
  };
  for (const name of spec.errors) {
    const known = HTTP_ERRORS[name];
    if (!known) throw new Error(`${spec.operationId} lists ${name}, which HTTP_ERRORS does not map.`);
    add(String(known.status), problemTypeOf(name), known.title, 'the API', LAMBDA_PROBLEM_HEADERS[name] ?? []);
  }
  const internal = lambdaInternalProblem();
  add(String(internal.status), internal.type, internal.title, 'the API', []);
  for (const problem of GATEWAY_PROBLEMS) {
    if (!gatewayAnswersRoute(problem, route)) continue;
    const headers = problem.retryAfterSeconds ? ['Retry-After'] : [];
    add(gatewayStatusKey(problem), problemTypeOf(problem.errorName), problem.title, `API Gateway, ${problem.type.responseType}`, headers);
  }
  return byStatus;
}

/** The response headers this API sends, by name. */
const HEADERS: Record<string, Json> = {
  Location: { description: 'The environment: GET it to follow its status.', schema: { type: 'string', examples: ['/environments/alice'] } },
  'Retry-After': { description: 'Seconds to wait before asking again.', schema: { type: 'string', pattern: '^[0-9]+$' } },
  [REPLAYED_HEADER]: {
    description: 'true when this is the stored answer to an earlier request with the same Idempotency-Key.',
    schema: { type: 'string', enum: ['true'] },
  },
  'Content-Disposition': {
    description: 'attachment; filename="config_<name>.json": the file name Metaflow selects with METAFLOW_PROFILE=<name>.',
    schema: { type: 'string' },
  },
  'x-amzn-RequestId': { description: "API Gateway's id of the request: quote it to the platform owner.", schema: { type: 'string' } },
};

/** Sorts response keys as a reader expects them: 200, 202, 400, ..., 4XX, ..., 5XX. */
function byStatus([a]: [string, unknown], [b]: [string, unknown]): number {
  const rank = (key: string) => (key.endsWith('XX') ? Number(key[0]) * 100 + 99.5 : Number(key));
  return rank(a) - rank(b);
}

/**
 * Header objects of one response. Written out rather than referenced: whether a header is always sent
 * differs between responses, and a reference may not say so.
 */
function responseHeaders(entries: [string, { required: boolean }][]): Json {
  const headers: Json = {};
  for (const [name, { required }] of [...entries, ['x-amzn-RequestId', { required: false }] as [string, { required: boolean }]]) {
    const header = HEADERS[name];
    if (!header) throw new Error(`HEADERS does not describe the header ${name}.`);
    headers[name] = { ...header, required };
  }
  return headers;
}

function operationOf(route: Route, spec: OperationSpec): Json {
  const responses: [string, Json][] = [
    [
      String(spec.success.status),
      {
        description: spec.success.description,
        headers: responseHeaders(Object.entries(spec.success.headers)),
        content: { 'application/json': { schema: ref('schemas', spec.success.schema) } },
      },
    ],
  ];
  if (spec.alsoSuccess) {
    responses.push([
      String(spec.alsoSuccess.status),
      {
        description: spec.alsoSuccess.description,
        headers: responseHeaders([[REPLAYED_HEADER, SOMETIMES]]),
        content: { 'application/json': { schema: ref('schemas', spec.alsoSuccess.schema) } },
      },
    ]);
  }
  for (const [status, answer] of errorAnswersOf(route, spec)) {
    const headers = [...answer.headers].map(([name, count]) => [name, { required: count === answer.answers }] as [string, { required: boolean }]);
    responses.push([
      status,
      {
        description: `One of:\n\n${answer.lines.map((line) => `- ${line}`).join('\n')}`,
        headers: responseHeaders(headers),
        content: {
          'application/problem+json': {
            schema: { allOf: [ref('schemas', 'Problem'), { type: 'object', properties: { type: { enum: [...answer.types].sort() } } }] },
          },
        },
      },
    ]);
  }
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    description: spec.description,
    ...(spec.parameters.length > 0 ? { parameters: spec.parameters.map((name) => ref('parameters', name)) } : {}),
    ...(route.jsonBody
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: ref('schemas', requestBodyOf(spec).schema), examples: requestBodyOf(spec).examples } },
          },
        }
      : {}),
    responses: Object.fromEntries(responses.sort(byStatus)),
  };
}

function requestBodyOf(spec: OperationSpec): NonNullable<OperationSpec['requestBody']> {
  if (!spec.requestBody) throw new Error(`${spec.operationId} reads a JSON body but describes none in lambdas/api/openapi.ts.`);
  return spec.requestBody;
}

/** A zod schema as an OpenAPI 3.1 (JSON Schema 2020-12) schema object, without the keywords a component must not carry. */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io }) as Json;
  return rest;
}

/** Named schemas that refer to each other by `$ref` into components.schemas. */
function componentSchemas(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: generated } = z.toJSONSchema(registry, { target: 'draft-2020-12', io, uri: (id) => `#/components/schemas/${id}` });
  const components: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(generated)) {
    const { $schema: _dialect, $id: _id, ...rest } = schema as Json;
    components[id] = rest;
  }
  return components;
}

function problemTypesDescription(catalogue: Map<string, Set<string>>): string {
  const lines = [...catalogue].sort(([a], [b]) => a.localeCompare(b)).map(([type, titles]) => `- \`${type}\`: ${[...titles].join('; ')}`);
  return `Problem details (RFC 9457). The \`type\` is one of:\n\n${lines.join('\n')}`;
}

/** The OpenAPI 3.1 document of the API, for the given deployment settings. */
export function buildOpenApiDocument(options: OpenApiOptions = {}): Json {
  const maxVcpusCeiling = options.maxVcpusCeiling ?? Number(SETTING_DEFAULTS.maxVcpusCeiling);
  const catalogue = problemCatalogue();

  const paths: Record<string, Json> = {};
  const described = new Set<string>();
  for (const route of ROUTES) {
    const key = `${route.method} ${route.pattern}`;
    const spec = OPERATIONS[key];
    if (!spec) throw new Error(`The route ${key} has no OpenAPI description in lambdas/api/openapi.ts.`);
    described.add(key);
    paths[route.pattern] = { ...paths[route.pattern], [route.method.toLowerCase()]: operationOf(route, spec) };
  }
  const stale = Object.keys(OPERATIONS).filter((key) => !described.has(key));
  if (stale.length > 0) throw new Error(`lambdas/api/openapi.ts describes routes the API does not serve: ${stale.join(', ')}.`);

  const Problem = problemSchema([...catalogue.keys()].sort()).meta({ description: problemTypesDescription(catalogue) });
  const EnvironmentList = z.object({ environments: z.array(EnvironmentResource) });

  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: 'mfenv',
      version: API_STAGE,
      summary: 'Self-service Metaflow back ends on AWS.',
      description:
        'Each teammate creates, uses and deletes their own Metaflow back end (an S3 bucket, IAM roles, an AWS Batch Spot compute ' +
        'environment and job queue). Every request is signed with AWS Signature Version 4 for the service execute-api. Every ' +
        'error is an RFC 9457 problem document (application/problem+json) whose `type` is stable. ' +
        `This document is for a deployment whose vCPU ceiling is ${maxVcpusCeiling}.`,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: options.servers ?? DEFAULT_SERVERS,
    security: [{ sigv4: [] }],
    paths,
    components: {
      schemas: {
        ...componentSchemas(
          { CreateEnvironmentRequest: createRequestSchema(maxVcpusCeiling), UpdateEnvironmentRequest: updateRequestSchema(maxVcpusCeiling) },
          'input',
        ),
        ...componentSchemas({ Environment: EnvironmentResource, EnvironmentList, MetaflowConfig, Problem }, 'output'),
      },
      parameters: {
        EnvironmentName: {
          name: 'name',
          in: 'path',
          required: true,
          description: 'The environment name.',
          schema: jsonSchemaOf(EnvironmentName, 'input'),
          example: 'alice',
        },
        Owner: {
          name: 'owner',
          in: 'query',
          required: false,
          description: "Admins only: list this teammate's environments (their principal ARN). Anyone else may name only themselves.",
          schema: jsonSchemaOf(PrincipalArn, 'input'),
        },
        Purge: {
          name: 'purge',
          in: 'query',
          required: false,
          description: "true: also delete the bucket's data (every object version), and with it the bucket.",
          schema: jsonSchemaOf(Purge, 'input'),
        },
        IdempotencyKey: {
          name: headerName(IDEMPOTENCY_HEADER),
          in: 'header',
          required: false,
          description:
            'Makes a retried POST or PATCH safe: the same key with the same request gets the same answer; with another, 422. A UUID does.',
          schema: jsonSchemaOf(IdempotencyKey, 'input'),
        },
      },
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          description:
            'AWS Signature Version 4 for the service execute-api, in the region of the API (e.g. curl --aws-sigv4 ' +
            '"aws:amz:us-east-1:execute-api"). With temporary credentials, also send X-Amz-Security-Token. ' +
            'Any IAM principal of the account may call; no permission of your own is needed.',
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
      },
    },
  };
}

/** `idempotency-key` → `Idempotency-Key`: header names are case-insensitive; the document uses the usual spelling. */
function headerName(lowerCase: string): string {
  return lowerCase.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => `${dash}${letter.toUpperCase()}`);
}

/** The document as docs/openapi.json holds it. */
export function openApiJson(document: Json): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
