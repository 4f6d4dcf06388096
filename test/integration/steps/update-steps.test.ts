/**
 * The update workflow's steps (statemachine/update.asl.json) against the emulator: planning (in place, or a
 * replacement where AWS changes no instance types in place), changing and restoring a compute environment,
 * moving the queue, retiring a compute environment only once the queue no longer uses it, the guard that
 * lets an update remove nothing but what it replaces, and the registry steps that end an update.
 */
import { BatchClient, type ComputeEnvironmentDetail, DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { CreateInstanceProfileCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../../lambdas/core/clients';
import type { Spec, WorkflowEnvironment } from '../../../lambdas/core/environment';
import { namesFor } from '../../../lambdas/core/naming';
import * as registry from '../../../lambdas/core/registry';
import { SETTING, currentDeployment, settings } from '../../../lambdas/core/settings';
import { handler as batchSteps } from '../../../lambdas/steps/batch-steps';
import { handler as registrySteps } from '../../../lambdas/steps/registry-steps';
import { useEmulator } from '../../support/emulator';
import { outcomeOf } from '../../support/outcome';
import { invoke, namesOf, quietLogs, recordFor, uniqueName, withSetting, workflowEnvironment } from './fixtures';

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

const FIRST_POLL = { attempt: 0, waitSeconds: 3 };
const CPU: Spec = { maxVcpus: 16, gpu: false, scheduling: false };

async function computeEnvironmentOf(name: string): Promise<ComputeEnvironmentDetail | undefined> {
  const { computeEnvironments = [] } = await batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [name] }));
  return computeEnvironments.find((candidate) => candidate.computeEnvironmentName === name);
}

async function queueOrder(name: string): Promise<string[]> {
  const { jobQueues = [] } = await batch.send(new DescribeJobQueuesCommand({ jobQueues: [namesOf(name).jobQueueName] }));
  return (jobQueues[0]?.computeEnvironmentOrder ?? []).map((entry) => entry.computeEnvironment!);
}

/** An ordinary role a deployment may name as Batch's service role (mfenv:batchServiceRoleArn). */
async function ownServiceRole(): Promise<string> {
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: uniqueName('batch-service'),
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'batch.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }),
  );
  return Role!.Arn!;
}

/**
 * A READY environment (compute environment and queue made by the provisioning's steps, optionally naming a
 * service role of its own), then the record as a PATCH leaves it: UPDATING at the next generation asking for
 * `wanted`. Answers the update workflow's environment.
 */
async function updating(wanted: Partial<Spec>, options: { serviceRoleArn?: string; from?: Spec } = {}): Promise<WorkflowEnvironment> {
  const from = options.from ?? CPU;
  const created = workflowEnvironment(uniqueName('upd'), { spec: from });
  const names = namesOf(created.name);
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName, Path: names.iamPath }));
  const make = async () => {
    await invoke(batchSteps, { step: 'createComputeEnvironment', environment: created });
    await invoke(batchSteps, { step: 'createJobQueue', environment: created });
  };
  if (options.serviceRoleArn) await withSetting(SETTING.batchServiceRoleArn, options.serviceRoleArn, make);
  else await make();
  const spec = { ...from, ...wanted };
  const environment: WorkflowEnvironment = { ...created, spec, generation: 2, mode: 'update' };
  const record = { ...recordFor(created, 'UPDATING'), generation: 2, pendingSpec: spec, config: {} };
  await dynamoClient().send(new PutCommand({ TableName: settings.tableName(), Item: { pk: `ENV#${created.name}`, kind: 'environment', ...record } }));
  return environment;
}

type Plan = { compute: string; scheduling: string; previous: WorkflowEnvironment; replacement: WorkflowEnvironment; inForce: WorkflowEnvironment };

describe('planUpdate', () => {
  it('changes a larger maxVcpus in place, on the compute environment in force', async () => {
    // prepare
    const environment = await updating({ maxVcpus: 32 });

    // act
    const plan = await invoke<Plan>(batchSteps, { step: 'planUpdate', environment });

    // assess
    expect(plan).toMatchObject({ compute: 'inPlace', scheduling: 'none' });
    expect(plan.inForce.computeEnvironmentRevision).toBeUndefined();
  });

  it("changes instance types in place where the compute environment uses Batch's service-linked role", async () => {
    // prepare: the emulator's deployment names the service-linked role
    const environment = await updating({ gpu: true });

    // act
    const plan = await invoke<Plan>(batchSteps, { step: 'planUpdate', environment });

    // assess
    expect(plan.compute).toBe('inPlace');
  });

  it('re-creates under the update\'s generation where the deployment names its own service role, and adds scheduling', async () => {
    // prepare
    const environment = await updating({ gpu: true, scheduling: true }, { serviceRoleArn: await ownServiceRole() });

    // act
    const plan = await invoke<Plan>(batchSteps, { step: 'planUpdate', environment });

    // assess
    expect(plan).toMatchObject({ compute: 'recreate', scheduling: 'add' });
    expect(plan.replacement.computeEnvironmentRevision).toBe(2);
    expect(plan.inForce).toEqual(plan.replacement);
  });

  it('starts nothing for a workflow the record does not show: another spec, or another generation', async () => {
    // prepare
    const environment = await updating({ maxVcpus: 32 });

    // act
    const otherSpec = outcomeOf(invoke(batchSteps, { step: 'planUpdate', environment: { ...environment, spec: { ...environment.spec, maxVcpus: 64 } } }));
    const otherGeneration = outcomeOf(invoke(batchSteps, { step: 'planUpdate', environment: { ...environment, generation: 3 } }));

    // assess
    expect(await otherSpec).toMatchObject({ name: 'TeardownNotRecorded', message: expect.stringContaining('another spec') });
    expect(await otherGeneration).toMatchObject({ name: 'TeardownNotRecorded', message: expect.stringContaining('not UPDATING at generation 3') });
  });
});

