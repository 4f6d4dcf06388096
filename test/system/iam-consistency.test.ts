/**
 * The provision workflow against IAM's eventual consistency, in local mode (the real ASL, step handlers and
 * emulator): a compute environment that AWS Batch makes INVALID because it could not use the new instance
 * profile yet is disabled, deleted and created again once, and the environment becomes READY; when the
 * re-created one goes INVALID too, the create is rolled back, CREATE_FAILED with a reason that says so.
 *
 * moto reports every compute environment VALID; the emulator wrapper (infra/local/moto_batch_status.py) makes
 * the next compute environments created under a name report INVALID with AWS's reason until they are deleted,
 * over HTTP (POST /_mfenv/batch-status), so the step handlers read it through their ordinary SDK clients.
 */
import { BatchClient, DescribeComputeEnvironmentsCommand } from '@aws-sdk/client-batch';
import { emulatorClientConfig } from '../../infra/local/bootstrap';
import type { LocalUser } from '../../infra/local/runtime';
import { namesFor } from '../../lambdas/core/naming';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, apiClient, waitWhile } from '../support/signed-client';

process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
// Whole workflows, each wait bounded at 120 s: a busy machine must not turn that into a failure.
jest.setTimeout(300_000);

const local = useLocalMode();
let alice: LocalUser;
let asAlice: ApiClient;
let batch: BatchClient;

beforeAll(async () => {
  alice = await local.local.createUser('alice');
  asAlice = apiClient(local.local.apiUrl, alice);
  batch = new BatchClient(emulatorClientConfig(local.local.emulatorEndpoint));
}, 60_000);

afterAll(() => batch?.destroy());

/** A real statusReason of a compute environment gone INVALID on a fresh account (Netflix/metaflow-tools#9). */
const IAM_REASON = 'CLIENT_ERROR - Invalid IamInstanceProfile: mfenv-erin-instance';

function computeEnvironmentNameOf(environmentName: string): string {
  const { env } = local.local.bootstrap;
  return namesFor(
    { prefix: env.MFENV_PREFIX!, accountId: env.MFENV_ACCOUNT_ID!, region: env.AWS_REGION!, stackName: env.MFENV_STACK_NAME! },
    environmentName,
  ).computeEnvironmentName;
}

/**
 * Makes AWS Batch report the next `creations` compute environments of that name INVALID for IAM_REASON until
 * each is deleted: 1 = the first one only (the re-created one is VALID, as IAM has caught up by then).
 */
async function invalidComputeEnvironment(computeEnvironmentName: string, creations: 1 | 2): Promise<void> {
  const response = await fetch(`${local.local.emulatorEndpoint}/_mfenv/batch-status`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ computeEnvironment: computeEnvironmentName, status: 'INVALID', statusReason: IAM_REASON, creations }),
  });
  expect(response.status).toBe(201);
}

const executionsOf = (name: string) =>
  local.local
    .executions()
    .filter((record) => record.name.startsWith(`${name}-`))
    .reverse();

describe('a compute environment AWS Batch makes INVALID for an instance profile it cannot see yet', () => {
  it('is re-created once, and the environment becomes READY', async () => {
    // prepare
    await invalidComputeEnvironment(computeEnvironmentNameOf('erin'), 1);

    // act
    const created = await asAlice.post('/environments', { name: 'erin', maxVcpus: 4, gpu: false });
    expect(created.status).toBe(202);
    const ready = await waitWhile(asAlice, 'erin', 'CREATING');
    await local.local.runner.settled();

    // assess: READY, through the re-create path exactly once
    expect(ready.json).toMatchObject({ name: 'erin', status: 'READY', statusReason: null });
    const [provision, ...others] = executionsOf('erin');
    expect(others).toEqual([]);
    expect(provision).toMatchObject({ stateMachineId: 'provision', status: 'SUCCEEDED' });
    expect(provision!.stepInvocationsByStep).toMatchObject({
      pollInstanceProfile: 3,
      createComputeEnvironment: 2,
      disableInvalidComputeEnvironment: 1,
      deleteInvalidComputeEnvironment: 1,
    });
    const { computeEnvironments = [] } = await batch.send(
      new DescribeComputeEnvironmentsCommand({ computeEnvironments: [computeEnvironmentNameOf('erin')] }),
    );
    expect(computeEnvironments.map((detail) => [detail.state, detail.status])).toEqual([['ENABLED', 'VALID']]);
  });

  it('going INVALID again once re-created, the create is rolled back, CREATE_FAILED, saying it was re-created once and why', async () => {
    // prepare
    await invalidComputeEnvironment(computeEnvironmentNameOf('frank'), 2);

    // act
    const created = await asAlice.post('/environments', { name: 'frank', maxVcpus: 4, gpu: false });
    expect(created.status).toBe(202);
    const failed = await waitWhile(asAlice, 'frank', 'CREATING');
    await local.local.runner.settled();

    // assess: rolled back after a single re-create, with a reason naming both the re-create and AWS's cause
    expect(failed.json).toMatchObject({ name: 'frank', status: 'CREATE_FAILED' });
    expect(failed.json.statusReason).toContain('re-created once');
    expect(failed.json.statusReason).toContain('Invalid IamInstanceProfile');
    const records = executionsOf('frank');
    expect(records.map((record) => [record.stateMachineId, record.status])).toEqual([
      ['provision', 'FAILED'],
      ['teardown', 'SUCCEEDED'],
    ]);
    expect(records[0]!.stepInvocationsByStep).toMatchObject({ createComputeEnvironment: 2, deleteInvalidComputeEnvironment: 1 });
    const { computeEnvironments = [] } = await batch.send(
      new DescribeComputeEnvironmentsCommand({ computeEnvironments: [computeEnvironmentNameOf('frank')] }),
    );
    expect(computeEnvironments).toEqual([]);
  });
});
