/**
 * The local Step Functions endpoint, reached by the project's ordinary SFNClient (lambdas/core/clients.ts)
 * through AWS_ENDPOINT_URL_SFN only, as the API handler and the rollback step reach it in local mode.
 * Step handlers are scripted (a gate holds an execution RUNNING for as long as a test needs).
 */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  InvalidName,
  ListExecutionsCommand,
  StartExecutionCommand,
  StateMachineDoesNotExist,
} from '@aws-sdk/client-sfn';
import { type SfnEndpoint, startSfnEndpoint } from '../../../infra/local/sfn-endpoint';
import { WorkflowRunner } from '../../../infra/local/workflow-runner';
import { resetClients, sfnClient } from '../../../lambdas/core/clients';

const saved = { ...process.env };
let release: () => void = () => undefined;
let gate = new Promise<void>((open) => (release = open));
const runner = new WorkflowRunner({
  region: 'us-east-1',
  accountId: '123456789012',
  stackName: 'mfenv-test',
  waitMs: 5,
  retryMs: 5,
  loadStepHandler: () => async (event) => {
    const { step, poll } = event as { step: string; poll?: { attempt: number } };
    if (step === 'createBucket') await gate;
    if (step.startsWith('poll')) return { done: true, attempt: (poll?.attempt ?? 0) + 1, waitSeconds: 2 };
    return {};
  },
});
let endpoint: SfnEndpoint;

const provisionArn = runner.stateMachineArn('provision');
const environmentInput = (generation: number) =>
  JSON.stringify({ environment: { name: 'alice', owner: 'arn:aws:iam::123456789012:user/alice', spec: { maxVcpus: 4, gpu: false }, generation } });

beforeAll(async () => {
  endpoint = await startSfnEndpoint(runner);
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    // Every other service would go to a port where nothing listens: only the SFN-specific variable can work.
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_SFN: endpoint.endpoint,
  });
  resetClients();
});

afterAll(async () => {
  release();
  await runner.settled();
  await endpoint.stop();
  process.env = saved;
  resetClients();
});

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  // Bounded (≈ 30 s at most) but generous: the machine running the tests may be busy.
  for (let attempt = 0; attempt < 1200; attempt++) {
    const value = await probe();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the condition never held');
}

describe('local Step Functions endpoint', () => {
  it('starts an execution, idempotently while it runs, and refuses the name for another input', async () => {
    // prepare
    const sfn = sfnClient();

    // act
    const first = await sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(1) }));
    const again = await sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(1) }));
    const other = sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(2) }));

    // assess
    expect(first.executionArn).toBe('arn:aws:states:us-east-1:123456789012:execution:mfenv-test-provision:alice-provision-1');
    expect(first.startDate).toBeInstanceOf(Date);
    expect(again.executionArn).toBe(first.executionArn);
    await expect(other).rejects.toBeInstanceOf(ExecutionAlreadyExists);
    expect(runner.list({ stateMachineArn: provisionArn })).toHaveLength(1);
  });

  it('describes and lists executions as they run and after they end', async () => {
    // prepare
    const sfn = sfnClient();
    const executionArn = runner.list({ stateMachineArn: provisionArn })[0]!.executionArn;

    // act
    const running = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    release();
    const ended = await until(
      () => sfn.send(new DescribeExecutionCommand({ executionArn })),
      (answer) => answer.status !== 'RUNNING',
    );
    const succeeded = await sfn.send(new ListExecutionsCommand({ stateMachineArn: provisionArn, statusFilter: 'SUCCEEDED' }));
    const runningNow = await sfn.send(new ListExecutionsCommand({ stateMachineArn: provisionArn, statusFilter: 'RUNNING' }));

    // assess
    expect(running).toMatchObject({ status: 'RUNNING', name: 'alice-provision-1', stateMachineArn: provisionArn, input: environmentInput(1) });
    expect(running.stopDate).toBeUndefined();
    expect(ended.status).toBe('SUCCEEDED');
    expect(JSON.parse(ended.output!)).toMatchObject({ environment: { name: 'alice', generation: 1 } });
    expect(ended.stopDate!.getTime()).toBeGreaterThanOrEqual(ended.startDate!.getTime());
    expect(succeeded.executions?.map((execution) => execution.executionArn)).toEqual([executionArn]);
    expect(runningNow.executions).toEqual([]);
  });

  it('refuses a closed execution name even with the same input', async () => {
    // prepare
    const sfn = sfnClient();

    // act
    const reused = sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'alice-provision-1', input: environmentInput(1) }));

    // assess
    await expect(reused).rejects.toBeInstanceOf(ExecutionAlreadyExists);
  });

  it('answers with the errors Step Functions uses for unknown machines, executions and bad names', async () => {
    // prepare
    const sfn = sfnClient();
    const missingMachine = 'arn:aws:states:us-east-1:123456789012:stateMachine:nope';

    // act
    const unknownMachine = sfn.send(new StartExecutionCommand({ stateMachineArn: missingMachine, input: '{}' }));
    const unknownExecution = sfn.send(
      new DescribeExecutionCommand({ executionArn: 'arn:aws:states:us-east-1:123456789012:execution:mfenv-test-provision:nope' }),
    );
    const badName = sfn.send(new StartExecutionCommand({ stateMachineArn: provisionArn, name: 'has space', input: '{}' }));

    // assess
    await expect(unknownMachine).rejects.toBeInstanceOf(StateMachineDoesNotExist);
    await expect(unknownExecution).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(badName).rejects.toBeInstanceOf(InvalidName);
    expect(runner.list()).toHaveLength(1);
  });
});
