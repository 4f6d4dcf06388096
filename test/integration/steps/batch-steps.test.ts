import {
  BatchClient,
  type ComputeEnvironmentDetail,
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  DescribeComputeEnvironmentsCommand,
  DescribeJobQueuesCommand,
  type JobQueueDetail,
  UpdateComputeEnvironmentCommand,
  UpdateJobQueueCommand,
} from '@aws-sdk/client-batch';
import { CreateInstanceProfileCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../../lambdas/core/clients';
import type { EnvironmentStatus } from '../../../lambdas/core/environment';
import type { WorkflowEnvironment } from '../../../lambdas/core/environment';
import { TAG, namesFor, tagsFor } from '../../../lambdas/core/naming';
import { SETTING, currentDeployment, settings } from '../../../lambdas/core/settings';
import { handler } from '../../../lambdas/steps/batch-steps';
import { handler as networkSteps } from '../../../lambdas/steps/network-steps';
import { useEmulator } from '../../support/emulator';
import { outcomeOf } from '../../support/outcome';
import { OWNER, invoke, namesOf, quietLogs, recordFor, uniqueName, withSetting, workflowEnvironment } from './fixtures';

// The compute environment in the shared subnets: environments' own subnets are the network steps' (network-steps.test.ts);
// one test below turns isolation on to see the compute environment take them.
const { context } = useEmulator({ networkIsolation: false });
let batch: BatchClient;
let iam: IAMClient;

beforeAll(() => {
  quietLogs();
  batch = new BatchClient(context.clientConfig);
  iam = new IAMClient(context.clientConfig);
});
afterAll(() => {
  batch?.destroy();
  iam?.destroy();
});

const FIRST_POLL = { attempt: 0, waitSeconds: 2 };
/** Trust policy of a Batch service role. */
const BATCH_TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'batch.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});
type PollAnswer = { done: boolean; attempt: number; waitSeconds: number };

async function computeEnvironmentOf(name: string): Promise<ComputeEnvironmentDetail | undefined> {
  const { computeEnvironments = [] } = await batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [name] }));
  return computeEnvironments[0];
}

async function jobQueueOf(name: string): Promise<JobQueueDetail | undefined> {
  const { jobQueues = [] } = await batch.send(new DescribeJobQueuesCommand({ jobQueues: [name] }));
  return jobQueues[0];
}

/**
 * The instance profile the compute environment names must exist in the emulator. It is made directly here
 * (the IAM steps have their own tests); the CE only needs the profile to be there.
 */
async function withInstanceProfile(environment: WorkflowEnvironment): Promise<WorkflowEnvironment> {
  const names = namesOf(environment.name);
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, Path: names.iamPath }));
  return environment;
}

async function readyEnvironment(base: string, overrides: Partial<WorkflowEnvironment> = {}) {
  const environment = await withInstanceProfile(workflowEnvironment(uniqueName(base), overrides));
  await invoke(handler, { step: 'createComputeEnvironment', environment });
  await invoke(handler, { step: 'createJobQueue', environment });
  return environment;
}

const poll = (step: 'pollComputeEnvironment' | 'pollJobQueue', environment: WorkflowEnvironment, until: string) =>
  invoke<PollAnswer>(handler, { step, environment, until, poll: FIRST_POLL });

