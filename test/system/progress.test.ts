/**
 * Where a running workflow is, as a teammate sees it through local mode's signed HTTP API: while CREATING
 * or DELETING, GET /environments/{name} and GET /environments carry `progress`, a step of the progress table
 * (lambdas/core/progress.ts) and since when, read from the execution's history; at rest there is none.
 * Every Wait state lasts 1.5 s here, so the poll loops of both workflows can be watched.
 */
import type { LocalUser } from '../../infra/local/runtime';
import { WORKFLOW_STEPS } from '../../lambdas/core/progress';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, apiClient } from '../support/signed-client';

process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
jest.setTimeout(300_000);

const local = useLocalMode({ waitMs: 1_500 });
let alice: LocalUser;
let asAlice: ApiClient;

beforeAll(async () => {
  alice = await local.local.createUser('alice');
  asAlice = apiClient(local.local.apiUrl, alice);
}, 60_000);

interface Observation {
  status: string;
  progress?: { step: string; startedAt: string };
  /** The same environment as the list showed it, read just after. */
  listed?: { step: string; startedAt: string };
}

/** Reads the environment (and the list) every 100 ms while its status is `passing`; bounded. */
async function watchWhile(name: string, passing: string): Promise<{ seen: Observation[]; after: any }> {
  const seen: Observation[] = [];
  const deadline = Date.now() + 120_000;
  for (;;) {
    const one = await asAlice.get(`/environments/${name}`);
    expect(one.status).toBe(200);
    if (one.json.status !== passing) return { seen, after: one.json };
    const list = await asAlice.get('/environments');
    const listed = list.json.environments.find((environment: { name: string }) => environment.name === name);
    seen.push({ status: one.json.status, progress: one.json.progress, listed: listed?.status === passing ? listed.progress : undefined });
    if (Date.now() > deadline) throw new Error(`${name} was still ${passing} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the observations say, step by step: the steps in the order seen, and each one's start times. */
function stepsSeen(seen: Observation[]) {
  const progress = seen.flatMap((observation) => (observation.progress ? [observation.progress] : []));
  const order = progress.map((entry) => entry.step).filter((step, index, steps) => index === 0 || steps[index - 1] !== step);
  const startsOf = (step: string) => new Set(progress.filter((entry) => entry.step === step).map((entry) => entry.startedAt));
  return { progress, order, startsOf };
}

const sentences = (machine: keyof typeof WORKFLOW_STEPS) => WORKFLOW_STEPS[machine].map((step) => step.sentence);

describe('the progress of a running workflow, through the local HTTP API', () => {
  it('shows the step of the provisioning workflow while CREATING, and none once READY', async () => {
    // prepare
    const before = Date.now();

    // act
    const created = await asAlice.post('/environments', { name: 'alice', maxVcpus: 4, gpu: false });
    const { seen, after: ready } = await watchWhile('alice', 'CREATING');

    // assess: every read while CREATING said where provisioning was, in a sentence of the table
    expect(created.status).toBe(202);
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.filter((observation) => observation.progress === undefined)).toEqual([]);
    const { progress, order, startsOf } = stepsSeen(seen);
    for (const entry of progress) {
      expect(sentences('provision')).toContain(entry.step);
      expect(new Date(entry.startedAt).toISOString()).toBe(entry.startedAt);
      expect(Date.parse(entry.startedAt)).toBeGreaterThanOrEqual(before - 1_000);
      expect(Date.parse(entry.startedAt)).toBeLessThanOrEqual(Date.now());
    }
    // the slow waits were seen, in the order of the workflow, each dated once from the start of its loop
    expect(order).toEqual(expect.arrayContaining(['Waiting for the compute environment to become valid', 'Waiting for the job queue to become valid']));
    const positions = order.map((step) => sentences('provision').indexOf(step));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    for (const step of order) expect(startsOf(step).size).toBe(1);
    // the list carries it too
    expect(seen.filter((observation) => observation.listed !== undefined).length).toBeGreaterThan(0);
    for (const { listed } of seen) if (listed) expect(sentences('provision')).toContain(listed.step);
    // at rest: no progress
    expect(ready.status).toBe('READY');
    expect(ready).not.toHaveProperty('progress');
    const list = await asAlice.get('/environments');
    expect(list.json.environments.find((environment: { name: string }) => environment.name === 'alice')).not.toHaveProperty('progress');
  });

  it('shows the step of the teardown while DELETING, and none once DELETED', async () => {
    // prepare
    expect((await asAlice.get('/environments/alice')).json.status).toBe('READY');

    // act
    const deleting = await asAlice.delete('/environments/alice');
    const { seen, after: deleted } = await watchWhile('alice', 'DELETING');

    // assess
    expect(deleting.status).toBe(202);
    if (deleting.json.progress) expect(sentences('teardown')).toContain(deleting.json.progress.step);
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.filter((observation) => observation.progress === undefined)).toEqual([]);
    const { progress, order, startsOf } = stepsSeen(seen);
    for (const entry of progress) expect(sentences('teardown')).toContain(entry.step);
    expect(order).toEqual(
      expect.arrayContaining(['Waiting for the job queue to be disabled', 'Waiting for the compute environment to be deleted']),
    );
    const positions = order.map((step) => sentences('teardown').indexOf(step));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    for (const step of order) expect(startsOf(step).size).toBe(1);
    expect(deleted.status).toBe('DELETED');
    expect(deleted).not.toHaveProperty('progress');
  });
});
