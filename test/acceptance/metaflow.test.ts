/**
 * Acceptance: the real Metaflow client (the pinned PyPI package) works with nothing but the payload an
 * environment returns. Everything goes through local mode as a teammate would use it: SigV4-signed API
 * calls with the teammate's own IAM user keys (which hold no policy at all), the ASL workflows, the
 * emulator; Metaflow runs under an AWS profile that assumes the environment's access role.
 *
 *   two teammates POST an environment each → READY → GET .../config saved as config_<name>.json
 *   → `python shard_flow.py run` on the S3 datastore → read back with the Client API → every bucket listed
 *   → `python shard_flow.py run --with batch` → what Metaflow submitted to Batch inspected
 *   → the same proofs with a broken payload must fail
 *   → DELETE keeps a bucket that holds data and says so; DELETE ?purge=true removes it.
 *
 * The proofs live in ./proofs.ts; running Python in test/support/metaflow.ts.
 *
 * What the emulator cannot show, and so this test does not claim:
 * - Batch jobs are accepted but no container runs: a job is SUCCEEDED the moment it is submitted, so a
 *   `--with batch` run ends after its first step (Metaflow finds no task output) and CloudWatch log tailing
 *   is never reached. The proof is what Metaflow submitted: queue, job definition, job role, task variables.
 * - IAM is not enforced in local mode. moto can enforce it, but it names Batch actions in lower case
 *   (batch:describejobqueues) and matches them case-sensitively against resource "*", so even a correct
 *   least-privilege access role policy is denied every Batch call; and it evaluates no trust policy. Who
 *   may assume the role, and what the role may do, are proven offline instead
 *   (test/unit/core/access-simulation.test.ts).
 * - A payload without METAFLOW_S3_ENDPOINT_URL sends Metaflow to the real S3, which this machine may not
 *   reach (it keeps retrying for over a minute), so that key is proven positively only: S3 gets no SDK
 *   endpoint here, so every S3 call of Metaflow reaches the emulator through that key or fails.
 */