describe('createComputeEnvironment', () => {
  it("with network isolation, launches into the environment's own subnets, not the shared ones", async () => {
    // prepare: the environment's block and subnets, as the network steps make them
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('ce-own')));
    await withSetting(SETTING.networkIsolation, 'true', async () => {
      const network = await invoke<{ cidr: string }>(networkSteps, { step: 'allocateNetwork', environment });
      const { subnetIds } = await invoke<{ subnetIds: string[] }>(networkSteps, { step: 'createSubnets', environment, network });

      // act
      await invoke(handler, { step: 'createComputeEnvironment', environment });

      // assess
      const detail = await computeEnvironmentOf(namesOf(environment.name).computeEnvironmentName);
      expect([...(detail?.computeResources?.subnets ?? [])].sort()).toEqual([...subnetIds].sort());
      for (const id of subnetIds) expect(context.bootstrap.subnetIds).not.toContain(id);
    });
  });

  it("refuses a spec over the deployment's vCPU ceiling, whatever the workflow input says, and creates nothing", async () => {
    // prepare: an input the API would never have accepted
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('ce-over'), { spec: { maxVcpus: 4096, gpu: false } }));

    // act
    const attempt = withSetting(SETTING.maxVcpusCeiling, '64', () => invoke(handler, { step: 'createComputeEnvironment', environment }));

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringContaining('ceiling of 64') });
    expect(await computeEnvironmentOf(namesOf(environment.name).computeEnvironmentName)).toBeUndefined();
  });

  it('creates a managed SPOT compute environment from zero vCPUs, in the shared subnets, with GPU families when asked', async () => {
    // prepare
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('ce-gpu'), { spec: { maxVcpus: 32, gpu: true } }));
    const names = namesOf(environment.name);

    // act
    const answer = await invoke(handler, { step: 'createComputeEnvironment', environment });

    // assess
    expect(answer).toEqual({ computeEnvironmentArn: names.computeEnvironmentArn, created: true });
    const detail = await computeEnvironmentOf(names.computeEnvironmentName);
    expect(detail).toMatchObject({
      computeEnvironmentArn: names.computeEnvironmentArn,
      type: 'MANAGED',
      state: 'ENABLED',
      status: 'VALID',
      serviceRole: context.bootstrap.env[SETTING.batchServiceRoleArn],
      tags: tagsFor(currentDeployment(), environment.name, OWNER),
    });
    expect(detail?.computeResources).toMatchObject({
      type: 'SPOT',
      allocationStrategy: 'SPOT_CAPACITY_OPTIMIZED',
      minvCpus: 0,
      maxvCpus: 32,
      instanceTypes: ['optimal', 'g4dn', 'g5', 'g6'],
      subnets: context.bootstrap.subnetIds,
      securityGroupIds: [context.bootstrap.securityGroupId],
      instanceRole: names.instanceProfileArn,
      ec2Configuration: [{ imageType: 'ECS_AL2023' }, { imageType: 'ECS_AL2023_NVIDIA' }],
    });
  });

  it('without GPUs asks only for optimal instances and the standard image, with the configured Spot strategy', async () => {
    // prepare
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('ce-cpu'), { spec: { maxVcpus: 4, gpu: false } }));

    // act
    await withSetting(SETTING.spotAllocationStrategy, 'SPOT_PRICE_CAPACITY_OPTIMIZED', () =>
      invoke(handler, { step: 'createComputeEnvironment', environment }),
    );

    // assess
    const detail = await computeEnvironmentOf(namesOf(environment.name).computeEnvironmentName);
    expect(detail?.computeResources).toMatchObject({
      allocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      maxvCpus: 4,
      instanceTypes: ['optimal'],
      ec2Configuration: [{ imageType: 'ECS_AL2023' }],
    });
  });

  it('run again on its own compute environment succeeds, and re-enables it when it was disabled', async () => {
    // prepare
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('ce-again')));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createComputeEnvironment', environment });
    await batch.send(new UpdateComputeEnvironmentCommand({ computeEnvironment: names.computeEnvironmentName, state: 'DISABLED' }));

    // act
    const answer = await invoke(handler, { step: 'createComputeEnvironment', environment });

    // assess
    expect(answer).toEqual({ computeEnvironmentArn: names.computeEnvironmentArn, created: false });
    expect((await computeEnvironmentOf(names.computeEnvironmentName))?.state).toBe('ENABLED');
  });

  it('refuses a compute environment with its name that belongs to another environment, and leaves it as it was', async () => {
    // prepare
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('ce-taken')));
    const names = namesOf(environment.name);
    await batch.send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: names.computeEnvironmentName,
        type: 'UNMANAGED',
        state: 'DISABLED',
        serviceRole: context.bootstrap.env[SETTING.batchServiceRoleArn],
        tags: { [TAG.environment]: 'bob' },
      }),
    );

    // act
    const attempt = invoke(handler, { step: 'createComputeEnvironment', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict', message: expect.stringContaining('mfenv:environment=bob') });
    expect(await computeEnvironmentOf(names.computeEnvironmentName)).toMatchObject({ type: 'UNMANAGED', state: 'DISABLED' });
  });

  it('answers TransientError (retried by the workflow) while Batch cannot see the instance profile', async () => {
    // prepare: no instance profile, as on AWS in the seconds after IAM created it elsewhere.
    const environment = workflowEnvironment(uniqueName('ce-noprofile'));

    // act
    const attempt = invoke(handler, { step: 'createComputeEnvironment', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'TransientError' });
    expect(await computeEnvironmentOf(namesOf(environment.name).computeEnvironmentName)).toBeUndefined();
  });

  it('names the service role the deployment configures, and none when it configures none', async () => {
    // prepare: another role than the bootstrap's, so the one named is the one configured
    const configuredRoleArn = (
      await iam.send(new CreateRoleCommand({ RoleName: uniqueName('batch-service'), AssumeRolePolicyDocument: BATCH_TRUST }))
    ).Role!.Arn!;
    const configured = await withInstanceProfile(workflowEnvironment(uniqueName('ce-role')));
    const unconfigured = await withInstanceProfile(workflowEnvironment(uniqueName('ce-norole')));

    // act
    await withSetting(SETTING.batchServiceRoleArn, configuredRoleArn, () =>
      invoke(handler, { step: 'createComputeEnvironment', environment: configured }),
    );
    const refusal = await withSetting(SETTING.batchServiceRoleArn, '', () =>
      invoke(handler, { step: 'createComputeEnvironment', environment: unconfigured }),
    ).then(
      () => undefined,
      (error: unknown) => error,
    );

    // assess
    expect((await computeEnvironmentOf(namesOf(configured.name).computeEnvironmentName))?.serviceRole).toBe(configuredRoleArn);
    // AWS would use (or create) its service-linked role here; the emulator insists on a role being named, so
    // its refusal is what shows that the request named none.
    expect(refusal).toMatchObject({ message: expect.stringContaining('ServiceRole is required') });
    expect(await computeEnvironmentOf(namesOf(unconfigured.name).computeEnvironmentName)).toBeUndefined();
  });
});

