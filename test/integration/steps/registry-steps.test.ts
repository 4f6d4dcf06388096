import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { CreateStateMachineCommand, DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { dynamoClient } from '../../../lambdas/core/clients';
import type { EnvironmentStatus, WorkflowEnvironment } from '../../../lambdas/core/environment';
import { metaflowConfigFor } from '../../../lambdas/core/metaflow-config';
import { executionName, resourcesOf } from '../../../lambdas/core/naming';
import * as registry from '../../../lambdas/core/registry';
import { SETTING, settings } from '../../../lambdas/core/settings';
import { handler } from '../../../lambdas/steps/registry-steps';
import { useEmulator } from '../../support/emulator';
import { invoke, namesOf, quietLogs, recordFor, uniqueName, withSetting, workflowEnvironment } from './fixtures';

const { context } = useEmulator();
let sfn: SFNClient;
let teardownStateMachineArn: string;

beforeAll(async () => {
  quietLogs();
  sfn = new SFNClient(context.clientConfig);
  // A stand-in for the teardown workflow: the test only needs executions to be started on it.
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: 'teardown-stand-in',
      roleArn: 'arn:aws:iam::123456789012:role/mfenv/stand-in',
      definition: JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Pass', End: true } } }),
    }),
  );
  teardownStateMachineArn = stateMachineArn!;
  process.env[SETTING.teardownStateMachineArn] = teardownStateMachineArn;
});
afterAll(() => sfn?.destroy());

/** A registry record as the API writes it when a create or delete starts. */
async function recordIn(status: EnvironmentStatus, overrides: Partial<WorkflowEnvironment> = {}) {
  const environment = workflowEnvironment(uniqueName(status.toLowerCase().replace('_', '-')), overrides);
  const record = recordFor(environment, status);
  await registry.putNewEnvironment(record);
  return environment;
}

const recordOf = async (name: string) => (await registry.getEnvironment(name))!;

/** The TTL attribute is not part of the record model: read the raw item. */
async function expiresAtOf(name: string): Promise<number | undefined> {
  const { Item } = await dynamoClient().send(new GetCommand({ TableName: settings.tableName(), Key: { pk: `ENV#${name}` } }));
  return Item?.[registry.REGISTRY_TABLE.ttlAttribute];
}

/** What a Catch leaves in $.error on AWS when a Lambda step threw. */
const awsCaught = (errorType: string, errorMessage: string) => ({
  Error: errorType,
  Cause: JSON.stringify({ errorType, errorMessage, trace: ['at somewhere'] }),
});

describe('markReady', () => {
  it('makes a CREATING environment READY with its resources and Metaflow payload; twice is fine', async () => {
    // prepare
    const environment = await recordIn('CREATING');
    const names = namesOf(environment.name);

    // act
    await invoke(handler, { step: 'markReady', environment });
    await invoke(handler, { step: 'markReady', environment });

    // assess
    const record = await recordOf(environment.name);
    expect(record.status).toBe('READY');
    expect(record.statusReason).toBeNull();
    expect(record.resources).toEqual(resourcesOf(names));
    expect(record.config).toEqual(
      metaflowConfigFor({
        environmentName: environment.name,
        names,
        s3EndpointUrl: context.emulator.endpoint,
        containerRegistry: 'public.ecr.aws/docker/library',
      }),
    );
  });

  it('changes nothing for a workflow of another generation', async () => {
    // prepare
    const environment = await recordIn('CREATING', { generation: 2 });

    // act
    const attempt = invoke(handler, { step: 'markReady', environment: { ...environment, generation: 1 } });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'EnvironmentStateConflictError' });
    expect(await recordOf(environment.name)).toMatchObject({ status: 'CREATING', config: null });
  });
});