import { BatchClient, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { IAMClient, ListAttachedUserPoliciesCommand, ListUserPoliciesCommand } from '@aws-sdk/client-iam';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { emulatorClientConfig } from '../../infra/local/bootstrap';
import type { LocalUser } from '../../infra/local/runtime';
import { useLocalMode } from '../support/local-mode';
import { callerArnOf, createMetaflowProfile, type MetaflowProfile, metaflowVersion } from '../support/metaflow';
import { type ApiClient, apiClient } from '../support/signed-client';
import { expectedSysroot, listEveryObject, ProofFailure, proveBatchSubmission, proveLocalRun, type ProvisionedEnvironment } from './proofs';
import { LOCAL_PAYLOAD_KEYS } from '../support/payload';

// The handlers log every step; this test reports its own figures instead.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
jest.setTimeout(240_000);

const context = useLocalMode();

interface EnvironmentResource extends ProvisionedEnvironment {
  status: string;
  statusReason: string | null;
  owner: string;
  resources: ProvisionedEnvironment['resources'] & { accessRoleArn: string; computeEnvironmentArn: string };
  config?: Record<string, string>;
  retainedBucket?: string;
}

interface Teammate {
  name: string;
  /** Each teammate runs a different seed, so their artifacts differ (Metaflow stores content-addressed). */
  seed: number;
  user: LocalUser;
  api: ApiClient;
  environment: EnvironmentResource;
  /** The config file exactly as served. */
  configText: string;
  config: Record<string, string>;
  profile: MetaflowProfile;
}

const teammates: Record<'alice' | 'bob', Teammate> = {} as never;
const profiles: MetaflowProfile[] = [];
const timings: Record<string, number> = {};
let s3: S3Client;
let batch: BatchClient;
let iam: IAMClient;

/** The teammate's machine: the config file as given, and an AWS profile that assumes the environment's access role. */
function profileFor(
  teammate: Pick<Teammate, 'name' | 'user'> & { environment: Pick<EnvironmentResource, 'resources'> },
  config: string | Record<string, unknown>,
): MetaflowProfile {
  const profile = createMetaflowProfile({
    name: teammate.name,
    config,
    credentials: teammate.user,
    accessRoleArn: teammate.environment.resources.accessRoleArn,
    emulatorEndpoint: context.local.emulatorEndpoint,
  });
  profiles.push(profile);
  return profile;
}

async function getEnvironment(api: ApiClient, name: string): Promise<EnvironmentResource> {
  const response = await api.get(`/environments/${name}`);
  expect(response.status).toBe(200);
  return response.json as EnvironmentResource;
}

/** Polls GET /environments/{name} until it leaves the given status (the workflows run in the background). */
async function waitWhile(api: ApiClient, name: string, status: string, timeoutMs = 120_000): Promise<EnvironmentResource> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const environment = await getEnvironment(api, name);
    if (environment.status !== status) return environment;
    if (Date.now() > deadline) throw new Error(`${name} is still ${status} after ${timeoutMs / 1000} s`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

async function bucketNames(): Promise<string[]> {
  return ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((bucket) => bucket.Name!);
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings[label] = (Date.now() - started) / 1000;
  }
}

beforeAll(async () => {
  // The emulator's root: it observes every bucket and queue, and stands in for the platform owner.
  const admin = emulatorClientConfig(context.local.emulatorEndpoint);
  s3 = new S3Client({ ...admin, forcePathStyle: true });
  batch = new BatchClient(admin);
  iam = new IAMClient(admin);
});

afterAll(async () => {
  for (const profile of profiles) profile.dispose();
  s3?.destroy();
  batch?.destroy();
  iam?.destroy();
  console.log(`Metaflow ${await metaflowVersion()}; seconds per phase: ${JSON.stringify(timings)}`);
});

test('two teammates each get a READY environment and download its Metaflow config over signed requests', async () => {
  // prepare
  const names = ['alice', 'bob'] as const;
  const users = await Promise.all(names.map((name) => context.local.createUser(name)));
  const apis = users.map((user) => apiClient(context.local.apiUrl, user));

  // act: both provision at once, as two teammates would
  const created = await timed('provision both', () =>
    Promise.all(
      names.map(async (name, index) => {
        const api = apis[index]!;
        const response = await api.post('/environments', { name, maxVcpus: 4, gpu: false });
        expect(response.status).toBe(202);
        const environment = await waitWhile(api, name, 'CREATING');
        const config = await api.get(`/environments/${name}/config`);
        return { environment, config };
      }),
    ),
  );

  // Each teammate saves the config file exactly as served and an AWS profile that assumes the environment's
  // access role; nobody attaches anything to anyone. Kept before the checks below, so that a bad payload
  // still reaches the Metaflow proofs that follow and they can show what it breaks.
  for (const [index, name] of names.entries()) {
    const { environment, config } = created[index]!;
    const user = users[index]!;
    teammates[name] = {
      name,
      seed: 11 + index * 12,
      user,
      api: apis[index]!,
      environment,
      configText: config.text,
      config: config.json as Record<string, string>,
      profile: profileFor({ name, user, environment }, config.text),
    };
  }

  // assess
  for (const [index, name] of names.entries()) {
    const { environment, configText, config } = teammates[name];
    const response = created[index]!.config;
    expect(environment).toMatchObject({ name, status: 'READY', owner: users[index]!.arn });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(configText)).toEqual(environment.config);
    expect(Object.keys(config).sort()).toEqual(LOCAL_PAYLOAD_KEYS);
    expect(config.METAFLOW_DATASTORE_SYSROOT_S3).toBe(expectedSysroot(environment));
    expect(config.METAFLOW_BATCH_JOB_QUEUE).toBe(environment.resources.jobQueueArn);
  }
  expect(teammates.alice.environment.resources.bucket).not.toBe(teammates.bob.environment.resources.bucket);
  expect(teammates.alice.environment.resources.jobQueueArn).not.toBe(teammates.bob.environment.resources.jobQueueArn);
  // Nothing is attached to a person: the teammates' users hold no policy at all.
  for (const user of users) {
    expect((await iam.send(new ListAttachedUserPoliciesCommand({ UserName: user.name }))).AttachedPolicies).toEqual([]);
    expect((await iam.send(new ListUserPoliciesCommand({ UserName: user.name }))).PolicyNames).toEqual([]);
  }
});

test.each(['alice', 'bob'] as const)("%s's Metaflow runs as a session of the environment's access role, not as the teammate", async (name) => {
  // prepare
  const teammate = teammates[name];

  // act
  const arn = await callerArnOf(teammate.profile);

  // assess
  const roleName = teammate.environment.resources.accessRoleArn.split('/').pop();
  expect(arn).toBe(`arn:aws:sts::${context.local.accountId}:assumed-role/${roleName}/${name}`);
  expect(arn).not.toBe(teammate.user.arn);
});

