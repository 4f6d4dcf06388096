/**
 * The local Step Functions endpoint as local mode runs it, with the emulator behind it: what Metaflow's
 * `step-functions create` calls (and the teardown's cleanup) lands in the emulator, while the project's own
 * state machines are still the runner's. One SFNClient, one endpoint, as AWS_ENDPOINT_URL_SFN gives Metaflow.
 */
import {
  CreateStateMachineCommand,
  DeleteStateMachineCommand,
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  TagResourceCommand,
  UpdateStateMachineCommand,
} from '@aws-sdk/client-sfn';
import { type SfnEndpoint, startSfnEndpoint } from '../../../infra/local/sfn-endpoint';
import { WorkflowRunner } from '../../../infra/local/workflow-runner';
import { useEmulator } from '../../support/emulator';

const { context } = useEmulator({ networkIsolation: false });
const runner = new WorkflowRunner({
  region: 'us-east-1',
  accountId: '123456789012',
  stackName: 'mfenv-forward',
  waitMs: 5,
  retryMs: 5,
  // Every step answers at once, as with network isolation off; the provision run is not what is tested here.
  loadStepHandler: () => async (event) => {
    const { step, poll } = event as { step: string; poll?: { attempt: number } };
    if (step.startsWith('poll')) return { done: true, attempt: (poll?.attempt ?? 0) + 1, waitSeconds: 1 };
    if (step === 'allocateNetwork') return { cidr: null };
    return {};
  },
});
let endpoint: SfnEndpoint;
let viaEndpoint: SFNClient;
let emulatorDirect: SFNClient;

beforeAll(async () => {
  endpoint = await startSfnEndpoint(runner, { forwardTo: context.emulator.endpoint });
  viaEndpoint = new SFNClient({ ...context.clientConfig, endpoint: endpoint.endpoint });
  emulatorDirect = new SFNClient(context.clientConfig);
});
afterAll(async () => {
  viaEndpoint?.destroy();
  emulatorDirect?.destroy();
  await runner.abortAll();
  await endpoint?.stop();
});

const DEFINITION = JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Succeed' } } });
const ROLE = 'arn:aws:iam::123456789012:role/mfenv/mfenv-alice-sfn';

describe('the local Step Functions endpoint, forwarding to the emulator', () => {
  it("makes, updates, tags, finds and deletes Metaflow's state machines in the emulator", async () => {
    // act
    const { stateMachineArn } = await viaEndpoint.send(new CreateStateMachineCommand({ name: 'mfenv-alice_NightlyFlow', definition: DEFINITION, roleArn: ROLE }));
    await viaEndpoint.send(new UpdateStateMachineCommand({ stateMachineArn, definition: DEFINITION, roleArn: ROLE }));
    await viaEndpoint.send(new TagResourceCommand({ resourceArn: stateMachineArn, tags: [{ key: 'flow', value: 'NightlyFlow' }] }));
    const listedThroughEndpoint = (await viaEndpoint.send(new ListStateMachinesCommand({}))).stateMachines?.map((machine) => machine.name);
    const inEmulator = await emulatorDirect.send(new DescribeStateMachineCommand({ stateMachineArn }));
    await viaEndpoint.send(new DeleteStateMachineCommand({ stateMachineArn }));
    const afterDelete = (await emulatorDirect.send(new ListStateMachinesCommand({}))).stateMachines?.map((machine) => machine.name);

    // assess
    expect(listedThroughEndpoint).toContain('mfenv-alice_NightlyFlow');
    expect(inEmulator.name).toBe('mfenv-alice_NightlyFlow');
    expect(afterDelete).not.toContain('mfenv-alice_NightlyFlow');
  });

  it("still serves the project's own state machines and their executions itself", async () => {
    // prepare
    const input = JSON.stringify({
      environment: { name: 'alice', owner: 'arn:aws:iam::123456789012:user/alice', spec: { maxVcpus: 4, gpu: false }, generation: 1 },
    });

    // act
    const { executionArn } = await viaEndpoint.send(new StartExecutionCommand({ stateMachineArn: runner.stateMachineArn('provision'), name: 'alice-provision-1', input }));
    const described = await viaEndpoint.send(new DescribeExecutionCommand({ executionArn }));

    // assess
    expect(described.stateMachineArn).toBe(runner.stateMachineArn('provision'));
    expect(runner.describe(executionArn!).name).toBe('alice-provision-1');
    await expect(emulatorDirect.send(new DescribeExecutionCommand({ executionArn }))).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });
  });
});