describe('createJobQueue', () => {
  it('creates an enabled, tagged queue of priority 1 on its compute environment; twice is fine and re-enables it', async () => {
    // prepare
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('jq')));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createComputeEnvironment', environment });

    // act
    const first = await invoke(handler, { step: 'createJobQueue', environment });
    await batch.send(new UpdateJobQueueCommand({ jobQueue: names.jobQueueName, state: 'DISABLED' }));
    const second = await invoke(handler, { step: 'createJobQueue', environment });

    // assess
    expect(first).toEqual({ jobQueueArn: names.jobQueueArn, created: true });
    expect(second).toEqual({ jobQueueArn: names.jobQueueArn, created: false });
    expect(await jobQueueOf(names.jobQueueName)).toMatchObject({
      jobQueueArn: names.jobQueueArn,
      state: 'ENABLED',
      status: 'VALID',
      priority: 1,
      computeEnvironmentOrder: [{ order: 1, computeEnvironment: names.computeEnvironmentArn }],
      tags: tagsFor(currentDeployment(), environment.name, OWNER),
    });
  });

  it('cancels jobs Batch reports blocked RUNNABLE, on a new queue and again on an existing one of ours', async () => {
    // prepare: the emulator accepts jobStateTimeLimitActions but does not keep them, so the requests are read.
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('jq-limits')));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createComputeEnvironment', environment });
    const send = jest.spyOn(BatchClient.prototype, 'send');
    let commands: unknown[] = [];
    const sentFor = (name: string) =>
      commands
        .filter((command) => command instanceof CreateJobQueueCommand || command instanceof UpdateJobQueueCommand)
        .map((command) => command.input as { jobQueueName?: string; jobQueue?: string; jobStateTimeLimitActions?: unknown })
        .filter((input) => (input.jobQueueName ?? input.jobQueue) === name);

    // act
    try {
      await invoke(handler, { step: 'createJobQueue', environment });
      await invoke(handler, { step: 'createJobQueue', environment });
    } finally {
      // Restoring the spy forgets its calls: keep them first.
      commands = send.mock.calls.map(([command]) => command);
      send.mockRestore();
    }

    // assess
    const expected = [
      { reason: 'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT', state: 'RUNNABLE', action: 'CANCEL', maxTimeSeconds: 600 },
      { reason: 'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE', state: 'RUNNABLE', action: 'CANCEL', maxTimeSeconds: 600 },
      { reason: 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY', state: 'RUNNABLE', action: 'CANCEL', maxTimeSeconds: 1800 },
    ];
    const sent = sentFor(names.jobQueueName);
    expect(sent.length).toBeGreaterThanOrEqual(3);
    expect(sent[0]).toMatchObject({ jobQueueName: names.jobQueueName, jobStateTimeLimitActions: expected });
    expect(sent.at(-1)).toEqual({ jobQueue: names.jobQueueName, jobStateTimeLimitActions: expected });
    expect(await jobQueueOf(names.jobQueueName)).toMatchObject({ state: 'ENABLED', status: 'VALID' });
  });

  it('refuses a queue with its name that belongs to another environment, and leaves it as it was', async () => {
    // prepare: a disabled queue with the name this environment derives, tagged as bob's.
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('jq-taken')));
    const names = namesOf(environment.name);
    await invoke(handler, { step: 'createComputeEnvironment', environment });
    await batch.send(
      new CreateJobQueueCommand({
        jobQueueName: names.jobQueueName,
        state: 'DISABLED',
        priority: 7,
        computeEnvironmentOrder: [{ order: 1, computeEnvironment: names.computeEnvironmentArn }],
        tags: { [TAG.environment]: 'bob' },
      }),
    );

    // act
    const attempt = invoke(handler, { step: 'createJobQueue', environment });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceConflict' });
    expect(await jobQueueOf(names.jobQueueName)).toMatchObject({ state: 'DISABLED', priority: 7 });
  });
});