describe.each(['alice', 'bob'] as const)('%s runs a flow with the payload alone', (name) => {
  test('on the S3 datastore: right values through the Client API, every object under her/his own datastore root', async () => {
    // prepare
    const teammate = teammates[name];

    // act
    const proof = await timed(`${name} run`, () =>
      proveLocalRun(s3, teammate.profile, teammate.environment, { seed: teammate.seed }),
    );

    // assess (proveLocalRun throws a ProofFailure on anything wrong; these are its figures)
    expect(proof.objects).toBeGreaterThan(3);
    expect(proof.blobObjectSizes).toHaveLength(3);
    for (const size of proof.blobObjectSizes) expect(size).toBeGreaterThanOrEqual(1 << 20);
    expect(proof.bytes).toBeGreaterThan(3 * (1 << 20));
  });

  test('with --with batch: the job goes to her/his own queue, with her/his own job role', async () => {
    // prepare
    const teammate = teammates[name];

    // act
    const proof = await timed(`${name} batch`, () =>
      proveBatchSubmission(batch, teammate.profile, teammate.environment, { seed: teammate.seed }),
    );

    // assess
    expect(proof.job.jobQueue).toBe(teammate.environment.resources.jobQueueArn);
    expect(proof.job.jobRoleArn).toBe(teammate.environment.resources.jobRoleArn);
    expect(proof.job.jobDefinitionName).toMatch(/^metaflow_/);
    // Metaflow's default image, from the registry the payload names rather than Docker Hub.
    expect(proof.job.image).toMatch(/^public\.ecr\.aws\/docker\/library\/python:3\.\d+$/);
    // The emulator runs no container and reports the job SUCCEEDED at once; Metaflow then finds no output of
    // the task and ends the run by itself, so there is nothing to kill.
    expect(proof.job.status).toBe('SUCCEEDED');
    expect(proof.run.timedOut).toBe(false);
    expect(proof.run.output).toMatch(/No completed attempts of the task was found/);
  });
});

