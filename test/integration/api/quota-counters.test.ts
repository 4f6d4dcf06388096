/**
 * Admission control under concurrency, against the emulator: the quota counters in the registry table
 * change in the same transaction as the record that makes an environment live (POST) or not (the
 * teardown's finishTeardown step), so requests arriving together never get past a quota, a replayed step
 * never counts twice, and a finished teardown frees its place.
 */
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { handler } from '../../../lambdas/api/handler';
import { dynamoClient } from '../../../lambdas/core/clients';
import * as registry from '../../../lambdas/core/registry';
import { SETTING, settings } from '../../../lambdas/core/settings';
import { handler as registryStep } from '../../../lambdas/steps/registry-steps';
import { type Answer, apiCaller, userArn } from '../../support/api-events';
import { useEmulator } from '../../support/emulator';
import {
  advance,
  asAlice,
  asBob,
  bucketOf,
  executionsFor,
  useFreshRegistryAndWorkflows,
} from './fixtures';

const emulator = useEmulator({ maxEnvironmentsPerOwner: 10, maxEnvironments: 40 });
const workflows = useFreshRegistryAndWorkflows(emulator);

const ALICE = userArn('alice');
const statusesOf = (answers: Answer[]) => answers.map((answer) => answer.status).sort();
const problemTypesOf = (answers: Answer[]) => answers.filter((answer) => answer.status !== 202).map((answer) => answer.json.type);

/** The live environments in the registry, by reading every record (what the counters must agree with). */
async function liveRecords(owner?: string) {
  const records = await registry.listEnvironments({ owner, includeDeleted: true });
  return records.filter((record) => record.status !== 'DELETED');
}

/** Runs the teardown's last step as the workflow would: with the input its execution was started with. */
async function finishTeardown(name: string) {
  const started = (await executionsFor(workflows, name)).teardown.at(-1)!;
  const payload = { step: 'finishTeardown', environment: started.input.environment, bucket: { retained: false, objectCount: 0 } };
  return registryStep(JSON.parse(JSON.stringify(payload)), {} as never);
}

/** Creates `name` for alice and makes it READY, then sends DELETE: the teardown now runs. */
async function beingDeleted(name: string) {
  expect((await asAlice.post('/environments', { name })).status).toBe(202);
  await advance(name, 'READY');
  expect((await asAlice.delete(`/environments/${name}`)).status).toBe(202);
}

describe('concurrent creates', () => {
  it('admits exactly as many as the account quota allows, from six teammates at the same instant', async () => {
    // prepare
    process.env[SETTING.maxEnvironments] = '3';
    const teammates = ['ana', 'ben', 'cho', 'dev', 'eli', 'fay'];

    // act
    const answers = await Promise.all(
      teammates.map((teammate) => apiCaller(handler, userArn(teammate)).post('/environments', { name: `env-${teammate}` })),
    );

    // assess
    expect(statusesOf(answers)).toEqual([202, 202, 202, 409, 409, 409]);
    expect(problemTypesOf(answers)).toEqual(Array(3).fill('urn:mfenv:problem:quota-exceeded'));
    for (const refused of answers.filter((answer) => answer.status === 409)) {
      expect(refused.json.detail).toMatch(/The team already has 3 environments, .*account quota: 3/);
    }
    expect(await liveRecords()).toHaveLength(3);
    expect((await registry.liveCounts(userArn('ana'))).account).toBe(3);
    const admitted = answers.filter((answer) => answer.status === 202).map((answer) => answer.json.owner as string);
    for (const owner of admitted) expect((await registry.liveCounts(owner)).owner).toBe(1);
  });

  it("admits exactly as many of one teammate's creates as the per-teammate quota allows", async () => {
    // prepare
    process.env[SETTING.maxEnvironmentsPerOwner] = '2';
    const names = ['one', 'two', 'three', 'four', 'five'];

    // act
    const answers = await Promise.all(names.map((name) => asAlice.post('/environments', { name })));

    // assess
    expect(statusesOf(answers)).toEqual([202, 202, 409, 409, 409]);
    expect(problemTypesOf(answers)).toEqual(Array(3).fill('urn:mfenv:problem:quota-exceeded'));
    for (const refused of answers.filter((answer) => answer.status === 409)) {
      expect(refused.json.detail).toMatch(/You already hold 2 environments, .*quota per teammate: 2/);
    }
    expect(await liveRecords(ALICE)).toHaveLength(2);
    expect(await registry.liveCounts(ALICE)).toEqual({ account: 2, owner: 2 });
    expect((await asBob.post('/environments', { name: 'bobs' })).status).toBe(202);
  });

  it('lets one of several creates of the same name win, answering the others name taken, counting one', async () => {
    // prepare
    const callers = [asAlice, asBob, asAlice, asBob];

    // act
    const answers = await Promise.all(callers.map((caller) => caller.post('/environments', { name: 'contested' })));

    // assess
    expect(statusesOf(answers)).toEqual([202, 409, 409, 409]);
    expect(problemTypesOf(answers)).toEqual(Array(3).fill('urn:mfenv:problem:name-taken'));
    const winner = answers.find((answer) => answer.status === 202)!.json.owner as string;
    expect(await registry.getEnvironment('contested')).toMatchObject({ owner: winner, status: 'CREATING', generation: 1 });
    expect(await registry.liveCounts(winner)).toEqual({ account: 1, owner: 1 });
    expect((await registry.liveCounts(winner === ALICE ? userArn('bob') : ALICE)).owner).toBe(0);
  });
});

