/**
 * Bodies nested deeper than any request needs: refused with a 400 problem before anything walks them
 * recursively (the Idempotency-Key hash, validation), whatever their depth. The SDK is pointed at a closed
 * port, so a request that reached AWS would fail with a 500.
 */
import { handler } from '../../../lambdas/api/handler';
import { canonicalJson } from '../../../lambdas/api/idempotency';
import { MAX_BODY_DEPTH, nestsDeeperThan, parseJsonBody } from '../../../lambdas/api/middleware';
import { ValidationError } from '../../../lambdas/core/errors';
import { apiCaller, useUnreachableAws, userArn } from '../../support/api-events';

// Any AWS call would fail: these requests must be answered before one is made.
useUnreachableAws();

const alice = apiCaller(handler, userArn('alice'));
const json = { 'Content-Type': 'application/json' };

/** `{"name":"deep","x":{"x":{...}}}`, `depth` objects in all, written as text (building it as a value would recurse). */
const nestedObjects = (depth: number) => `{"name":"deep","x":${'{"x":'.repeat(depth - 1)}1${'}'.repeat(depth - 1)}}`;
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('a deeply nested body', () => {
  it.each([
    ['objects 10,000 levels deep', nestedObjects(10_000)],
    ['arrays 10,000 levels deep', nestedArrays(10_000)],
    ['arrays 1,000,000 levels deep', nestedArrays(1_000_000)],
  ])('answers 400 with a problem a user can act on, for %s with an Idempotency-Key', async (_, body) => {
    // act
    const answer = await alice.send('POST', '/environments', { body, headers: { ...json, 'Idempotency-Key': 'deep-1' } });

    // assess
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(answer.json).toMatchObject({ type: 'urn:mfenv:problem:validation', status: 400 });
    expect(answer.json.detail).toContain(`more than ${MAX_BODY_DEPTH} levels deep`);
    expect(answer.json.detail).toContain('send a JSON object such as');
    expect(answer.json.errors).toEqual([{ field: 'body', message: `is nested more than ${MAX_BODY_DEPTH} levels deep` }]);
  });

  it('answers 400 for it without an Idempotency-Key too', async () => {
    // act
    const answer = await alice.send('POST', '/environments', { body: nestedObjects(10_000), headers: json });

    // assess
    expect(answer.status).toBe(400);
    expect(answer.json.errors).toEqual([{ field: 'body', message: expect.stringContaining('levels deep') }]);
  });

  it('reads a body exactly at the limit, and refuses one a level deeper', () => {
    // prepare
    const atLimit = { body: nestedObjects(MAX_BODY_DEPTH), isBase64Encoded: false };
    const beyond = { body: nestedObjects(MAX_BODY_DEPTH + 1), isBase64Encoded: false };

    // act
    const read = parseJsonBody(atLimit, { 'content-type': 'application/json' });
    const refused = () => parseJsonBody(beyond, { 'content-type': 'application/json' });

    // assess
    expect(read).toMatchObject({ name: 'deep' });
    expect(refused).toThrow(ValidationError);
  });
});

describe('measuring and hashing nesting', () => {
  it('counts levels of objects and arrays, not scalars', () => {
    // act + assess
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan({ a: 1 }, 1)).toBe(false);
    expect(nestsDeeperThan({ a: [1] }, 1)).toBe(true);
    expect(nestsDeeperThan(JSON.parse(nestedArrays(100_000)), 99_999)).toBe(true);
    expect(nestsDeeperThan(JSON.parse(nestedArrays(100_000)), 100_000)).toBe(false);
  });

  it('refuses to hash a value deeper than the limit instead of exhausting the stack', () => {
    // prepare
    const deep = JSON.parse(nestedArrays(100_000));

    // act
    const hashing = () => canonicalJson(deep);

    // assess
    expect(hashing).toThrow(ValidationError);
    expect(canonicalJson(JSON.parse(nestedArrays(MAX_BODY_DEPTH)))).toBe(nestedArrays(MAX_BODY_DEPTH));
  });
});
