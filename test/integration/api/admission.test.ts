/**
 * The rules of POST and DELETE against the emulator: names, quotas, Idempotency-Key, the status rules of
 * DELETE, adopting a retained bucket, and what happens when a workflow cannot be started. Every test starts
 * from an empty registry and new stand-in workflows, so counts are exact and executions are its own.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import * as registry from '../../../lambdas/core/registry';
import { SETTING } from '../../../lambdas/core/settings';
import { type Answer, uniqueIdFor, userArn } from '../../support/api-events';
import { useEmulator } from '../../support/emulator';
import {
  ADMIN_ROLE_ARN,
  advance,
  asAdmin,
  asAlice,
  asBob,
  bucketOf,
  executionsFor,
  snapshot,
  useFreshRegistryAndWorkflows,
} from './fixtures';

const emulator = useEmulator({ admins: ADMIN_ROLE_ARN, maxEnvironmentsPerOwner: 2, maxEnvironments: 40 });
const workflows = useFreshRegistryAndWorkflows(emulator);

function expectProblem(answer: Answer, status: number, type?: string) {
  expect({ status: answer.status, contentType: answer.headers['content-type'] }).toEqual({
    status,
    contentType: 'application/problem+json',
  });
  expect(answer.json).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  if (type) expect(answer.json.type).toBe(`urn:mfenv:problem:${type}`);
}

/** Creates `name` for alice and moves it to `status` as the workflows would. */
async function environmentIn(name: string, ...path: Parameters<typeof advance>[1][]) {
  expect((await asAlice.post('/environments', { name })).status).toBe(202);
  for (const status of path) {
    if (status === 'DELETING') expect((await asAlice.delete(`/environments/${name}`)).status).toBe(202);
    else await advance(name, status);
  }
  return (await registry.getEnvironment(name))!;
}

