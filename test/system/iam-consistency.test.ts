/**
 * The provision workflow against IAM's eventual consistency, in local mode (the real ASL, step handlers and
 * emulator): a compute environment that AWS Batch makes INVALID because it could not use the new instance
 * profile yet is disabled, deleted and created again once, and the environment becomes READY; when the
 * re-created one goes INVALID too, the create is rolled back, CREATE_FAILED with a reason that says so.
 *
 * moto's DescribeComputeEnvironments always answers status VALID (moto/batch/models.py) and nothing makes it
 * answer otherwise, so the answers' status and statusReason for one compute environment (only those) are
 * replaced in-process, after the request went to the emulator: the step handlers run in this process in local
 * mode, over their ordinary SDK clients. Creating, disabling and deleting stay the emulator's.
 */
import {
  BatchClient,
  type ComputeEnvironmentDetail,
  DeleteComputeEnvironmentCommand,
  DescribeComputeEnvironmentsCommand,
} from '@aws-sdk/client-batch';
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
 * Makes AWS Batch report the compute environment INVALID for IAM_REASON: `once`, until it has been deleted
 * (the re-created one is VALID, as IAM has caught up by then), or `always`. Undone by the returned function.
 */
function invalidComputeEnvironment(computeEnvironmentName: string, how: 'once' | 'always'): () => void {
  const send = BatchClient.prototype.send;
  let deleted = false;
  const spy = jest.spyOn(BatchClient.prototype, 'send').mockImplementation(async function (this: BatchClient, ...args: unknown[]) {
    const command = args[0];
    if (command instanceof DeleteComputeEnvironmentCommand && command.input.computeEnvironment === computeEnvironmentName) deleted = true;
    const output = await (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    if (command instanceof DescribeComputeEnvironmentsCommand && (how === 'always' || !deleted)) {
      for (const detail of (output as { computeEnvironments?: ComputeEnvironmentDetail[] }).computeEnvironments ?? []) {
        if (detail.computeEnvironmentName === computeEnvironmentName && detail.status === 'VALID') {
          Object.assign(detail, { status: 'INVALID', statusReason: IAM_REASON });
        }
      }
    }
    return output;
  });
  return () => spy.mockRestore();
}

const executionsOf = (name: string) =>
  local.local
    .executions()
    .filter((record) => record.name.startsWith(`${name}-`))
    .reverse();

describe('a compute environment AWS Batch makes INVALID for an instance profile it cannot see yet', () => {
  it('is re-created once, and the environment becomes READY', async () => {
    // prepare
    const restore = invalidComputeEnvironment(computeEnvironmentNameOf('erin'), 'once');

    // act
    let ready;
    try {
      const created = await asAlice.post('/environments', { name: 'erin', maxVcpus: 4, gpu: false });
      expect(created.status).toBe(202);
      ready = await waitWhile(asAlice, 'erin', 'CREATING');
      await local.local.runner.settled();
    } finally {
      restore();
    }

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
    const restore = invalidComputeEnvironment(computeEnvironmentNameOf('frank'), 'always');

    // act
    let failed;
    try {
      const created = await asAlice.post('/environments', { name: 'frank', maxVcpus: 4, gpu: false });
      expect(created.status).toBe(202);
      failed = await waitWhile(asAlice, 'frank', 'CREATING');
      await local.local.runner.settled();
    } finally {
      restore();
    }

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
