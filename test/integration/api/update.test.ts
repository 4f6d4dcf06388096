/**
 * PATCH /environments/{name} against the emulator: the handler runs in-process, the registry is the emulator's
 * DynamoDB and StartExecution reaches the emulator's Step Functions (a stand-in update state machine). A
 * resize records UPDATING and starts one update; ownership, the READY-only rule, the admin-only exemption and
 * bad bodies are refused with a problem document and change nothing; a PATCH with nothing to change starts nothing.
 */
import * as registry from '../../../lambdas/core/registry';
import type { Answer } from '../../support/api-events';
import { useEmulator } from '../../support/emulator';
import {
  ADMIN_ROLE_ARN,
  type Workflows,
  advance,
  asAdmin,
  asAlice,
  asBob,
  createStandInWorkflows,
  executionsFor,
  quietLogs,
  snapshot,
  uniqueName,
} from './fixtures';

const { context } = useEmulator({ admins: ADMIN_ROLE_ARN, maxVcpusCeiling: 64, maxEnvironmentsPerOwner: 50, maxEnvironments: 50 });
let workflows: Workflows;

beforeAll(async () => {
  quietLogs();
  workflows = await createStandInWorkflows(context);
});
afterAll(() => workflows?.sfn.destroy());

const patch = (as: typeof asAlice, name: string, json: unknown, headers: Record<string, string> = {}) =>
  as.send('PATCH', `/environments/${name}`, { json, headers });

function expectProblem(answer: Answer, status: number, type: string) {
  expect({ status: answer.status, contentType: answer.headers['content-type'], type: answer.json?.type }).toEqual({
    status,
    contentType: 'application/problem+json',
    type: `urn:mfenv:problem:${type}`,
  });
  expect(answer.json.detail.length).toBeGreaterThan(20);
}

/** A READY environment of alice's (created through the API, then moved on as the provisioning would). */
async function readyEnvironment(body: Record<string, unknown> = { maxVcpus: 16, gpu: false }): Promise<string> {
  const name = uniqueName('resize');
  expect((await asAlice.post('/environments', { name, ...body })).status).toBe(202);
  await advance(name, 'READY');
  return name;
}