describe('startRollback', () => {
  it('records why creating failed and starts the teardown in rollback mode, once', async () => {
    // prepare
    const environment = await recordIn('CREATING');
    const error = awsCaught('ResourceConflict', 'The IAM role "mfenv-x-job" already exists but does not belong to the environment "x".');

    // act
    await invoke(handler, { step: 'startRollback', environment, error });
    await invoke(handler, { step: 'startRollback', environment, error });

    // assess
    const record = await recordOf(environment.name);
    expect(record.status).toBe('CREATING');
    expect(record.statusReason).toBe(
      'Creating failed: The IAM role "mfenv-x-job" already exists but does not belong to the environment "x". Rolling back.',
    );
    const name = executionName('rollback', environment.name, environment.generation);
    const execution = await sfn.send(
      new DescribeExecutionCommand({ executionArn: `${teardownStateMachineArn.replace(':stateMachine:', ':execution:')}:${name}` }),
    );
    expect(execution.name).toBe(name);
    expect(JSON.parse(execution.input!)).toEqual({
      environment: {
        ...environment,
        purge: false,
        mode: 'rollback',
        reason: 'Creating failed: The IAM role "mfenv-x-job" already exists but does not belong to the environment "x".',
      },
    });
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: teardownStateMachineArn }));
    expect(executions.filter((candidate) => candidate.name === name)).toHaveLength(1);
  });

  it('accepts that the rollback of this generation was already started with another input', async () => {
    // prepare
    const environment = await recordIn('CREATING');
    await invoke(handler, { step: 'startRollback', environment, error: awsCaught('ResourceFailed', 'First failure.') });

    // act
    const answer = await invoke(handler, { step: 'startRollback', environment, error: awsCaught('ResourceFailed', 'Second failure.') });

    // assess
    const name = executionName('rollback', environment.name, environment.generation);
    expect(answer).toEqual({ rollbackStarted: true, executionName: name });
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn: teardownStateMachineArn }));
    expect(executions.filter((candidate) => candidate.name === name)).toHaveLength(1);
    expect((await recordOf(environment.name)).status).toBe('CREATING');
  });

  it('reads a plain-text cause as the reason', async () => {
    // prepare
    const environment = await recordIn('CREATING');

    // act
    await invoke(handler, { step: 'startRollback', environment, error: { Error: 'ResourceFailed', Cause: 'The compute environment is INVALID.' } });

    // assess
    expect((await recordOf(environment.name)).statusReason).toBe('Creating failed: The compute environment is INVALID. Rolling back.');
  });

  it('marks the environment CREATE_FAILED, telling to DELETE it, when the rollback cannot be started', async () => {
    // prepare
    const environment = await recordIn('CREATING');

    // act
    await withSetting(SETTING.teardownStateMachineArn, `${teardownStateMachineArn}-missing`, () =>
      invoke(handler, { step: 'startRollback', environment, error: { Error: 'States.Timeout' } }),
    );

    // assess
    const record = await recordOf(environment.name);
    expect(record.status).toBe('CREATE_FAILED');
    expect(record.statusReason).toMatch(/^Creating failed: a step did not finish in the time allowed\. The rollback could not be started \(.+\); send DELETE/);
  });
});

describe('finishTeardown', () => {
  it('marks a deleted environment DELETED, expiring after the retention period, when the bucket went with it', async () => {
    // prepare
    const environment = await recordIn('DELETING');
    const before = Math.floor(Date.now() / 1000);

    // act
    await invoke(handler, { step: 'finishTeardown', environment, bucket: { retained: false, objectCount: 0 } });
    await invoke(handler, { step: 'finishTeardown', environment, bucket: { retained: false, objectCount: 0 } });

    // assess
    const record = await recordOf(environment.name);
    expect(record).toMatchObject({ status: 'DELETED', statusReason: null, retainedBucket: null });
    const expiresAt = await expiresAtOf(environment.name);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 30 * 86_400);
    expect(expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 30 * 86_400);
  });

  it('names a retained bucket, its object count and how to purge it, and keeps the record', async () => {
    // prepare
    const environment = await recordIn('DELETING');
    const bucket = namesOf(environment.name).bucket;

    // act
    await invoke(handler, { step: 'finishTeardown', environment, bucket: { retained: true, objectCount: 42 } });

    // assess
    const record = await recordOf(environment.name);
    expect(record.status).toBe('DELETED');
    expect(record.retainedBucket).toBe(bucket);
    expect(record.statusReason).toContain(bucket);
    expect(record.statusReason).toContain('42 objects');
    expect(record.statusReason).toContain(`DELETE /environments/${environment.name}?purge=true`);
    expect(await expiresAtOf(environment.name)).toBeUndefined();
  });

  it('ends a rollback in CREATE_FAILED with the reason and that everything was removed', async () => {
    // prepare
    const environment = await recordIn('CREATING', { mode: 'rollback', reason: 'Creating failed: the queue went INVALID.' });

    // act
    await invoke(handler, { step: 'finishTeardown', environment, bucket: { retained: false, objectCount: 0 } });
    await invoke(handler, { step: 'finishTeardown', environment, bucket: { retained: false, objectCount: 0 } });

    // assess
    expect(await recordOf(environment.name)).toMatchObject({
      status: 'CREATE_FAILED',
      statusReason: 'Creating failed: the queue went INVALID. Everything it created has been removed.',
    });
  });
});

describe('markTeardownFailed', () => {
  it('marks a failed delete DELETE_FAILED with the reason and that DELETE retries', async () => {
    // prepare
    const environment = await recordIn('DELETING');

    // act
    await invoke(handler, {
      step: 'markTeardownFailed',
      environment,
      error: awsCaught('ResourceNotReady', 'The job queue "mfenv-x" did not settle after 90 checks.'),
    });

    // assess
    expect(await recordOf(environment.name)).toMatchObject({
      status: 'DELETE_FAILED',
      statusReason: 'Deleting failed: The job queue "mfenv-x" did not settle after 90 checks. Send DELETE again to retry.',
    });
  });

  it('marks a failed rollback CREATE_FAILED with both reasons and that DELETE cleans up', async () => {
    // prepare
    const environment = await recordIn('CREATING', { mode: 'rollback', reason: 'Creating failed: the queue went INVALID.' });

    // act
    await invoke(handler, { step: 'markTeardownFailed', environment, error: { Error: 'TransientError', Cause: 'Rate exceeded' } });

    // assess
    expect(await recordOf(environment.name)).toMatchObject({
      status: 'CREATE_FAILED',
      statusReason: 'Creating failed: the queue went INVALID. The rollback did not finish (Rate exceeded); send DELETE to clean up.',
    });
  });
});