describe('updateComputeEnvironment and restoreComputeEnvironment', () => {
  it('applies maxvCpus and the GPU instance types in place, once, and puts the recorded spec back', async () => {
    // prepare
    const environment = await updating({ maxVcpus: 32, gpu: true });
    const name = namesOf(environment.name).computeEnvironmentName;

    // act
    const first = await invoke(batchSteps, { step: 'updateComputeEnvironment', environment });
    const again = await invoke(batchSteps, { step: 'updateComputeEnvironment', environment });
    const changed = await computeEnvironmentOf(name);
    const settled = await invoke(batchSteps, { step: 'pollComputeEnvironmentSettled', environment, poll: FIRST_POLL });
    const restored = await invoke(batchSteps, { step: 'restoreComputeEnvironment', environment });

    // assess
    expect({ first, again, settled: settled.done }).toEqual({ first: { updated: true, instanceTypesChanged: true }, again: { updated: false }, settled: true });
    expect(changed?.computeResources).toMatchObject({ maxvCpus: 32, instanceTypes: expect.arrayContaining(['optimal', 'g4dn']) });
    expect(restored).toEqual({ restored: true });
    expect((await computeEnvironmentOf(name))?.computeResources).toMatchObject({ maxvCpus: 16, instanceTypes: ['optimal'] });
  });

  it('refuses a maxVcpus over the ceiling, whatever the input says, and changes nothing', async () => {
    // prepare
    const environment = await updating({ maxVcpus: 32 });
    const record = (await registry.getEnvironment(environment.name))!;
    const over = { ...environment, spec: { ...environment.spec, maxVcpus: 1000 } };
    await registry.transition(environment.name, { from: ['UPDATING'], to: 'UPDATING', statusReason: null, set: { pendingSpec: over.spec } });

    // act
    const attempt = invoke(batchSteps, { step: 'updateComputeEnvironment', environment: over });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringContaining('ceiling') });
    expect((await computeEnvironmentOf(namesOf(environment.name).computeEnvironmentName))?.computeResources?.maxvCpus).toBe(record.spec.maxVcpus);
  });
});