describe('PATCH /environments/{name}', () => {
  it('records UPDATING at the next generation with the spec asked for, starts one update, and answers 202', async () => {
    // prepare
    const name = await readyEnvironment();
    const before = (await registry.getEnvironment(name))!;

    // act
    const answer = await patch(asAlice, name, { maxVcpus: 32 });

    // assess
    expect(answer.status).toBe(202);
    expect(answer.headers.location).toBe(`/environments/${name}`);
    expect(answer.headers['retry-after']).toBe('10');
    expect(answer.json).toMatchObject({ name, status: 'UPDATING', spec: { maxVcpus: 16, gpu: false } });
    const record = (await registry.getEnvironment(name))!;
    expect(record).toMatchObject({ status: 'UPDATING', generation: before.generation + 1, spec: before.spec });
    expect(record.pendingSpec).toEqual({ maxVcpus: 32, gpu: false, scheduling: false });
    expect(record.statusReason).toContain('maxVcpus 16 → 32');
    const { update } = await executionsFor(workflows, name);
    expect(update).toEqual([
      {
        name: `${name}-update-${before.generation + 1}`,
        input: {
          environment: expect.objectContaining({ name, mode: 'update', generation: before.generation + 1, spec: record.pendingSpec }),
        },
      },
    ]);
  });

  it("keeps serving the configuration while UPDATING: the queue and bucket stay as they are", async () => {
    // prepare
    const name = await readyEnvironment();
    expect((await patch(asAlice, name, { scheduling: true })).status).toBe(202);

    // act
    const shown = await asAlice.get(`/environments/${name}`);
    const config = await asAlice.get(`/environments/${name}/config`);

    // assess
    expect(shown.json).toMatchObject({ status: 'UPDATING', config: expect.objectContaining({ METAFLOW_BATCH_JOB_QUEUE: expect.any(String) }) });
    expect(config.status).toBe(200);
  });

  it('answers 200 with the environment and starts nothing when nothing changes', async () => {
    // prepare
    const name = await readyEnvironment();
    const before = await snapshot(workflows);

    // act
    const answer = await patch(asAlice, name, { maxVcpus: 16, gpu: false });

    // assess
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ name, status: 'READY', spec: { maxVcpus: 16, gpu: false } });
    expect(await snapshot(workflows)).toEqual(before);
  });

  it("answers 404 for another teammate's environment, as for one that does not exist, and changes nothing", async () => {
    // prepare
    const name = await readyEnvironment();
    const before = await snapshot(workflows);

    // act
    const others = await patch(asBob, name, { maxVcpus: 8 });
    const missing = await patch(asBob, uniqueName('nobody'), { maxVcpus: 8 });

    // assess
    expectProblem(others, 404, 'environment-not-found');
    expect({ status: missing.status, type: missing.json.type }).toEqual({ status: others.status, type: others.json.type });
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('lets an admin resize a teammate\'s environment', async () => {
    // prepare
    const name = await readyEnvironment();

    // act
    const answer = await patch(asAdmin, name, { gpu: true });

    // assess
    expect(answer.status).toBe(202);
    expect((await registry.getEnvironment(name))!.pendingSpec).toMatchObject({ gpu: true, gpuInstanceFamilies: expect.any(Array) });
  });

  it.each([
    ['CREATING', []],
    ['UPDATING', ['READY']],
    ['DELETE_FAILED', ['READY', 'DELETING', 'DELETE_FAILED']],
  ] as const)('answers 409 environment-state-conflict while %s, saying when to retry, and changes nothing', async (status, path) => {
    // prepare
    const name = uniqueName('busy');
    expect((await asAlice.post('/environments', { name, maxVcpus: 16 })).status).toBe(202);
    for (const next of path) await advance(name, next);
    if (status === 'UPDATING') expect((await patch(asAlice, name, { maxVcpus: 8 })).status).toBe(202);
    const before = await snapshot(workflows);

    // act
    const answer = await patch(asAlice, name, { maxVcpus: 32 });

    // assess
    expectProblem(answer, 409, 'environment-state-conflict');
    expect(answer.json.detail).toContain(`is ${status}`);
    expect(answer.json.detail).toMatch(/again|DELETE/);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('makes a DELETE wait (409) while the update it recorded a moment ago may still be starting', async () => {
    // prepare: UPDATING as a PATCH records it, its workflow not (yet) visible
    const name = await readyEnvironment();
    const record = (await registry.getEnvironment(name))!;
    await registry.transition(name, {
      from: ['READY'],
      generation: record.generation,
      to: 'UPDATING',
      statusReason: null,
      set: { generation: record.generation + 1, pendingSpec: { ...record.spec, maxVcpus: 32 } },
    });
    const before = await snapshot(workflows);

    // act
    const answer = await asAlice.delete(`/environments/${name}`);

    // assess
    expectProblem(answer, 409, 'environment-state-conflict');
    expect(answer.json.detail).toContain('being resized');
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('refuses idleExpiryExempt from a teammate with 403 and changes nothing', async () => {
    // prepare
    const name = await readyEnvironment();
    const before = await snapshot(workflows);

    // act
    const answer = await patch(asAlice, name, { idleExpiryExempt: true, maxVcpus: 32 });

    // assess
    expectProblem(answer, 403, 'forbidden');
    expect(answer.json.detail).toContain('idleExpiryExempt');
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('records idleExpiryExempt from an admin on the record, READY at the same generation, starting nothing', async () => {
    // prepare
    const name = await readyEnvironment();
    const before = (await registry.getEnvironment(name))!;
    const executions = (await snapshot(workflows)).updates;

    // act
    const answer = await patch(asAdmin, name, { idleExpiryExempt: true });

    // assess
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ status: 'READY', idleExpiryExempt: true });
    const record = (await registry.getEnvironment(name))!;
    expect(record).toMatchObject({ status: 'READY', generation: before.generation, idleExpiryExempt: true, spec: before.spec });
    expect((await snapshot(workflows)).updates).toBe(executions);
    // the owner sees it too, and so knows the environment will not expire
    expect((await asAlice.get(`/environments/${name}`)).json.idleExpiryExempt).toBe(true);
  });

  it.each([
    ['no field at all', {}, 'body', 'at least one of'],
    ['an unknown field', { maxVcpus: 8, name: 'other' }, 'name', 'is not accepted here'],
    ['maxVcpus over the ceiling, refused as a create refuses it', { maxVcpus: 65 }, 'maxVcpus', 'must be at most 64, the ceiling set for this deployment'],
    ['maxVcpus of 0', { maxVcpus: 0 }, 'maxVcpus', 'must be at least 1'],
    ['a gpu that is not a boolean', { gpu: 'yes' }, 'gpu', 'must be true or false'],
    ['idleExpiryExempt that is not a boolean', { idleExpiryExempt: 1 }, 'idleExpiryExempt', 'must be true or false'],
  ])('answers 400 for %s and changes nothing', async (_case, body, field, message) => {
    // prepare
    const name = await readyEnvironment();
    const before = await snapshot(workflows);

    // act
    const answer = await patch(asAlice, name, body);

    // assess
    expectProblem(answer, 400, 'validation');
    expect(answer.json.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field, message: expect.stringContaining(message) })]));
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('replays the answer to a retried PATCH with the same Idempotency-Key, starting one update only', async () => {
    // prepare
    const name = await readyEnvironment();
    const key = `resize-${name}`;

    // act
    const first = await patch(asAlice, name, { maxVcpus: 24 }, { 'idempotency-key': key });
    const again = await patch(asAlice, name, { maxVcpus: 24 }, { 'idempotency-key': key });
    const otherBody = await patch(asAlice, name, { maxVcpus: 40 }, { 'idempotency-key': key });

    // assess
    expect(first.status).toBe(202);
    expect({ status: again.status, replayed: again.headers['idempotent-replayed'], body: again.json }).toEqual({
      status: 202,
      replayed: 'true',
      body: first.json,
    });
    expectProblem(otherBody, 422, 'idempotency-key-reuse');
    expect((await executionsFor(workflows, name)).update).toHaveLength(1);
  });
});
