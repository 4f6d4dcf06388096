/**
 * Idempotency-Key under concurrency, against the emulator: copies of one POST arriving at the same instant
 * get one answer and make one environment and one workflow execution; the same key with other bodies at
 * the same instant makes one environment and 422 for the rest; a claim whose request died lapses.
 */
import * as registry from '../../../lambdas/core/registry';
import { LOCK_MS, RETRY_IN_PROGRESS_SECONDS, requestHashOf, scopedKeyHash } from '../../../lambdas/api/idempotency';
import { type Answer, userArn } from '../../support/api-events';
import { useEmulator } from '../../support/emulator';
import { asAlice, asBob, executionsOf, useFreshRegistryAndWorkflows } from './fixtures';

const emulator = useEmulator({ maxEnvironmentsPerOwner: 10, maxEnvironments: 40 });
const workflows = useFreshRegistryAndWorkflows(emulator);

const COPIES = 8;
const ALICE = userArn('alice');
const withKey = (key: string) => ({ headers: { 'Idempotency-Key': key } });
const statusesOf = (answers: Answer[]) => answers.map((answer) => answer.status).sort();

async function environmentsOfAlice() {
  return registry.listEnvironments({ owner: ALICE, includeDeleted: true });
}

describe('copies of one POST with the same Idempotency-Key, sent at the same instant', () => {
  it(`gives all ${COPIES} the same answer and makes one environment and one workflow execution`, async () => {
    // prepare
    const body = { name: 'together', maxVcpus: 4, gpu: false };

    // act
    const answers = await Promise.all(Array.from({ length: COPIES }, () => asAlice.post('/environments', body, withKey('same-key-1'))));

    // assess
    expect(statusesOf(answers)).toEqual(Array(COPIES).fill(202));
    for (const answer of answers) {
      expect(answer.body).toBe(answers[0]!.body);
      expect(answer.headers.location).toBe('/environments/together');
    }
    // One copy ran; every other one replayed its answer.
    expect(answers.filter((answer) => answer.headers['idempotent-replayed'] === 'true')).toHaveLength(COPIES - 1);
    expect(await environmentsOfAlice()).toEqual([expect.objectContaining({ name: 'together', status: 'CREATING', generation: 1 })]);
    expect(await executionsOf(workflows, workflows.provisionArn)).toHaveLength(1);
    expect(await registry.liveCounts(ALICE)).toEqual({ account: 1, owner: 1 });
  });

  it(`gives all ${COPIES} the same refusal when the request is refused, and keeps the key free`, async () => {
    // prepare: bob holds the name
    expect((await asBob.post('/environments', { name: 'refused' })).status).toBe(202);
    const body = { name: 'refused' };

    // act
    const answers = await Promise.all(Array.from({ length: COPIES }, () => asAlice.post('/environments', body, withKey('same-key-2'))));

    // assess
    expect(statusesOf(answers)).toEqual(Array(COPIES).fill(409));
    expect(new Set(answers.map((answer) => answer.json.type))).toEqual(new Set(['urn:mfenv:problem:name-taken']));
    expect(await environmentsOfAlice()).toEqual([]);
    expect(await executionsOf(workflows, workflows.provisionArn)).toHaveLength(1); // bob's only
    expect(await registry.getKeyState(scopedKeyHash({ id: ALICE }, 'same-key-2'))).toBeUndefined();
  });
});

describe('one Idempotency-Key with different bodies, sent at the same instant', () => {
  it(`makes exactly one environment and answers the other ${COPIES - 1} 422`, async () => {
    // prepare
    const names = Array.from({ length: COPIES }, (_, index) => `differs-${index}`);

    // act
    const answers = await Promise.all(names.map((name) => asAlice.post('/environments', { name }, withKey('same-key-3'))));

    // assess
    expect(statusesOf(answers)).toEqual([202, ...Array(COPIES - 1).fill(422)]);
    for (const refused of answers.filter((answer) => answer.status === 422)) {
      expect(refused.json.type).toBe('urn:mfenv:problem:idempotency-key-reuse');
    }
    const created = answers.find((answer) => answer.status === 202)!.json.name;
    expect((await environmentsOfAlice()).map((record) => record.name)).toEqual([created]);
    expect(await executionsOf(workflows, workflows.provisionArn)).toHaveLength(1);
  });
});

describe('a claim on a key', () => {
  it('is taken over once it lapses, by a copy that was waiting for it (its request died)', async () => {
    // prepare: a request claimed the key for 1.5 s, then died without answering
    const body = { name: 'orphaned' };
    const scoped = scopedKeyHash({ id: ALICE }, 'same-key-4');
    expect(await registry.claimKey(scoped, requestHashOf(body), 1_500)).toBe(true);

    // act
    const startedAt = Date.now();
    const answer = await asAlice.post('/environments', body, withKey('same-key-4'));

    // assess
    expect(answer.status).toBe(202);
    expect(answer.headers['idempotent-replayed']).toBeUndefined();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_000);
    expect(await registry.getKeyState(scoped)).toMatchObject({ state: 'COMPLETED', statusCode: 202 });
    expect(await executionsOf(workflows, workflows.provisionArn)).toHaveLength(1);
  });

  it('answers 422 at once to another body while the request holding it runs', async () => {
    // prepare
    const scoped = scopedKeyHash({ id: ALICE }, 'same-key-5');
    await registry.claimKey(scoped, requestHashOf({ name: 'first' }), 30_000);

    // act
    const answer = await asAlice.post('/environments', { name: 'second' }, withKey('same-key-5'));

    // assess
    expect(answer.status).toBe(422);
    expect(answer.json.type).toBe('urn:mfenv:problem:idempotency-key-reuse');
    expect(await environmentsOfAlice()).toEqual([]);
  });

  it('answers 409 with Retry-After, changing nothing, when the request holding it is still running after the wait', async () => {
    // prepare: a request claimed the key and is still running (its claim holds longer than a copy waits)
    const body = { name: 'slow' };
    const scoped = scopedKeyHash({ id: ALICE }, 'same-key-6');
    expect(await registry.claimKey(scoped, requestHashOf(body), LOCK_MS)).toBe(true);

    // act
    const answer = await asAlice.post('/environments', body, withKey('same-key-6'));

    // assess
    expect(answer.status).toBe(409);
    expect(answer.json.type).toBe('urn:mfenv:problem:idempotency-key-in-progress');
    expect(answer.headers['retry-after']).toBe(String(RETRY_IN_PROGRESS_SECONDS));
    expect(answer.json.detail).toMatch(/still in progress; send this request again in \d+ seconds, with the same key/);
    expect(await environmentsOfAlice()).toEqual([]);
    expect(await registry.getKeyState(scoped)).toMatchObject({ state: 'IN_PROGRESS' });
  }, 30_000);
});