describe('moving the queue and retiring a compute environment', () => {
  it('never retires the compute environment the queue uses; moves the queue, then retires the old one', async () => {
    // prepare: the replacement, made as the update workflow makes it
    const environment = await updating({ gpu: true }, { serviceRoleArn: await ownServiceRole() });
    const plan = await invoke<Plan>(batchSteps, { step: 'planUpdate', environment });
    await withSetting(SETTING.batchServiceRoleArn, await ownServiceRole(), () =>
      invoke(batchSteps, { step: 'createComputeEnvironment', environment: plan.replacement }),
    );
    const previous = namesOf(environment.name);
    const replacement = namesFor(currentDeployment(), environment.name, 2);

    // act
    const tooEarly = invoke(batchSteps, { step: 'deleteRetiredComputeEnvironment', environment, computeEnvironment: 'previous' }, { unrecorded: true });
    await expect(tooEarly).rejects.toMatchObject({ name: 'ResourceFailed', message: expect.stringContaining('still sends jobs to it') });
    const switched = await invoke(batchSteps, { step: 'switchJobQueue', environment });
    const replacementInUse = invoke(batchSteps, { step: 'disableRetiredComputeEnvironment', environment, computeEnvironment: 'replacement' }, { unrecorded: true });
    await expect(replacementInUse).rejects.toMatchObject({ name: 'ResourceFailed' });
    const disabled = await invoke(batchSteps, { step: 'disableRetiredComputeEnvironment', environment, computeEnvironment: 'previous' }, { unrecorded: true });
    const deleted = await invoke(batchSteps, { step: 'deleteRetiredComputeEnvironment', environment, computeEnvironment: 'previous' }, { unrecorded: true });

    // assess
    expect(switched).toEqual({ switched: true, computeEnvironmentArn: replacement.computeEnvironmentArn });
    expect(await queueOrder(environment.name)).toEqual([replacement.computeEnvironmentArn]);
    expect({ disabled, deleted }).toEqual({ disabled: { disabled: true }, deleted: { deleted: true } });
    expect(await computeEnvironmentOf(previous.computeEnvironmentName)).toBeUndefined();
    expect(await computeEnvironmentOf(replacement.computeEnvironmentName)).toMatchObject({ state: 'ENABLED' });
  });

  it('undoes a move: the previous compute environment enabled again and in the queue, the replacement retired', async () => {
    // prepare: moved to the replacement, the previous one disabled
    const environment = await updating({ gpu: true }, { serviceRoleArn: await ownServiceRole() });
    const plan = await invoke<Plan>(batchSteps, { step: 'planUpdate', environment });
    await withSetting(SETTING.batchServiceRoleArn, await ownServiceRole(), () =>
      invoke(batchSteps, { step: 'createComputeEnvironment', environment: plan.replacement }),
    );
    await invoke(batchSteps, { step: 'switchJobQueue', environment });
    await invoke(batchSteps, { step: 'disableRetiredComputeEnvironment', environment, computeEnvironment: 'previous' }, { unrecorded: true });
    const previous = namesOf(environment.name);
    const replacement = namesFor(currentDeployment(), environment.name, 2);

    // act
    const restored = await invoke(batchSteps, { step: 'restoreJobQueue', environment });
    await invoke(batchSteps, { step: 'disableRetiredComputeEnvironment', environment, computeEnvironment: 'replacement' }, { unrecorded: true });
    await invoke(batchSteps, { step: 'deleteRetiredComputeEnvironment', environment, computeEnvironment: 'replacement' }, { unrecorded: true });

    // assess
    expect(restored).toEqual({ restored: true, computeEnvironmentArn: previous.computeEnvironmentArn });
    expect(await queueOrder(environment.name)).toEqual([previous.computeEnvironmentArn]);
    expect(await computeEnvironmentOf(previous.computeEnvironmentName)).toMatchObject({ state: 'ENABLED' });
    expect(await computeEnvironmentOf(replacement.computeEnvironmentName)).toBeUndefined();
  });

  it('lets an update run no teardown step: deleting the queue in update mode removes nothing', async () => {
    // prepare
    const environment = await updating({ maxVcpus: 32 });

    // act
    const attempt = invoke(batchSteps, { step: 'deleteJobQueue', environment }, { unrecorded: true });

    // assess
    await expect(attempt).rejects.toMatchObject({ name: 'TeardownNotRecorded', message: expect.stringContaining('may not run deleteJobQueue') });
    expect(await queueOrder(environment.name)).toEqual([namesOf(environment.name).computeEnvironmentArn]);
  });
});

describe('markUpdated and markUpdateFailed', () => {
  it('records READY with the new spec, the replacement in force and the payload with scheduling keys', async () => {
    // prepare
    const environment = await updating({ gpu: true, scheduling: true }, { serviceRoleArn: await ownServiceRole() });
    const plan = await invoke<Plan>(batchSteps, { step: 'planUpdate', environment });

    // act
    await invoke(registrySteps, { step: 'markUpdated', environment: plan.inForce });
    const again = await invoke(registrySteps, { step: 'markUpdated', environment: plan.inForce });

    // assess
    const record = (await registry.getEnvironment(environment.name))!;
    expect(again).toEqual({ status: 'READY' });
    expect(record).toMatchObject({ status: 'READY', statusReason: null, spec: environment.spec, pendingSpec: null, computeEnvironmentRevision: 2 });
    expect(record.resources.computeEnvironmentArn).toBe(namesFor(currentDeployment(), environment.name, 2).computeEnvironmentArn);
    expect(record.config).toEqual(expect.objectContaining({ METAFLOW_SFN_IAM_ROLE: expect.any(String) }));
  });

  it('records READY with the previous spec and a reason saying what failed and what to do', async () => {
    // prepare
    const environment = await updating({ maxVcpus: 32 });

    // act
    await invoke(registrySteps, {
      step: 'markUpdateFailed',
      environment,
      error: { Error: 'ResourceFailed', Cause: JSON.stringify({ errorType: 'ResourceFailed', errorMessage: 'AWS said no.' }) },
    });

    // assess
    const record = (await registry.getEnvironment(environment.name))!;
    expect(record).toMatchObject({ status: 'READY', spec: CPU, pendingSpec: null });
    expect(record.statusReason).toBe(
      'Resizing to maxVcpus 32, gpu false, scheduling false failed: AWS said no. Nothing was changed. ' +
        'It keeps its previous settings (maxVcpus 16, gpu false, scheduling false). Send PATCH again to retry.',
    );
  });
});
