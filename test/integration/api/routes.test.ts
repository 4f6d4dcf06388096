/**
 * Every route of the API against the emulator: the handler runs in-process, the registry is the emulator's
 * DynamoDB, and StartExecution goes to the emulator's Step Functions. Happy paths, ownership on every
 * route, and bad requests that must change nothing.
 */
import * as registry from '../../../lambdas/core/registry';
import { settings } from '../../../lambdas/core/settings';
import { handler } from '../../../lambdas/api/handler';
import { type Answer, apiCaller, apiEvent, call, uniqueIdFor, userArn } from '../../support/api-events';
import { useEmulator } from '../../support/emulator';
import {
  ADMIN_ROLE_ARN,
  ADMIN_SESSION_ARN,
  type Workflows,
  advance,
  asAdmin,
  asAlice,
  asBob,
  bucketOf,
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

function expectProblem(answer: Answer, status: number) {
  expect({ status: answer.status, contentType: answer.headers['content-type'] }).toEqual({
    status,
    contentType: 'application/problem+json',
  });
  expect(answer.json).toMatchObject({ status, title: expect.any(String), detail: expect.any(String), instance: expect.any(String) });
  expect(answer.json.detail.length).toBeGreaterThan(20);
}

/** A problem without the parts that differ per request, to compare two answers. */
const comparable = (answer: Answer) => ({ status: answer.status, title: answer.json.title, type: answer.json.type });

/** Creates an environment for `as` (default: alice) and returns its name. */
async function created(as = asAlice, body: Record<string, unknown> = {}): Promise<string> {
  const name = uniqueName('env');
  const answer = await as.post('/environments', { name, ...body });
  expect(answer.status).toBe(202);
  return name;
}

describe('POST /environments', () => {
  it('records the environment CREATING, starts provisioning, and answers 202 with Location and Retry-After', async () => {
    // prepare
    const name = uniqueName('alice');

    // act
    const answer = await asAlice.post('/environments', { name, maxVcpus: 16, gpu: false });

    // assess: the answer
    expect(answer.status).toBe(202);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.headers.location).toBe(`/environments/${name}`);
    expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
    expect(answer.json).toEqual({
      name,
      owner: userArn('alice'),
      status: 'CREATING',
      statusReason: null,
      region: settings.region(),
      spec: { maxVcpus: 16, gpu: false, scheduling: false },
      resources: {
        bucket: bucketOf(name),
        jobQueueArn: `arn:aws:batch:us-east-1:123456789012:job-queue/mfenv-${name}`,
        computeEnvironmentArn: `arn:aws:batch:us-east-1:123456789012:compute-environment/mfenv-${name}`,
        jobRoleArn: `arn:aws:iam::123456789012:role/mfenv/mfenv-${name}-job`,
        instanceProfileArn: `arn:aws:iam::123456789012:instance-profile/mfenv/mfenv-${name}-instance`,
        accessRoleArn: `arn:aws:iam::123456789012:role/mfenv/mfenv-${name}-access`,
      },
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    // assess: the registry and the workflow
    expect(await registry.getEnvironment(name)).toMatchObject({ status: 'CREATING', generation: 1, owner: userArn('alice'), config: null });
    expect(await executionsFor(workflows, name)).toEqual({
      provision: [
        {
          name: `${name}-provision-1`,
          input: {
            environment: { name, owner: userArn('alice'), ownerUniqueId: uniqueIdFor(userArn('alice')), spec: { maxVcpus: 16, gpu: false, scheduling: false }, generation: 1 },
          },
        },
      ],
      teardown: [],
      update: [],
    });
  });

  it('fills in the defaults: the vCPU ceiling and GPU families', async () => {
    // prepare
    const name = uniqueName('defaults');
    // act
    const answer = await asAlice.post('/environments', { name });
    // assess
    expect(answer.status).toBe(202);
    expect(answer.json.spec).toMatchObject({ maxVcpus: 64, gpu: true, gpuInstanceFamilies: ['g4dn', 'g5', 'g6'] });
  });

  it('lets an admin create an environment for a teammate, who then owns it', async () => {
    // prepare
    const name = uniqueName('for-bob');
    // act
    const answer = await asAdmin.post('/environments', { name, owner: userArn('bob') });
    const bobs = await asBob.get(`/environments/${name}`);
    // assess
    expect(answer.status).toBe(202);
    expect(answer.json.owner).toBe(userArn('bob'));
    expect(bobs.status).toBe(200);
    expect((await executionsFor(workflows, name)).provision[0]!.input.environment.owner).toBe(userArn('bob'));
  });

  it('records a role session as its role: a later session of the same role owns the environment', async () => {
    // prepare
    const monday = apiCaller(handler, 'arn:aws:sts::123456789012:assumed-role/DataScience/monday');
    const tuesday = apiCaller(handler, 'arn:aws:sts::123456789012:assumed-role/DataScience/tuesday');
    const name = uniqueName('role');
    // act
    const answer = await monday.post('/environments', { name });
    const later = await tuesday.get(`/environments/${name}`);
    // assess
    expect(answer.json.owner).toBe('arn:aws:iam::123456789012:role/DataScience');
    expect(later.status).toBe(200);
  });

  it.each([
    ['malformed JSON', { body: '{"name": "alice",', headers: { 'Content-Type': 'application/json' } }, 400],
    ['no JSON content type', { body: '{"name": "alice"}' }, 415],
    ['a name of the wrong type', { json: { name: 5 } }, 400],
    ['maxVcpus of the wrong type', { json: { name: 'alice', maxVcpus: 'lots' } }, 400],
    ['gpu of the wrong type', { json: { name: 'alice', gpu: 'yes' } }, 400],
    ['maxVcpus over the ceiling', { json: { name: 'alice', maxVcpus: 65 } }, 400],
    ['an upper-case name', { json: { name: 'Alice' } }, 400],
    ['a name ending in a hyphen', { json: { name: 'alice-' } }, 400],
    ['a two-letter name', { json: { name: 'al' } }, 400],
    ['an unknown field', { json: { name: 'alice', color: 'red' } }, 400],
    ['a JSON array', { json: ['alice'] }, 400],
    ['an owner named by a teammate', { json: { name: 'alice', owner: userArn('bob') } }, 403],
    ['a query parameter', { json: { name: 'alice' }, query: { dryRun: 'true' } }, 400],
  ])('refuses %s with a problem and changes nothing', async (_case, request, status) => {
    // prepare
    const before = await snapshot(workflows);
    // act
    const answer = await asAlice.send('POST', '/environments', request);
    // assess
    expectProblem(answer, status);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('refuses a request without a caller identity with 401 and changes nothing', async () => {
    // prepare
    const before = await snapshot(workflows);
    // act
    const answer = await call(handler, apiEvent('POST', '/environments', { caller: null, json: { name: 'nobody' } }));
    // assess
    expectProblem(answer, 401);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('lists every offending field of a bad body', async () => {
    // act
    const answer = await asAlice.post('/environments', { name: 'A', maxVcpus: 1000, gpu: 'no', color: 'red' });
    // assess
    expectProblem(answer, 400);
    expect(answer.json.errors).toEqual([
      { field: 'name', message: expect.stringMatching(/^must be 3 to 32 characters/) },
      { field: 'maxVcpus', message: 'must be at most 64, the ceiling set for this deployment' },
      { field: 'gpu', message: 'must be true or false' },
      { field: 'color', message: 'is not accepted here (allowed: name, maxVcpus, gpu, owner)' },
    ]);
  });
});

describe('GET /environments', () => {
  it("shows a teammate only their own environments, an admin everyone's, and an admin one teammate's on request", async () => {
    // prepare
    const alices = await created(asAlice);
    const bobs = await created(asBob);

    // act
    const aliceList = await asAlice.get('/environments');
    const bobList = await asBob.get('/environments');
    const adminList = await asAdmin.get('/environments');
    const adminBobList = await asAdmin.get('/environments', { query: { owner: userArn('bob') } });

    // assess
    const namesIn = (answer: Answer) => answer.json.environments.map((environment: { name: string }) => environment.name);
    expect(aliceList.status).toBe(200);
    expect(namesIn(aliceList)).toContain(alices);
    expect(namesIn(aliceList)).not.toContain(bobs);
    expect(new Set(aliceList.json.environments.map((environment: { owner: string }) => environment.owner))).toEqual(new Set([userArn('alice')]));
    expect(namesIn(bobList)).toContain(bobs);
    expect(namesIn(bobList)).not.toContain(alices);
    expect(namesIn(adminList)).toEqual(expect.arrayContaining([alices, bobs]));
    expect(namesIn(adminBobList)).toContain(bobs);
    expect(namesIn(adminBobList)).not.toContain(alices);
  });

  it("refuses a teammate's ?owner= for someone else with 403, and accepts it for themselves", async () => {
    // prepare
    await created(asAlice);
    // act
    const other = await asBob.get('/environments', { query: { owner: userArn('alice') } });
    const self = await asAlice.get('/environments', { query: { owner: userArn('alice') } });
    // assess
    expectProblem(other, 403);
    expect(self.status).toBe(200);
    expect(self.json.environments.length).toBeGreaterThan(0);
  });

  it('leaves out DELETED environments, except those whose bucket was kept with data', async () => {
    // prepare
    const gone = await created();
    const kept = await created();
    for (const name of [gone, kept]) {
      await advance(name, 'READY');
      await asAlice.delete(`/environments/${name}`);
    }
    await advance(gone, 'DELETED');
    await advance(kept, 'DELETED', { retainedBucket: bucketOf(kept) });

    // act
    const list = await asAlice.get('/environments');

    // assess
    const byName = new Map(list.json.environments.map((environment: { name: string }) => [environment.name, environment]));
    expect(byName.has(gone)).toBe(false);
    expect(byName.get(kept)).toMatchObject({ status: 'DELETED', retainedBucket: bucketOf(kept) });
  });
});

describe('GET /environments/{name}', () => {
  it('shows the owner and admins the environment; anyone else gets the same 404 as for no environment at all', async () => {
    // prepare
    const name = await created();

    // act
    const owner = await asAlice.get(`/environments/${name}`);
    const admin = await asAdmin.get(`/environments/${name}`);
    const stranger = await asBob.get(`/environments/${name}`);
    const nothing = await asBob.get(`/environments/${uniqueName('never-created')}`);

    // assess
    expect(owner.status).toBe(200);
    expect(owner.json).toMatchObject({ name, owner: userArn('alice'), status: 'CREATING' });
    expect(admin.status).toBe(200);
    expect(admin.json).toEqual(owner.json);
    expectProblem(stranger, 404);
    expect(comparable(stranger)).toEqual(comparable(nothing));
    expect(stranger.body).not.toContain('alice');
  });

  it('includes the Metaflow payload once READY, not before', async () => {
    // prepare
    const name = await created();
    const creating = await asAlice.get(`/environments/${name}`);
    await advance(name, 'READY');
    // act
    const ready = await asAlice.get(`/environments/${name}`);
    // assess
    expect(creating.json.config).toBeUndefined();
    expect(ready.json.status).toBe('READY');
    expect(ready.json.config.METAFLOW_BATCH_JOB_QUEUE).toBe(ready.json.resources.jobQueueArn);
  });
});

describe('GET /environments/{name}/config', () => {
  it('answers exactly the Metaflow config file once READY, as an attachment named for the profile', async () => {
    // prepare
    const name = await created();
    const record = await advance(name, 'READY');

    // act
    const answer = await asAlice.get(`/environments/${name}/config`);

    // assess
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.headers['content-disposition']).toBe(`attachment; filename="config_${name}.json"`);
    expect(answer.json).toEqual(record.config);
    expect(Object.keys(answer.json).every((key) => key.startsWith('METAFLOW_'))).toBe(true);
  });

  it('answers 409 while the environment is not READY', async () => {
    // prepare
    const name = await created();
    // act
    const answer = await asAlice.get(`/environments/${name}/config`);
    // assess
    expectProblem(answer, 409);
    expect(answer.json.detail).toMatch(/is CREATING/);
  });

  it("hides another teammate's config (404) and serves it to an admin", async () => {
    // prepare
    const name = await created();
    await advance(name, 'READY');
    // act
    const stranger = await asBob.get(`/environments/${name}/config`);
    const admin = await asAdmin.get(`/environments/${name}/config`);
    // assess
    expectProblem(stranger, 404);
    expect(admin.status).toBe(200);
    expect(admin.json.METAFLOW_USER).toBe(name);
  });
});

describe('DELETE /environments/{name}', () => {
  it('moves a READY environment to DELETING at the next generation and starts its teardown', async () => {
    // prepare
    const name = await created(asAlice, { maxVcpus: 8 });
    await advance(name, 'READY');

    // act
    const answer = await asAlice.delete(`/environments/${name}`);

    // assess
    expect(answer.status).toBe(202);
    expect(answer.headers.location).toBe(`/environments/${name}`);
    expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
    expect(answer.json).toMatchObject({ name, status: 'DELETING' });
    expect(await registry.getEnvironment(name)).toMatchObject({ status: 'DELETING', generation: 2 });
    expect((await executionsFor(workflows, name)).teardown).toEqual([
      {
        name: `${name}-teardown-2`,
        input: {
          environment: {
            name,
            owner: userArn('alice'),
            ownerUniqueId: uniqueIdFor(userArn('alice')),
            // With gpu, the spec carries the GPU families preflight found offered (all of the emulator's).
            spec: expect.objectContaining({ maxVcpus: 8, gpu: true, gpuInstanceFamilies: ['g4dn', 'g5', 'g6'] }),
            generation: 2,
            purge: false,
            mode: 'delete',
          },
        },
      },
    ]);
  });

  it('passes ?purge=true on to the teardown', async () => {
    // prepare
    const name = await created();
    await advance(name, 'READY');
    // act
    const answer = await asAlice.delete(`/environments/${name}`, { query: { purge: 'true' } });
    // assess
    expect(answer.status).toBe(202);
    expect((await executionsFor(workflows, name)).teardown[0]!.input.environment.purge).toBe(true);
  });

  it('treats a user deleted and re-created under the same name as someone else (404 on every route)', async () => {
    // prepare: alice creates an environment; later a new IAM user "alice" (another unique id) calls
    const name = uniqueName('recreated');
    expect((await asAlice.post('/environments', { name })).status).toBe(202);
    const newAlice = { identityUser: 'AIDANEWALICE00000001' };

    // act
    const get = await asAlice.get(`/environments/${name}`, newAlice);
    const config = await asAlice.get(`/environments/${name}/config`, newAlice);
    const remove = await asAlice.delete(`/environments/${name}`, newAlice);
    const list = await asAlice.get('/environments', newAlice);

    // assess
    expect([get.status, config.status, remove.status]).toEqual([404, 404, 404]);
    expect(list.json.environments.map((environment: { name: string }) => environment.name)).not.toContain(name);
    expect((await asAlice.get(`/environments/${name}`)).status).toBe(200);
    expect(await registry.getEnvironment(name)).toMatchObject({ status: 'CREATING', ownerUniqueId: uniqueIdFor(userArn('alice')) });
  });

  it("refuses to delete another teammate's environment with 404 and changes nothing", async () => {
    // prepare
    const name = await created();
    await advance(name, 'READY');
    const before = await snapshot(workflows);
    // act
    const answer = await asBob.delete(`/environments/${name}`);
    // assess
    expectProblem(answer, 404);
    expect(await snapshot(workflows)).toEqual(before);
  });

  it("lets an admin delete a teammate's environment; the teardown keeps the teammate as owner", async () => {
    // prepare
    const name = await created();
    await advance(name, 'READY');
    // act
    const answer = await asAdmin.delete(`/environments/${name}`);
    // assess
    expect(answer.status).toBe(202);
    expect((await executionsFor(workflows, name)).teardown[0]!.input.environment.owner).toBe(userArn('alice'));
  });

  it('answers 400 for a bad name or a bad purge value and changes nothing', async () => {
    // prepare
    const name = await created();
    await advance(name, 'READY');
    const before = await snapshot(workflows);
    // act
    const badName = await asAlice.delete('/environments/Bad_Name');
    const badPurge = await asAlice.delete(`/environments/${name}`, { query: { purge: '1' } });
    // assess
    expectProblem(badName, 400);
    expectProblem(badPurge, 400);
    expect(await snapshot(workflows)).toEqual(before);
  });
});

describe('the admin list', () => {
  it('takes an admin role with an IAM path to match callers arriving as sessions of that role', async () => {
    // prepare
    const name = await created(asBob);
    const otherSession = apiCaller(handler, ADMIN_SESSION_ARN.replace('ops-on-call', 'someone-else'));
    const lookalike = apiCaller(handler, 'arn:aws:sts::123456789012:assumed-role/PlatformAdmins/ops');
    // act
    const admin = await otherSession.get(`/environments/${name}`);
    const notAdmin = await lookalike.get(`/environments/${name}`);
    // assess
    expect(admin.status).toBe(200);
    expectProblem(notAdmin, 404);
  });
});