describe('polling', () => {
  it('reports VALID once the compute environment and queue are usable, counting attempts', async () => {
    // prepare
    const environment = await readyEnvironment('poll-valid');

    // act
    const computeEnvironment = await poll('pollComputeEnvironment', environment, 'VALID');
    const jobQueue = await poll('pollJobQueue', environment, 'VALID');

    // assess
    expect(computeEnvironment).toEqual({ done: true, attempt: 1, waitSeconds: 3, recreate: false });
    expect(jobQueue).toEqual({ done: true, attempt: 1, waitSeconds: 3 });
  });

  it('keeps waiting for VALID while a compute environment of ours is disabled', async () => {
    // prepare
    const environment = await readyEnvironment('poll-wait');
    const names = namesOf(environment.name);
    await batch.send(new UpdateComputeEnvironmentCommand({ computeEnvironment: names.computeEnvironmentName, state: 'DISABLED' }));

    // act
    const answer = await poll('pollComputeEnvironment', environment, 'VALID');

    // assess
    expect(answer).toEqual({ done: false, attempt: 1, waitSeconds: 3, recreate: false });
  });

  it('fails the VALID wait with ResourceFailed when the compute environment disappeared', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('poll-missing'));

    // act
    const attempt = poll('pollComputeEnvironment', environment, 'VALID');

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceFailed', message: expect.stringContaining('disappeared') });
  });

  it('refuses a poll without "until" as invalid input', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('poll-bad'));

    // act
    const attempt = invoke(handler, { step: 'pollJobQueue', environment, poll: FIRST_POLL });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ValidationError' });
  });
});