test('side by side, each teammate\'s data sits only in her/his own bucket', async () => {
  // prepare
  const { alice, bob } = teammates;

  // act
  const everything = await listEveryObject(s3);

  // assess: each bucket holds exactly its owner's runs (the run ids are in the task record paths)
  const runsIn = (bucket: string) =>
    new Set(
      everything
        .filter((object) => object.bucket === bucket)
        .map((object) => /^metaflow\/ShardFlow\/(\d+)\//.exec(object.key)?.[1])
        .filter((id): id is string => id !== undefined),
    );
  const aliceRuns = runsIn(alice.environment.resources.bucket);
  const bobRuns = runsIn(bob.environment.resources.bucket);
  expect(aliceRuns.size).toBeGreaterThanOrEqual(1);
  expect(bobRuns.size).toBeGreaterThanOrEqual(1);
  expect([...aliceRuns].filter((id) => bobRuns.has(id))).toEqual([]);
  const metaflowBuckets = new Set(everything.filter((object) => object.key.startsWith('metaflow/ShardFlow/')).map((object) => object.bucket));
  expect([...metaflowBuckets].sort()).toEqual([alice.environment.resources.bucket, bob.environment.resources.bucket].sort());
});

/**
 * The proofs above must be able to fail. Each case breaks one key of a served payload, as a bug in the
 * payload would, and runs the same proof, which must fail for the reason the key exists.
 */
describe('a broken payload fails the proofs', () => {
  type Broken = {
    key: string;
    how: string;
    /** Breaks the served config of `victim`; `other` is the other teammate. */
    change: (config: Record<string, string>, other: Teammate) => void;
    proof: 'run' | 'batch';
    /** What the proof must say. */
    failure: (victim: Teammate, other: Teammate) => RegExp;
  };
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const cases: Broken[] = [
    {
      key: 'METAFLOW_DATASTORE_SYSROOT_S3',
      how: 'missing',
      change: (config) => delete config.METAFLOW_DATASTORE_SYSROOT_S3,
      proof: 'run',
      failure: () => /the flow failed[\s\S]*did you correctly set the METAFLOW_DATASTORE_SYSROOT_S3/,
    },
    {
      key: 'METAFLOW_DATASTORE_SYSROOT_S3',
      how: "pointing at the other teammate's bucket",
      change: (config, other) => (config.METAFLOW_DATASTORE_SYSROOT_S3 = expectedSysroot(other.environment)),
      proof: 'run',
      failure: (victim, other) =>
        new RegExp(`is stored at :root:${escape(expectedSysroot(other.environment))}, not under ${escape(expectedSysroot(victim.environment))}`),
    },
    {
      key: 'METAFLOW_DEFAULT_DATASTORE',
      how: 'missing',
      change: (config) => delete config.METAFLOW_DEFAULT_DATASTORE,
      proof: 'run',
      failure: () => /stored in the local datastore, not s3/,
    },
    {
      key: 'METAFLOW_USER',
      how: 'missing',
      change: (config) => delete config.METAFLOW_USER,
      proof: 'run',
      failure: () => /the flow failed[\s\S]*Unknown user/,
    },
    {
      key: 'METAFLOW_BATCH_JOB_QUEUE',
      how: 'missing',
      change: (config) => delete config.METAFLOW_BATCH_JOB_QUEUE,
      proof: 'batch',
      // Metaflow then takes the first enabled queue of the account: someone else's.
      failure: (_victim, other) => new RegExp(`the job landed in queue ${escape(other.environment.resources.jobQueueArn)}, not in`),
    },
    {
      key: 'METAFLOW_ECS_S3_ACCESS_IAM_ROLE',
      how: 'missing',
      change: (config) => delete config.METAFLOW_ECS_S3_ACCESS_IAM_ROLE,
      proof: 'batch',
      failure: () => /Metaflow submitted no Batch job/,
    },
  ];

  test.each(cases)('$key $how → the $proof proof fails', async ({ key, change, proof, failure }) => {
    // prepare: a teammate's served payload, broken. Without a queue Metaflow submits to the first enabled queue
    // of the account, so that case breaks the payload of the teammate whose queue is not the first.
    const { alice, bob } = teammates;
    let [victim, other] = [alice, bob];
    if (key === 'METAFLOW_BATCH_JOB_QUEUE') {
      const queues = (await batch.send(new DescribeJobQueuesCommand({}))).jobQueues ?? [];
      const first = queues.find((queue) => queue.state === 'ENABLED' && queue.status === 'VALID');
      if (first?.jobQueueArn === alice.environment.resources.jobQueueArn) [victim, other] = [bob, alice];
      expect(first?.jobQueueArn).toBe(other.environment.resources.jobQueueArn);
    }
    const config = { ...victim.config };
    change(config, other);
    expect(config).not.toEqual(victim.config);
    const profile = profileFor(victim, config);

    // act
    const seed = victim.seed + 100;
    const attempt =
      proof === 'run'
        ? proveLocalRun(s3, profile, victim.environment, { seed, shards: 1 })
        : proveBatchSubmission(batch, profile, victim.environment, { seed });

    // assess
    await expect(attempt).rejects.toThrow(ProofFailure);
    await expect(attempt).rejects.toThrow(failure(victim, other));
  });
});

test('DELETE keeps a bucket that holds data and says so; DELETE ?purge=true removes it', async () => {
  // prepare
  const { alice, bob } = teammates;
  const bucket = alice.environment.resources.bucket;
  expect(await bucketNames()).toContain(bucket);

  // act: a plain DELETE
  const deleted = await timed('delete', async () => {
    expect((await alice.api.delete('/environments/alice')).status).toBe(202);
    return waitWhile(alice.api, 'alice', 'DELETING');
  });

  // assess: DELETED, the bucket retained with its data, and the reason says how to remove it
  expect(deleted.status).toBe('DELETED');
  expect(deleted.retainedBucket).toBe(bucket);
  expect(deleted.statusReason).toContain(bucket);
  expect(deleted.statusReason).toContain('purge=true');
  expect(await bucketNames()).toContain(bucket);
  expect((await listEveryObject(s3)).some((object) => object.bucket === bucket)).toBe(true);

  // act: DELETE ?purge=true, for alice's retained bucket and straight away for bob
  const purged = await timed('purge', () =>
    Promise.all(
      [alice, bob].map(async (teammate) => {
        expect((await teammate.api.delete(`/environments/${teammate.name}`, { query: { purge: 'true' } })).status).toBe(202);
        return waitWhile(teammate.api, teammate.name, 'DELETING');
      }),
    ),
  );

  // assess: both DELETED, nothing retained, both buckets gone from the emulator
  for (const environment of purged) {
    expect(environment.status).toBe('DELETED');
    expect(environment.retainedBucket).toBeUndefined();
  }
  const remaining = await bucketNames();
  expect(remaining).not.toContain(bucket);
  expect(remaining).not.toContain(bob.environment.resources.bucket);
});
