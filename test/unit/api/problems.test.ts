import * as errors from '../../../lambdas/core/errors';
import { HTTP_ERRORS, MfenvError } from '../../../lambdas/core/errors';
import { problemTypeOf } from '../../../lambdas/api/http';
import { problemFor } from '../../../lambdas/api/middleware';

/** One instance of every error class the API maps, built by name from the errors module. */
function instanceOf(name: string): MfenvError {
  const ErrorClass = (errors as unknown as Record<string, new (...args: any[]) => MfenvError>)[name];
  if (!ErrorClass) throw new Error(`errors.ts exports no class ${name}`);
  if (name === 'MethodNotAllowedError') return new ErrorClass('Not this method, use another one.', ['GET', 'POST']);
  return new ErrorClass(`A sentence explaining ${name}.`);
}

describe('error mapping (HTTP_ERRORS → RFC 9457 problem)', () => {
  it.each(Object.entries(HTTP_ERRORS))('answers %s with its status, title and a problem document', (name, { status, title }) => {
    // prepare
    const error = instanceOf(name);
    // act
    const result = problemFor(error, '/environments/alice', 'req-1');
    // assess
    expect(result.statusCode).toBe(status);
    expect(result.headers['Content-Type']).toBe('application/problem+json');
    expect(JSON.parse(result.body)).toEqual({
      type: problemTypeOf(name),
      title,
      status,
      detail: error.message,
      instance: '/environments/alice',
      requestId: 'req-1',
    });
  });

  it('keeps every answer of the table a 4xx except the one that is not the caller\'s fault', () => {
    // act
    const serverSide = Object.entries(HTTP_ERRORS).filter(([, { status }]) => status >= 500).map(([name]) => name);
    // assess
    expect(serverSide).toEqual(['WorkflowUnavailableError']);
  });

  it('gives stable, readable problem types', () => {
    // act + assess
    expect(problemTypeOf('NameTakenError')).toBe('urn:mfenv:problem:name-taken');
    expect(problemTypeOf('QuotaExceededError')).toBe('urn:mfenv:problem:quota-exceeded');
    expect(problemTypeOf('IdempotencyKeyReuseError')).toBe('urn:mfenv:problem:idempotency-key-reuse');
  });

  it('lists the offending fields of a validation error', () => {
    // prepare
    const error = new errors.ValidationError('The request is not valid: name is required.', [{ field: 'name', message: 'is required' }]);
    // act
    const body = JSON.parse(problemFor(error, '/environments', 'req-2').body);
    // assess
    expect(body.errors).toEqual([{ field: 'name', message: 'is required' }]);
  });

  it('adds Allow to a 405 and Retry-After to a 503', () => {
    // act
    const notAllowed = problemFor(new errors.MethodNotAllowedError('no', ['GET', 'DELETE']), '/environments/alice', 'r');
    const unavailable = problemFor(new errors.WorkflowUnavailableError('later'), '/environments', 'r');
    // assess
    expect(notAllowed.headers.Allow).toBe('GET, DELETE');
    expect(Number(unavailable.headers['Retry-After'])).toBeGreaterThan(0);
  });

  it.each([
    ['an unexpected Error', new Error('secret internals: table arn:aws:dynamodb:...')],
    ['a deployment mistake', new errors.ConfigurationError('The setting MFENV_TABLE_NAME is missing.')],
    ['an AWS SDK error that shares a name with ours', Object.assign(new Error('boom'), { name: 'ValidationError' })],
    ['a thrown string', 'oops'],
  ])('answers %s with a neutral 500 that leaks nothing', (_case, error) => {
    // act
    const result = problemFor(error, '/environments', 'req-3');
    // assess
    const body = JSON.parse(result.body);
    expect(result.statusCode).toBe(500);
    expect(body).toMatchObject({ status: 500, title: 'Internal error', requestId: 'req-3' });
    expect(body.detail).toContain('req-3');
    expect(result.body).not.toMatch(/secret|MFENV_TABLE_NAME|boom|oops/);
  });
});