describe('teardown in the order AWS requires', () => {
  it('disables and deletes the queue, then the compute environment, waiting for each; every step twice; all gone at the end', async () => {
    // prepare
    const environment = await readyEnvironment('teardown');
    const names = namesOf(environment.name);
    const twice = async (step: string) => {
      const first = await invoke(handler, { step, environment });
      const second = await invoke(handler, { step, environment });
      return [first, second];
    };

    // act + assess, step by step as teardown.asl.json runs them
    expect(await twice('disableJobQueue')).toEqual([{ disabled: true }, { disabled: true }]);
    expect((await jobQueueOf(names.jobQueueName))?.state).toBe('DISABLED');
    expect((await poll('pollJobQueue', environment, 'DISABLED')).done).toBe(true);
    expect((await poll('pollJobQueue', environment, 'GONE')).done).toBe(false);

    expect((await twice('deleteJobQueue'))[0]).toEqual({ deleted: true });
    expect(await jobQueueOf(names.jobQueueName)).toBeUndefined();
    expect((await poll('pollJobQueue', environment, 'GONE')).done).toBe(true);

    expect(await twice('disableComputeEnvironment')).toEqual([{ disabled: true }, { disabled: true }]);
    expect((await computeEnvironmentOf(names.computeEnvironmentName))?.state).toBe('DISABLED');
    expect((await poll('pollComputeEnvironment', environment, 'DISABLED')).done).toBe(true);

    expect((await twice('deleteComputeEnvironment'))[0]).toEqual({ deleted: true });
    expect(await computeEnvironmentOf(names.computeEnvironmentName)).toBeUndefined();
    expect((await poll('pollComputeEnvironment', environment, 'GONE')).done).toBe(true);
  });

  it('on resources that are already gone, every teardown step succeeds and every wait is over', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('teardown-gone'));

    // act
    const answers = [];
    for (const step of ['disableJobQueue', 'deleteJobQueue', 'disableComputeEnvironment', 'deleteComputeEnvironment']) {
      answers.push(await invoke(handler, { step, environment }));
    }
    const waits = [
      await poll('pollJobQueue', environment, 'DISABLED'),
      await poll('pollJobQueue', environment, 'GONE'),
      await poll('pollComputeEnvironment', environment, 'DISABLED'),
      await poll('pollComputeEnvironment', environment, 'GONE'),
    ];

    // assess
    expect(answers).toEqual([{ disabled: false }, { deleted: false }, { disabled: false }, { deleted: false }]);
    expect(waits.every((wait) => wait.done)).toBe(true);
  });

  it('leaves alone a compute environment with its name that belongs to another environment', async () => {
    // prepare
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('teardown-foreign')));
    const names = namesOf(environment.name);
    await batch.send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: names.computeEnvironmentName,
        type: 'UNMANAGED',
        state: 'ENABLED',
        serviceRole: context.bootstrap.env[SETTING.batchServiceRoleArn],
        tags: { [TAG.environment]: 'bob' },
      }),
    );

    // act
    const disabled = await invoke(handler, { step: 'disableComputeEnvironment', environment });
    const deleted = await invoke(handler, { step: 'deleteComputeEnvironment', environment });
    const wait = await poll('pollComputeEnvironment', environment, 'GONE');

    // assess
    expect(disabled).toEqual({ disabled: false });
    expect(deleted).toEqual({ deleted: false });
    expect(wait.done).toBe(true);
    expect(await computeEnvironmentOf(names.computeEnvironmentName)).toMatchObject({ state: 'ENABLED' });
  });

  it('removes every compute environment of the environment an interrupted update left beside the one in force, and none of anyone else', async () => {
    // prepare: revision 2 in force; an update stopped half-way left the original and its replacement (revision 3);
    // a compute environment with a revision's name is tagged as bob's
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('teardown-left'), { computeEnvironmentRevision: 2 }));
    const original = { ...environment, computeEnvironmentRevision: undefined };
    const replacement = { ...environment, computeEnvironmentRevision: 3 };
    for (const incarnation of [original, environment, replacement]) await invoke(handler, { step: 'createComputeEnvironment', environment: incarnation });
    const foreignName = `${namesOf(environment.name).computeEnvironmentName}_r9`;
    await batch.send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: foreignName,
        type: 'UNMANAGED',
        state: 'ENABLED',
        serviceRole: context.bootstrap.env[SETTING.batchServiceRoleArn],
        tags: { [TAG.environment]: 'bob' },
      }),
    );
    const names = [original, environment, replacement].map((incarnation) => namesFor(currentDeployment(), incarnation.name, incarnation.computeEnvironmentRevision).computeEnvironmentName);
    const wait = (until: string) =>
      invoke<PollAnswer>(handler, { step: 'pollComputeEnvironment', environment, until, everyComputeEnvironment: true, poll: FIRST_POLL });

    // act, as teardown.asl.json runs the steps
    const disabled = await invoke(handler, { step: 'disableComputeEnvironment', environment });
    const states = await Promise.all(names.map(async (name) => (await computeEnvironmentOf(name))?.state));
    const disabledWait = await wait('DISABLED');
    const deleted = await invoke(handler, { step: 'deleteComputeEnvironment', environment });
    const goneWait = await wait('GONE');
    const left = await Promise.all(names.map((name) => computeEnvironmentOf(name)));

    // assess
    expect(names).toEqual([expect.not.stringContaining('_r'), expect.stringMatching(/_r2$/), expect.stringMatching(/_r3$/)]);
    expect({ disabled, states, disabledWait: disabledWait.done }).toEqual({ disabled: { disabled: true }, states: ['DISABLED', 'DISABLED', 'DISABLED'], disabledWait: true });
    expect({ deleted, goneWait: goneWait.done, left }).toEqual({ deleted: { deleted: true }, goneWait: true, left: [undefined, undefined, undefined] });
    expect(await computeEnvironmentOf(foreignName)).toMatchObject({ state: 'ENABLED' });
  });
});

