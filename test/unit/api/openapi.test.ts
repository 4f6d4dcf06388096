/**
 * The OpenAPI document (lambdas/api/openapi.ts, kept as docs/openapi.json): built from the schemas, routes and
 * error tables the API runs on, valid OpenAPI 3.1, up to date in the repository, and kept out of the Lambda.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import * as z from 'zod';
import { GATEWAY_MESSAGE_VARIABLE, GATEWAY_PROBLEMS, problemTemplate } from '../../../infra/api';
import { lambdaBuildOptions } from '../../../infra/lambda-bundle';
import { ensurePythonEnvironment, PROJECT_ROOT, VENV_BIN } from '../../../infra/local/emulator';
import { OPENAPI_DOCUMENT, WRITE_OPENAPI_COMMAND, openApiDocumentText } from '../../../infra/write-openapi';
import * as errors from '../../../lambdas/core/errors';
import { HTTP_ERRORS, type MfenvError, ValidationError } from '../../../lambdas/core/errors';
import { createRequestSchema } from '../../../lambdas/core/environment';
import { problemTypeOf } from '../../../lambdas/api/http';
import { idempotencyKeyOf } from '../../../lambdas/api/idempotency';
import { problemFor } from '../../../lambdas/api/middleware';
import { IdempotencyKey, buildOpenApiDocument } from '../../../lambdas/api/openapi';
import { ROUTES } from '../../../lambdas/api/routes';
import { API_FUNCTION } from '../../../lambdas/steps/catalogue';

type Doc = any;
const document: Doc = buildOpenApiDocument();
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every operation of the document as `METHOD /path`, with its object. */
function operations(doc: Doc): [string, Doc][] {
  return Object.entries(doc.paths as Record<string, Doc>).flatMap(([path, item]) =>
    Object.entries(item as Record<string, Doc>)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]): [string, Doc] => [`${method.toUpperCase()} ${path}`, operation]),
  );
}

/** The problem types a response of an operation may carry (its schema's `type` enum). */
function problemTypes(operation: Doc, status: string): string[] {
  const schema = operation.responses[status]?.content?.['application/problem+json']?.schema;
  return schema?.allOf?.[1]?.properties?.type?.enum ?? [];
}

/** The document's Problem schema as a zod schema would see it: the JSON Schema's own rules, checked by hand. */
function conformsToProblem(doc: Doc, problem: Record<string, unknown>): string[] {
  const schema = doc.components.schemas.Problem;
  const wrong: string[] = [];
  for (const name of schema.required) if (!(name in problem)) wrong.push(`${name} missing`);
  for (const name of Object.keys(problem)) if (!(name in schema.properties)) wrong.push(`${name} not allowed`);
  if (!schema.properties.type.enum.includes(problem.type)) wrong.push(`type ${String(problem.type)} not listed`);
  return wrong;
}

/** One instance of each error class the API maps, built by name from the errors module. */
function instanceOf(name: string): MfenvError {
  const ErrorClass = (errors as unknown as Record<string, new (...args: any[]) => MfenvError>)[name]!;
  if (name === 'MethodNotAllowedError') return new ErrorClass('Not this method.', ['GET']);
  return new ErrorClass(`A sentence explaining ${name}.`);
}

