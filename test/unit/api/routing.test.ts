import { MethodNotAllowedError, RouteNotFoundError } from '../../../lambdas/core/errors';
import { isJsonMediaType, normalizeHeaders, queryOf } from '../../../lambdas/api/middleware';
import { matchPattern, matchRoute } from '../../../lambdas/api/router';
import { ROUTES } from '../../../lambdas/api/routes';
import { canonicalJson, requestHashOf, scopedKeyHash } from '../../../lambdas/api/idempotency';

describe('the route table', () => {
  it('serves exactly the routes of the API contract', () => {
    // act
    const served = ROUTES.map((route) => `${route.method} ${route.pattern}`).sort();
    // assess
    expect(served).toEqual([
      'DELETE /environments/{name}',
      'GET /environments',
      'GET /environments/{name}',
      'GET /environments/{name}/config',
      'PATCH /environments/{name}',
      'POST /environments',
    ]);
    expect(ROUTES.filter((route) => route.jsonBody).map((route) => route.method)).toEqual(['POST', 'PATCH']);
  });

  it.each([
    ['GET', '/environments', '/environments', {}],
    ['POST', '/environments/', '/environments', {}],
    ['GET', '/environments/alice', '/environments/{name}', { name: 'alice' }],
    ['DELETE', '/environments/alice', '/environments/{name}', { name: 'alice' }],
    ['GET', '/environments/alice/config', '/environments/{name}/config', { name: 'alice' }],
    ['get', '/environments/a%6cice', '/environments/{name}', { name: 'alice' }],
  ])('routes %s %s by its path', (method, path, pattern, parameters) => {
    // act
    const { route, pathParameters } = matchRoute(ROUTES, { method, path });
    // assess
    expect(route.pattern).toBe(pattern);
    expect(route.method).toBe(method.toUpperCase());
    expect(pathParameters).toEqual(parameters);
  });

  it("trusts API Gateway's resource and parameters when a custom domain prefixes the path", () => {
    // act
    const { route, pathParameters } = matchRoute(ROUTES, {
      method: 'GET',
      path: '/mfenv/environments/alice',
      resource: '/environments/{name}',
      pathParameters: { name: 'alice' },
    });
    // assess
    expect(route.pattern).toBe('/environments/{name}');
    expect(pathParameters).toEqual({ name: 'alice' });
  });

  it.each(['/', '/environment', '/environments/alice/config/extra', '/environments//config', '/other'])('answers 404 for %s', (path) => {
    // act + assess
    expect(() => matchRoute(ROUTES, { method: 'GET', path })).toThrow(RouteNotFoundError);
  });

  it.each([
    ['PUT', '/environments', ['GET', 'POST']],
    ['POST', '/environments/alice', ['GET', 'PATCH', 'DELETE']],
    ['DELETE', '/environments/alice/config', ['GET']],
  ])('answers 405 for %s %s and says which methods are allowed', (method, path, allow) => {
    // act
    let thrown: unknown;
    try {
      matchRoute(ROUTES, { method, path });
    } catch (error) {
      thrown = error;
    }
    // assess
    expect(thrown).toBeInstanceOf(MethodNotAllowedError);
    expect((thrown as MethodNotAllowedError).allow.sort()).toEqual([...allow].sort());
  });

  it('decodes path parameters, keeping a malformed escape as sent', () => {
    // act + assess
    expect(matchPattern('/environments/{name}', '/environments/al%20ice')).toEqual({ name: 'al ice' });
    expect(matchPattern('/environments/{name}', '/environments/%E0%A4%A')).toEqual({ name: '%E0%A4%A' });
  });
});

describe('request reading', () => {
  it('lower-cases header names; the single-value map wins over the multi-value one', () => {
    // act
    const headers = normalizeHeaders({
      headers: { 'Content-Type': 'application/json', 'IDEMPOTENCY-KEY': 'k1' },
      multiValueHeaders: { 'X-Trace': ['a', 'b'], 'Content-Type': ['text/plain'] },
    });
    // assess
    expect(headers).toEqual({ 'content-type': 'application/json', 'idempotency-key': 'k1', 'x-trace': 'b' });
  });

  it('refuses a query parameter given twice, and reads single ones', () => {
    // act + assess
    expect(() =>
      queryOf({ queryStringParameters: { purge: 'false' }, multiValueQueryStringParameters: { purge: ['true', 'false'] } }),
    ).toThrow(/purge given more than once/);
    expect(queryOf({ queryStringParameters: { purge: 'true' }, multiValueQueryStringParameters: { purge: ['true'] } })).toEqual({
      purge: 'true',
    });
    expect(queryOf({ queryStringParameters: null, multiValueQueryStringParameters: null })).toEqual({});
  });

  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['Application/JSON', true],
    ['application/problem+json', true],
    ['text/plain', false],
    ['application/x-www-form-urlencoded', false],
    [undefined, false],
  ])('takes %s as JSON: %s', (contentType, json) => {
    // act + assess
    expect(isJsonMediaType(contentType)).toBe(json);
  });
});

describe('idempotency keys', () => {
  it('hashes the same body the same however its keys are ordered', () => {
    // act + assess
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
    expect(requestHashOf({ name: 'alice', gpu: false })).toBe(requestHashOf({ gpu: false, name: 'alice' }));
    expect(requestHashOf({ name: 'alice' })).not.toBe(requestHashOf({ name: 'alicf' }));
  });

  it('scopes a key to the caller', () => {
    // act + assess
    expect(scopedKeyHash({ id: 'arn:aws:iam::123456789012:user/alice' }, 'k')).not.toBe(
      scopedKeyHash({ id: 'arn:aws:iam::123456789012:user/bob' }, 'k'),
    );
  });
});