describe('a finished teardown', () => {
  it('frees its place: refused while DELETING, admitted once finishTeardown recorded DELETED', async () => {
    // prepare
    process.env[SETTING.maxEnvironmentsPerOwner] = '1';
    await beingDeleted('first');
    const whileDeleting = await asAlice.post('/environments', { name: 'second' });

    // act
    await finishTeardown('first');
    const afterwards = await asAlice.post('/environments', { name: 'second' });

    // assess
    expect(whileDeleting.status).toBe(409);
    expect(whileDeleting.json.type).toBe('urn:mfenv:problem:quota-exceeded');
    expect(afterwards.status).toBe(202);
    expect(await registry.getEnvironment('first')).toMatchObject({ status: 'DELETED' });
    expect(await registry.liveCounts(ALICE)).toEqual({ account: 1, owner: 1 });
  });

  it('counts down once when finishTeardown runs twice, or twice at once (a replayed step)', async () => {
    // prepare
    await beingDeleted('going');
    expect((await asAlice.post('/environments', { name: 'staying' })).status).toBe(202);
    const before = await registry.liveCounts(ALICE);

    // act
    await finishTeardown('going');
    await finishTeardown('going');
    await Promise.all([finishTeardown('going'), finishTeardown('going')]);

    // assess
    expect(before).toEqual({ account: 2, owner: 2 });
    expect(await registry.liveCounts(ALICE)).toEqual({ account: 1, owner: 1 });
    expect(await registry.getEnvironment('going')).toMatchObject({ status: 'DELETED', generation: 2 });
  });

  it('counts a purge of a kept bucket while it runs, and not once it is DELETED again', async () => {
    // prepare
    await beingDeleted('kept');
    await advance('kept', 'DELETED', { retainedBucket: bucketOf('kept') });
    const afterDelete = await registry.liveCounts(ALICE);

    // act
    expect((await asAlice.delete('/environments/kept', { query: { purge: 'true' } })).status).toBe(202);
    const whilePurging = await registry.liveCounts(ALICE);
    await finishTeardown('kept');

    // assess
    expect(afterDelete).toEqual({ account: 0, owner: 0 });
    expect(whilePurging).toEqual({ account: 1, owner: 1 });
    expect(await registry.liveCounts(ALICE)).toEqual({ account: 0, owner: 0 });
    expect(await registry.getEnvironment('kept')).toMatchObject({ status: 'DELETED', generation: 3, retainedBucket: null });
  });

  it('still records DELETED when a counter is already at 0, leaving it at 0', async () => {
    // prepare: the counters lost (as for a record written before they existed)
    await beingDeleted('uncounted');
    for (const pk of [registry.QUOTA_COUNTER_KEYS.account, registry.QUOTA_COUNTER_KEYS.owner(ALICE)]) {
      await dynamoClient().send(new DeleteCommand({ TableName: settings.tableName(), Key: { pk } }));
    }

    // act
    const answer = await finishTeardown('uncounted');

    // assess
    expect(answer).toEqual({ status: 'DELETED' });
    expect(await registry.getEnvironment('uncounted')).toMatchObject({ status: 'DELETED' });
    expect(await registry.liveCounts(ALICE)).toEqual({ account: 0, owner: 0 });
  });
});
