/**
 * The handler's answers that are decided before any AWS call: authentication, routing, body and query
 * reading. The SDK is pointed at a closed port, so a request that reached AWS would fail with a 500.
 */
import { handler } from '../../../lambdas/api/handler';
import { apiCaller, apiEvent, call, useUnreachableAws, userArn } from '../../support/api-events';

// Any AWS call would fail: these requests must be answered before one is made.
useUnreachableAws();

const alice = apiCaller(handler, userArn('alice'));

function expectProblem(answer: { status: number; headers: Record<string, string>; json: any }, status: number) {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  expect(answer.json).toMatchObject({ status, title: expect.any(String), type: expect.stringMatching(/^urn:mfenv:problem:/) });
  expect(answer.json.detail.length).toBeGreaterThan(20);
}

describe('API handler, before the domain', () => {
  it('answers 401 when API Gateway reports no caller', async () => {
    // act
    const answer = await call(handler, apiEvent('GET', '/environments', { caller: null }));
    // assess
    expectProblem(answer, 401);
    expect(answer.json.instance).toBe('/environments');
  });

  it('answers 404 for an unknown route and 405 with Allow for a wrong method', async () => {
    // act
    const unknown = await alice.get('/nowhere');
    const wrongMethod = await alice.send('PUT', '/environments/alice');
    // assess
    expectProblem(unknown, 404);
    expectProblem(wrongMethod, 405);
    expect(wrongMethod.headers.allow).toBe('GET, DELETE, PATCH');
  });

  it('answers 415 for a POST that is not declared JSON', async () => {
    // act
    const noType = await alice.send('POST', '/environments', { body: '{"name":"alice"}' });
    const form = await alice.send('POST', '/environments', { body: 'name=alice', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    // assess
    expectProblem(noType, 415);
    expectProblem(form, 415);
    expect(form.json.detail).toContain('application/x-www-form-urlencoded');
  });

  it('answers 400 for malformed JSON and for an empty body, saying what to send', async () => {
    // act
    const malformed = await alice.send('POST', '/environments', { body: '{"name": "alice",', headers: { 'Content-Type': 'application/json' } });
    const empty = await alice.send('POST', '/environments', { body: '', headers: { 'Content-Type': 'application/json' } });
    // assess
    expectProblem(malformed, 400);
    expect(malformed.json.detail).toMatch(/^The body is not valid JSON \(.+\): send a JSON object such as/);
    expect(malformed.json.errors).toEqual([{ field: 'body', message: 'is not valid JSON' }]);
    expectProblem(empty, 400);
    expect(empty.json.errors).toEqual([{ field: 'body', message: 'is required' }]);
  });

  it('answers 400 for a bad name in the path and for bad query values', async () => {
    // act
    const badName = await alice.get('/environments/Not_A_Name');
    const badPurge = await alice.delete('/environments/alice', { query: { purge: 'yes' } });
    const unknownQuery = await alice.get('/environments/alice', { query: { verbose: '1' } });
    const repeated = await alice.delete('/environments/alice', { query: { purge: ['true', 'false'] } });
    const badOwner = await alice.get('/environments', { query: { owner: 'bob' } });
    // assess
    expectProblem(badName, 400);
    expect(badName.json.errors).toEqual([{ field: 'name', message: expect.stringMatching(/^must be 3 to 32 characters/) }]);
    expectProblem(badPurge, 400);
    expect(badPurge.json.errors).toEqual([{ field: 'purge', message: 'must be true or false' }]);
    expectProblem(unknownQuery, 400);
    expect(unknownQuery.json.errors).toEqual([{ field: 'verbose', message: 'is not accepted here' }]);
    expectProblem(repeated, 400);
    expectProblem(badOwner, 400);
    expect(badOwner.json.errors).toEqual([{ field: 'owner', message: 'must be an IAM user or role ARN' }]);
  });

  it('answers 400 for an invalid Idempotency-Key', async () => {
    // act
    const answer = await alice.post('/environments', { name: 'alice' }, { headers: { 'Idempotency-Key': 'has spaces in it' } });
    // assess
    expectProblem(answer, 400);
    expect(answer.json.errors).toEqual([{ field: 'Idempotency-Key', message: expect.stringContaining('printable ASCII') }]);
  });

  it('answers 403 when a teammate names another owner, before anything is read or written', async () => {
    // act
    const answer = await alice.post('/environments', { name: 'alice', owner: userArn('bob') });
    // assess
    expectProblem(answer, 403);
    expect(answer.json.detail).toMatch(/Only an admin/);
  });

  it('answers a neutral 500 when AWS cannot be reached, not a crash', async () => {
    // act
    const answer = await alice.get('/environments/alice');
    // assess
    expectProblem(answer, 500);
    expect(answer.json.detail).toContain(answer.json.requestId);
  });
});