/**
 * A compute environment AWS reports INVALID. moto's DescribeComputeEnvironments always answers status VALID
 * ("Compute environment is available", moto/batch/models.py), and no request makes it answer otherwise; so
 * the answer's status and statusReason (and only those) are replaced for one compute environment, after the
 * request went to the emulator and came back. Everything else, creating, disabling, deleting, is the
 * emulator's. Undone by the returned function; one at a time (a second spy on send would replace the first).
 */
function reportInvalid(computeEnvironmentNames: string | string[], statusReason: string): () => void {
  const invalid = new Set([computeEnvironmentNames].flat());
  const send = BatchClient.prototype.send;
  const spy = jest.spyOn(BatchClient.prototype, 'send').mockImplementation(async function (this: BatchClient, ...args: unknown[]) {
    const output = await (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    if (args[0] instanceof DescribeComputeEnvironmentsCommand) {
      for (const detail of (output as { computeEnvironments?: ComputeEnvironmentDetail[] }).computeEnvironments ?? []) {
        if (invalid.has(detail.computeEnvironmentName ?? '') && detail.status === 'VALID') Object.assign(detail, { status: 'INVALID', statusReason });
      }
    }
    return output;
  });
  return () => spy.mockRestore();
}

/** Real AWS texts (sources in test/unit/steps/iam-propagation.test.ts). */
const IAM_REASON = 'CLIENT_ERROR - Invalid IamInstanceProfile: mfenv-alice-instance';
const SUBNET_REASON = "CLIENT_ERROR - The subnet ID 'subnet-0abc' does not exist";

/** The registry record as the API writes it for a create: the reset steps act only on this very create. */
async function recordCreate(environment: WorkflowEnvironment, status: EnvironmentStatus = 'CREATING'): Promise<void> {
  const record = recordFor(environment, status);
  await dynamoClient().send(
    new PutCommand({ TableName: settings.tableName(), Item: { pk: `ENV#${environment.name}`, kind: 'environment', ...record } }),
  );
}

describe('a compute environment AWS made INVALID', () => {
  it('for a role or instance profile it could not see yet: the VALID wait answers "recreate" instead of failing', async () => {
    // prepare
    const environment = await readyEnvironment('invalid-iam');
    const restore = reportInvalid(namesOf(environment.name).computeEnvironmentName, IAM_REASON);

    // act
    const answer = await poll('pollComputeEnvironment', environment, 'VALID').finally(restore);

    // assess
    expect(answer).toEqual({ done: false, attempt: 1, waitSeconds: 3, recreate: true });
  });

  it('once re-created, any INVALID fails the create with a reason saying it was re-created once', async () => {
    // prepare
    const environment = await readyEnvironment('invalid-again');
    const restore = reportInvalid(namesOf(environment.name).computeEnvironmentName, IAM_REASON);

    // act
    const attempt = invoke(handler, {
      step: 'pollComputeEnvironment',
      environment,
      until: 'VALID',
      computeEnvironmentRecreated: true,
      poll: FIRST_POLL,
    }).finally(restore);

    // assess
    await expect(attempt).rejects.toMatchObject({
      name: 'ResourceFailed',
      message: expect.stringMatching(/INVALID again after it was deleted and re-created once: CLIENT_ERROR - Invalid IamInstanceProfile/),
    });
  });

  it('for any other reason: fails at once with AWS\'s reason, nothing to re-create', async () => {
    // prepare
    const environment = await readyEnvironment('invalid-subnet');
    const restore = reportInvalid(namesOf(environment.name).computeEnvironmentName, SUBNET_REASON);

    // act
    const attempt = poll('pollComputeEnvironment', environment, 'VALID').finally(restore);

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ResourceFailed', message: expect.stringContaining("The subnet ID 'subnet-0abc' does not exist") });
    await expect(attempt).rejects.not.toMatchObject({ message: expect.stringContaining('re-created') });
  });

  it('is disabled, deleted and created again by the re-create path, each wait seeing its state', async () => {
    // prepare
    const environment = await withInstanceProfile(workflowEnvironment(uniqueName('recreate')));
    const names = namesOf(environment.name);
    await recordCreate(environment);
    await invoke(handler, { step: 'createComputeEnvironment', environment });
    const restore = reportInvalid(names.computeEnvironmentName, IAM_REASON);

    // act, as provision.asl.json runs them
    const answers: Record<string, unknown> = {};
    try {
      answers.disabled = await invoke(handler, { step: 'disableInvalidComputeEnvironment', environment });
      answers.disabledWait = (await poll('pollComputeEnvironment', environment, 'DISABLED')).done;
      answers.deleted = await invoke(handler, { step: 'deleteInvalidComputeEnvironment', environment });
      answers.goneWait = (await poll('pollComputeEnvironment', environment, 'GONE')).done;
    } finally {
      restore();
    }
    answers.created = await invoke(handler, { step: 'createComputeEnvironment', environment });

    // assess
    expect(answers).toEqual({
      disabled: { disabled: true },
      disabledWait: true,
      deleted: { deleted: true },
      goneWait: true,
      created: { computeEnvironmentArn: names.computeEnvironmentArn, created: true },
    });
    expect(await computeEnvironmentOf(names.computeEnvironmentName)).toMatchObject({ state: 'ENABLED', status: 'VALID' });
  });

  it('the reset steps never touch a VALID compute environment', async () => {
    // prepare
    const environment = await readyEnvironment('reset-valid');
    await recordCreate(environment);

    // act
    const disabling = outcomeOf(invoke(handler, { step: 'disableInvalidComputeEnvironment', environment }));
    const deleting = outcomeOf(invoke(handler, { step: 'deleteInvalidComputeEnvironment', environment }));

    // assess
    expect(await disabling).toMatchObject({ name: 'ResourceFailed', message: expect.stringContaining('is VALID, not INVALID') });
    expect(await deleting).toMatchObject({ name: 'ResourceFailed' });
    expect(await computeEnvironmentOf(namesOf(environment.name).computeEnvironmentName)).toMatchObject({ state: 'ENABLED', status: 'VALID' });
  });

  it('the reset steps touch nothing unless the registry shows this very create, nor a compute environment of another environment', async () => {
    // prepare: an INVALID compute environment of ours whose record shows a teardown, and one tagged as bob's
    const deleting = await readyEnvironment('reset-unrecorded');
    await recordCreate(deleting, 'DELETING');
    const foreign = await withInstanceProfile(workflowEnvironment(uniqueName('reset-foreign')));
    await recordCreate(foreign);
    await batch.send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: namesOf(foreign.name).computeEnvironmentName,
        type: 'UNMANAGED',
        state: 'ENABLED',
        serviceRole: context.bootstrap.env[SETTING.batchServiceRoleArn],
        tags: { [TAG.environment]: 'bob' },
      }),
    );
    const restore = reportInvalid([namesOf(deleting.name).computeEnvironmentName, namesOf(foreign.name).computeEnvironmentName], IAM_REASON);

    // act
    const refused = outcomeOf(invoke(handler, { step: 'deleteInvalidComputeEnvironment', environment: deleting }));
    const foreignAnswers = [
      await invoke(handler, { step: 'disableInvalidComputeEnvironment', environment: foreign }),
      await invoke(handler, { step: 'deleteInvalidComputeEnvironment', environment: foreign }),
    ];
    const refusal = await refused;
    restore();

    // assess
    expect(refusal).toMatchObject({ name: 'ValidationError', message: expect.stringContaining('DELETING at generation 1, not CREATING') });
    expect(foreignAnswers).toEqual([{ disabled: false }, { deleted: false }]);
    expect(await computeEnvironmentOf(namesOf(deleting.name).computeEnvironmentName)).toMatchObject({ state: 'ENABLED' });
    expect(await computeEnvironmentOf(namesOf(foreign.name).computeEnvironmentName)).toMatchObject({ state: 'ENABLED' });
  });
});