describe('the OpenAPI document', () => {
  it(`is what ${OPENAPI_DOCUMENT} holds (regenerate it with ${WRITE_OPENAPI_COMMAND})`, () => {
    // prepare
    const stored = readFileSync(join(PROJECT_ROOT, OPENAPI_DOCUMENT), 'utf8');

    // act
    const current = openApiDocumentText();

    // assess
    if (stored !== current) {
      throw new Error(`${OPENAPI_DOCUMENT} is out of date with the schemas, routes or error tables: run \`${WRITE_OPENAPI_COMMAND}\` and commit the result.`);
    }
  });

  it('is valid OpenAPI 3.1 (openapi-spec-validator)', () => {
    // prepare
    ensurePythonEnvironment();

    // act
    const output = execFileSync(join(VENV_BIN, 'python'), ['-m', 'openapi_spec_validator', OPENAPI_DOCUMENT], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });

    // assess
    expect(output).toContain(': OK');
    expect(document.openapi).toBe('3.1.0');
  });

  it('describes every route of the API, and nothing else', () => {
    // act
    const described = operations(document).map(([key]) => key).sort();

    // assess
    expect(described).toEqual(ROUTES.map((route) => `${route.method} ${route.pattern}`).sort());
  });

  it('takes the request and resource schemas from the zod schemas the API parses and answers with', () => {
    // prepare
    const { $schema: _dialect, ...request } = z.toJSONSchema(createRequestSchema(8), { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;

    // act
    const small: Doc = buildOpenApiDocument({ maxVcpusCeiling: 8 });

    // assess
    expect(small.components.schemas.CreateEnvironmentRequest).toEqual(request);
    expect(small.components.schemas.CreateEnvironmentRequest).toMatchObject({ required: ['name'], additionalProperties: false });
    expect(document.components.schemas.Environment.properties).toHaveProperty('progress');
    expect(document.components.schemas.Environment.properties.config).toEqual({ $ref: '#/components/schemas/MetaflowConfig' });
    expect(document.components.schemas.EnvironmentList.properties.environments.items).toEqual({ $ref: '#/components/schemas/Environment' });
  });

  it('depends on its options only, not on the environment it is built in', () => {
    // prepare
    const saved = process.env.MFENV_MAX_VCPUS_CEILING;
    process.env.MFENV_MAX_VCPUS_CEILING = '3';

    // act
    const again: Doc = buildOpenApiDocument();
    if (saved === undefined) delete process.env.MFENV_MAX_VCPUS_CEILING;
    else process.env.MFENV_MAX_VCPUS_CEILING = saved;

    // assess
    expect(again).toEqual(document);
    expect(again.components.schemas.CreateEnvironmentRequest.properties.maxVcpus.maximum).toBe(64);
  });

  it.each([
    ['POST /environments', ['202', '400', '403', '404', '409', '413', '415', '422', '429', '500', '503', '504', '4XX', '5XX']],
    ['GET /environments', ['200', '400', '403', '404', '413', '429', '500', '504', '4XX', '5XX']],
    ['GET /environments/{name}', ['200', '400', '403', '404', '413', '429', '500', '504', '4XX', '5XX']],
    ['DELETE /environments/{name}', ['202', '400', '403', '404', '409', '413', '429', '500', '503', '504', '4XX', '5XX']],
    ['GET /environments/{name}/config', ['200', '400', '403', '404', '409', '413', '429', '500', '504', '4XX', '5XX']],
  ])('lists every answer of %s, its own and API Gateway\'s', (key, statuses) => {
    // act
    const operation = new Map(operations(document)).get(key);

    // assess
    expect(Object.keys(operation.responses)).toEqual(statuses);
    for (const [status, response] of Object.entries(operation.responses as Record<string, Doc>)) {
      const media = status.startsWith('2') ? 'application/json' : 'application/problem+json';
      expect(Object.keys(response.content)).toEqual([media]);
    }
  });

  it('gives each error answer the problem types that can come with it', () => {
    // prepare
    const byKey = new Map(operations(document));

    // act
    const create = byKey.get('POST /environments');
    const get = byKey.get('GET /environments/{name}');

    // assess
    expect(problemTypes(create, '409')).toEqual([
      'urn:mfenv:problem:batch-limit-reached',
      'urn:mfenv:problem:deployment-misconfigured',
      'urn:mfenv:problem:environment-state-conflict',
      'urn:mfenv:problem:idempotency-key-in-progress',
      'urn:mfenv:problem:name-taken',
      'urn:mfenv:problem:quota-exceeded',
      'urn:mfenv:problem:spot-quota-zero',
    ]);
    expect(problemTypes(create, '403')).toEqual(['urn:mfenv:problem:forbidden', 'urn:mfenv:problem:unauthenticated']);
    expect(problemTypes(get, '404')).toEqual(['urn:mfenv:problem:environment-not-found', 'urn:mfenv:problem:route-not-found']);
    expect(problemTypes(get, '5XX')).toEqual(['urn:mfenv:problem:internal']);
    expect(problemTypes(get, '4XX')).toEqual(['urn:mfenv:problem:request-refused']);
    // the gateway checks a body only where there is one
    expect(problemTypes(get, '415')).toEqual([]);
  });

  it('documents the headers: Idempotency-Key in, Location and Retry-After out', () => {
    // prepare
    const byKey = new Map(operations(document));

    // act
    const create = byKey.get('POST /environments');
    const remove = byKey.get('DELETE /environments/{name}');

    // assess
    expect(document.components.parameters.IdempotencyKey).toMatchObject({ name: 'Idempotency-Key', in: 'header', required: false });
    expect(create.responses['202'].headers).toMatchObject({ Location: { required: true }, 'Retry-After': { required: true } });
    expect(remove.responses['202'].headers).toMatchObject({ Location: { required: true }, 'Retry-After': { required: false } });
    expect(create.responses['503'].headers).toMatchObject({ 'Retry-After': { required: true } });
    expect(create.responses['429'].headers).toMatchObject({ 'Retry-After': { required: true } });
    // a copy whose Idempotency-Key is still held is told when to send it again; the other conflicts are not
    expect(create.responses['409'].headers).toMatchObject({ 'Retry-After': { required: false } });
    expect(byKey.get('GET /environments/{name}/config').responses['200'].headers).toMatchObject({ 'Content-Disposition': { required: true } });
  });

  it('documents the query parameters each route reads', () => {
    // act
    const parameters = Object.fromEntries(
      operations(document).map(([key, operation]) => [
        key,
        (operation.parameters ?? []).map((parameter: { $ref: string }) => document.components.parameters[parameter.$ref.split('/').pop()!])
          .filter((parameter: { in: string }) => parameter.in === 'query')
          .map((parameter: { name: string }) => parameter.name),
      ]),
    );

    // assess
    expect(parameters).toEqual({
      'POST /environments': [],
      'GET /environments': ['owner'],
      'GET /environments/{name}': [],
      'PATCH /environments/{name}': [],
      'DELETE /environments/{name}': ['purge'],
      'GET /environments/{name}/config': [],
    });
    expect(document.components.parameters.Purge.schema).toEqual({ type: 'string', enum: ['true', 'false'], default: 'false' });
  });

  it('describes an Idempotency-Key exactly as the API accepts it', () => {
    // prepare
    const samples = ['3f1c9f7e-2b9a-4a53-9a51-6d3d0b1f7c42', 'a', '!~', 'x'.repeat(255), 'x'.repeat(256), '', 'with space', 'tab\t', 'é'];

    // act
    const verdicts = samples.map((key) => {
      let accepted = true;
      try {
        idempotencyKeyOf({ 'idempotency-key': key });
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        accepted = false;
      }
      return [accepted, IdempotencyKey.safeParse(key).success];
    });

    // assess
    for (const [accepted, documented] of verdicts) expect(documented).toBe(accepted);
  });

  it('lists every problem type, and every problem the API or its gateway answers conforms to the Problem schema', () => {
    // prepare
    const lambdaProblems = [...Object.keys(HTTP_ERRORS).map(instanceOf), new Error('unexpected')].map(
      (error) => JSON.parse(String(problemFor(error, '/environments', 'r-1').body)) as Record<string, unknown>,
    );
    const withFields = JSON.parse(String(problemFor(new ValidationError('bad', [{ field: 'name', message: 'is required' }]), '/', 'r').body));
    const gatewayProblems = GATEWAY_PROBLEMS.map(
      (problem) => JSON.parse(problemTemplate(problem).replace(GATEWAY_MESSAGE_VARIABLE, () => JSON.stringify('a "quoted" message'))) as Record<string, unknown>,
    );

    // act
    const wrong = [...lambdaProblems, withFields, ...gatewayProblems].map((problem) => [problem.type, conformsToProblem(document, problem)]);

    // assess
    expect(wrong.filter(([, findings]) => (findings as string[]).length > 0)).toEqual([]);
    expect(document.components.schemas.Problem.properties.type.enum).toEqual(
      expect.arrayContaining([...Object.keys(HTTP_ERRORS), ...GATEWAY_PROBLEMS.map((problem) => problem.errorName)].map(problemTypeOf)),
    );
  });

  it('declares SigV4 (execute-api) as the security of every operation', () => {
    // act + assess
    expect(document.security).toEqual([{ sigv4: [] }]);
    expect(document.components.securitySchemes.sigv4).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'Authorization',
      'x-amazon-apigateway-authtype': 'awsSigv4',
    });
  });

  it('stays out of the API Lambda', async () => {
    // act
    // (the Lambda build itself, its output kept in memory)
    const options = lambdaBuildOptions({ entry: API_FUNCTION.entry, outdir: tmpdir(), requiredSettings: [] });
    const { metafile } = await build({ ...options, write: false, metafile: true, logLevel: 'silent' });

    // assess
    const sources = Object.keys(metafile.inputs).filter((input) => !input.includes('node_modules'));
    expect(sources).toContain('lambdas/api/handler.ts');
    expect(sources.filter((source) => source === 'lambdas/api/openapi.ts' || source.startsWith('infra/'))).toEqual([]);
  });
});