describe('names', () => {
  it('refuses a name held by a live environment with 409, telling its owner what to do', async () => {
    // prepare
    await environmentIn('taken');
    const before = await snapshot(workflows);
    // act
    const again = await asAlice.post('/environments', { name: 'taken' });
    const other = await asBob.post('/environments', { name: 'taken' });
    // assess
    expectProblem(again, 409, 'name-taken');
    expect(again.json.detail).toMatch(/already exists and is CREATING/);
    expectProblem(other, 409, 'name-taken');
    expect(other.json.detail).toMatch(/taken by another environment; choose another name/);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('frees the name of a DELETED environment without retained data, for anyone, at the next generation', async () => {
    // prepare
    await environmentIn('freed', 'READY', 'DELETING', 'DELETED');
    // act
    const answer = await asBob.post('/environments', { name: 'freed' });
    // assess
    expect(answer.status).toBe(202);
    expect(await registry.getEnvironment('freed')).toMatchObject({ owner: userArn('bob'), status: 'CREATING', generation: 3 });
    expect((await executionsFor(workflows, 'freed')).provision.map((execution) => execution.name)).toEqual(['freed-provision-1', 'freed-provision-3']);
  });
});

describe('retained buckets', () => {
  async function retained(name: string) {
    await environmentIn(name, 'READY', 'DELETING');
    await advance(name, 'DELETED', { retainedBucket: bucketOf(name) });
  }

  it('lets the same owner re-create the name, adopting the bucket', async () => {
    // prepare
    await retained('kept');
    // act
    const answer = await asAlice.post('/environments', { name: 'kept', maxVcpus: 4 });
    // assess
    expect(answer.status).toBe(202);
    expect(answer.json.statusReason).toContain(bucketOf('kept'));
    expect(answer.json.resources.bucket).toBe(bucketOf('kept'));
    expect(await registry.getEnvironment('kept')).toMatchObject({ status: 'CREATING', generation: 3, retainedBucket: null });
    expect((await executionsFor(workflows, 'kept')).provision.at(-1)).toEqual({
      name: 'kept-provision-3',
      input: { environment: { name: 'kept', owner: userArn('alice'), ownerUniqueId: uniqueIdFor(userArn('alice')), spec: { maxVcpus: 4, gpu: true, gpuInstanceFamilies: ['g4dn', 'g5', 'g6'], scheduling: false }, generation: 3 } },
    });
  });

  it("refuses the name to another teammate, and to an admin creating it for someone else, changing nothing", async () => {
    // prepare
    await retained('kept');
    const before = await snapshot(workflows);
    // act
    const bob = await asBob.post('/environments', { name: 'kept' });
    const adminForBob = await asAdmin.post('/environments', { name: 'kept', owner: userArn('bob') });
    // assess
    expectProblem(bob, 409, 'name-taken');
    expect(bob.json.detail).toMatch(/holds another teammate's retained data/);
    expectProblem(adminForBob, 409, 'name-taken');
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('lets an admin re-create it for its owner', async () => {
    // prepare
    await retained('kept');
    // act
    const answer = await asAdmin.post('/environments', { name: 'kept', owner: userArn('alice') });
    // assess
    expect(answer.status).toBe(202);
    expect(answer.json.owner).toBe(userArn('alice'));
  });
});

describe('quotas', () => {
  it('refuses a teammate over the per-teammate quota with 409 saying which quota and the number', async () => {
    // prepare
    process.env[SETTING.maxEnvironmentsPerOwner] = '1';
    await environmentIn('first');
    const before = await snapshot(workflows);
    // act
    const answer = await asAlice.post('/environments', { name: 'second' });
    const bob = await asBob.post('/environments', { name: 'bobs' });
    // assess
    expectProblem(answer, 409, 'quota-exceeded');
    expect(answer.json.detail).toMatch(/You already hold 1 environment, .*quota per teammate: 1/);
    expect(bob.status).toBe(202);
    expect(await registry.getEnvironment('second')).toBeUndefined();
    expect((await snapshot(workflows)).provisions).toBe(before.provisions + 1);
  });

  it('counts live environments only: a DELETED one frees its place', async () => {
    // prepare
    process.env[SETTING.maxEnvironmentsPerOwner] = '1';
    await environmentIn('first', 'CREATE_FAILED', 'DELETING', 'DELETED');
    // act
    const answer = await asAlice.post('/environments', { name: 'second' });
    // assess
    expect(answer.status).toBe(202);
  });

  it('refuses anyone over the account quota with 409 saying which quota and the number', async () => {
    // prepare
    process.env[SETTING.maxEnvironments] = '2';
    await environmentIn('one');
    expect((await asBob.post('/environments', { name: 'two' })).status).toBe(202);
    const before = await snapshot(workflows);
    // act
    const answer = await asAdmin.post('/environments', { name: 'three' });
    // assess
    expectProblem(answer, 409, 'quota-exceeded');
    expect(answer.json.detail).toMatch(/already has 2 environments, .*account quota: 2/);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it("counts an admin's creation for a teammate against that teammate's quota", async () => {
    // prepare
    process.env[SETTING.maxEnvironmentsPerOwner] = '1';
    await environmentIn('alices');
    // act
    const answer = await asAdmin.post('/environments', { name: 'another', owner: userArn('alice') });
    // assess
    expectProblem(answer, 409, 'quota-exceeded');
    expect(answer.json.detail).toContain(`${userArn('alice')} already holds 1 environment`);
  });
});

describe('Idempotency-Key', () => {
  const key = { headers: { 'Idempotency-Key': '6f1c2a8e-retry-me' } };

  it('answers a repeat of the same request with the stored answer, creating and starting nothing more', async () => {
    // prepare
    const first = await asAlice.post('/environments', { name: 'once', gpu: false }, key);
    // act: same body, keys in another order
    const repeat = await asAlice.send('POST', '/environments', { ...key, json: { gpu: false, name: 'once' } });
    // assess
    expect(first.status).toBe(202);
    expect(repeat.status).toBe(202);
    expect(repeat.json).toEqual(first.json);
    expect(repeat.headers.location).toBe(first.headers.location);
    expect(repeat.headers['idempotent-replayed']).toBe('true');
    expect((await executionsFor(workflows, 'once')).provision).toHaveLength(1);
    expect(await registry.getEnvironment('once')).toMatchObject({ generation: 1 });
  });

  it('refuses the same key with a different body with 422 and changes nothing', async () => {
    // prepare
    await asAlice.post('/environments', { name: 'once' }, key);
    const before = await snapshot(workflows);
    // act
    const answer = await asAlice.post('/environments', { name: 'twice' }, key);
    // assess
    expectProblem(answer, 422, 'idempotency-key-reuse');
    expect(await snapshot(workflows)).toEqual(before);
  });

  it("scopes keys to the caller: another teammate's identical key is a new request", async () => {
    // prepare
    await asAlice.post('/environments', { name: 'alices' }, key);
    // act
    const bob = await asBob.post('/environments', { name: 'bobs' }, key);
    // assess
    expect(bob.status).toBe(202);
    expect(bob.json).toMatchObject({ name: 'bobs', owner: userArn('bob') });
  });

  it('keeps no answer for a refused request: the same key runs again once the cause is gone', async () => {
    // prepare
    process.env[SETTING.maxEnvironmentsPerOwner] = '1';
    await environmentIn('blocker');
    const refused = await asAlice.post('/environments', { name: 'later' }, key);
    await advance('blocker', 'CREATE_FAILED');
    await asAlice.delete('/environments/blocker');
    await advance('blocker', 'DELETED');
    // act
    const retried = await asAlice.post('/environments', { name: 'later' }, key);
    // assess
    expect(refused.status).toBe(409);
    expect(retried.status).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });
});

describe('DELETE status rules', () => {
  it('answers 409 while CREATING and changes nothing', async () => {
    // prepare
    await environmentIn('busy');
    const before = await snapshot(workflows);
    // act
    const answer = await asAlice.delete('/environments/busy');
    // assess
    expectProblem(answer, 409);
    expect(answer.json.detail).toMatch(/still being created/);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('answers a DELETE while DELETING with the current environment and starts nothing new', async () => {
    // prepare
    await environmentIn('going', 'READY', 'DELETING');
    const before = await snapshot(workflows);
    // act
    const answer = await asAlice.delete('/environments/going');
    // assess
    expect(answer.status).toBe(202);
    expect(answer.json).toMatchObject({ name: 'going', status: 'DELETING' });
    expect(await snapshot(workflows)).toEqual(before);
  });

  it.each([['CREATE_FAILED'], ['DELETE_FAILED']] as const)('tears down from %s at the next generation', async (status) => {
    // prepare
    const record =
      status === 'CREATE_FAILED' ? await environmentIn('failed', 'CREATE_FAILED') : await environmentIn('failed', 'READY', 'DELETING', 'DELETE_FAILED');
    // act
    const answer = await asAlice.delete('/environments/failed');
    // assess
    expect(answer.status).toBe(202);
    expect(await registry.getEnvironment('failed')).toMatchObject({ status: 'DELETING', generation: record.generation + 1 });
    expect((await executionsFor(workflows, 'failed')).teardown.at(-1)!.name).toBe(`failed-teardown-${record.generation + 1}`);
  });

  it('answers 202 with the DELETED environment and starts nothing when nothing is left', async () => {
    // prepare
    await environmentIn('gone', 'READY', 'DELETING', 'DELETED');
    const before = await snapshot(workflows);
    // act
    const plain = await asAlice.delete('/environments/gone');
    const purge = await asAlice.delete('/environments/gone', { query: { purge: 'true' } });
    // assess
    expect(plain.status).toBe(202);
    expect(plain.json.status).toBe('DELETED');
    expect(plain.headers['retry-after']).toBeUndefined();
    expect(purge.status).toBe(202);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('tears a DELETED environment down again with ?purge=true when its bucket was kept, and not without', async () => {
    // prepare
    await environmentIn('kept', 'READY', 'DELETING');
    await advance('kept', 'DELETED', { retainedBucket: bucketOf('kept') });
    const beforePlain = await snapshot(workflows);
    // act
    const plain = await asAlice.delete('/environments/kept');
    const afterPlain = await snapshot(workflows);
    const purge = await asAlice.delete('/environments/kept', { query: { purge: 'true' } });
    // assess
    expect(plain.status).toBe(202);
    expect(afterPlain).toEqual(beforePlain);
    expect(purge.status).toBe(202);
    expect(purge.json.status).toBe('DELETING');
    expect((await executionsFor(workflows, 'kept')).teardown.at(-1)).toEqual({
      name: 'kept-teardown-3',
      input: {
        environment: { name: 'kept', owner: userArn('alice'), ownerUniqueId: uniqueIdFor(userArn('alice')), spec: { maxVcpus: 64, gpu: true, gpuInstanceFamilies: ['g4dn', 'g5', 'g6'], scheduling: false }, generation: 3, purge: true, mode: 'delete' },
      },
    });
  });
});

describe('starting workflows', () => {
  it('takes an execution of the same name as this very change already started', async () => {
    // prepare: the execution the POST will start exists already (a retried request whose answer was lost)
    await workflows.sfn.send(
      new StartExecutionCommand({ stateMachineArn: workflows.provisionArn, name: 'raced-provision-1', input: '{"environment":{}}' }),
    );
    // act
    const answer = await asAlice.post('/environments', { name: 'raced' });
    // assess
    expect(answer.status).toBe(202);
    expect((await executionsFor(workflows, 'raced')).provision).toHaveLength(1);
    expect(await registry.getEnvironment('raced')).toMatchObject({ status: 'CREATING' });
  });

  it('answers 503 and records CREATE_FAILED with a reason when provisioning cannot be started', async () => {
    // prepare: a state machine that does not exist, as after a botched deployment
    process.env[SETTING.provisionStateMachineArn] = `${workflows.provisionArn}-missing`;
    // act
    const answer = await asAlice.post('/environments', { name: 'stuck' });
    // assess
    expectProblem(answer, 503, 'workflow-unavailable');
    expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
    const record = await registry.getEnvironment('stuck');
    expect(record).toMatchObject({ status: 'CREATE_FAILED', statusReason: expect.stringMatching(/^Provisioning could not be started .*nothing was created/) });
  });

  it('keeps a retained bucket recorded when re-creating it could not be started', async () => {
    // prepare
    await environmentIn('kept', 'READY', 'DELETING');
    await advance('kept', 'DELETED', { retainedBucket: bucketOf('kept') });
    process.env[SETTING.provisionStateMachineArn] = `${workflows.provisionArn}-missing`;
    // act
    const answer = await asAlice.post('/environments', { name: 'kept' });
    // assess
    expect(answer.status).toBe(503);
    expect(await registry.getEnvironment('kept')).toMatchObject({ status: 'CREATE_FAILED', retainedBucket: bucketOf('kept') });
  });

  it('answers 503 and records DELETE_FAILED when the teardown cannot be started; DELETE again then works', async () => {
    // prepare
    await environmentIn('stuck', 'READY');
    process.env[SETTING.teardownStateMachineArn] = `${workflows.teardownArn}-missing`;
    // act
    const failed = await asAlice.delete('/environments/stuck');
    const recorded = await registry.getEnvironment('stuck');
    process.env[SETTING.teardownStateMachineArn] = workflows.teardownArn;
    const retried = await asAlice.delete('/environments/stuck');
    // assess
    expectProblem(failed, 503, 'workflow-unavailable');
    expect(recorded).toMatchObject({ status: 'DELETE_FAILED', statusReason: expect.stringMatching(/Send DELETE again/) });
    expect(retried.status).toBe(202);
    expect((await executionsFor(workflows, 'stuck')).teardown.map((execution) => execution.name)).toEqual(['stuck-teardown-3']);
  });
});
