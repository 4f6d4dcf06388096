/**
 * Resizing through the local HTTP API: signed PATCH → the API handler → the update ASL run locally → the
 * step handlers → the emulator. A larger maxVcpus is applied to the same compute environment; a gpu change
 * (which a deployment naming its own Batch service role cannot make in place) moves the queue to a
 * replacement compute environment; a failure injected into the emulator ends READY with the
 * previous spec, a reason, and the queue on the compute environment it had. The queue and the bucket never change.
 */
import { BatchClient, type ComputeEnvironmentDetail, DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { GetRoleCommand, GetRolePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { emulatorClientConfig } from '../../infra/local/bootstrap';
import { namesFor } from '../../lambdas/core/naming';
import { clearFaults, injectFault } from '../support/faults';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, type ApiResponse, apiClient, waitWhile } from '../support/signed-client';

process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
// Whole workflows are waited for (each wait bounded at 120 s); a busy machine must not turn that into a failure.
jest.setTimeout(300_000);

// A deployment that names its own Batch service role (mfenv:batchServiceRoleArn): AWS changes no instance
// types of its compute environments in place, so a gpu change takes the re-create path.
const local = useLocalMode({ batchServiceRole: 'own' });
let asAlice: ApiClient;
let aws: { batch: BatchClient; iam: IAMClient; s3: S3Client };

beforeAll(async () => {
  asAlice = apiClient(local.local.apiUrl, await local.local.createUser('alice'));
  const config = emulatorClientConfig(local.local.emulatorEndpoint);
  aws = { batch: new BatchClient(config), iam: new IAMClient(config), s3: new S3Client({ ...config, forcePathStyle: true }) };
}, 60_000);

afterAll(() => {
  for (const client of Object.values(aws ?? {})) client.destroy();
});

afterEach(() => clearFaults(local.local.emulatorEndpoint));

const NAME = 'rs-alice';
// Only the compute environment, queue and role names are read here, which the stack name does not change.
const names = () => namesFor({ prefix: 'mfenv', accountId: '123456789012', region: 'us-east-1', stackName: 'mfenv' }, NAME);

async function computeEnvironment(name: string): Promise<ComputeEnvironmentDetail | undefined> {
  const { computeEnvironments = [] } = await aws.batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [name] }));
  return computeEnvironments.find((candidate) => candidate.computeEnvironmentName === name);
}

async function queue() {
  const { jobQueues = [] } = await aws.batch.send(new DescribeJobQueuesCommand({ jobQueues: [names().jobQueueName] }));
  return jobQueues[0]!;
}

const patch = (json: unknown) => asAlice.send('PATCH', `/environments/${NAME}`, { json });

/** PATCHes and waits for the update to end; the accepted answer and the environment once it is READY again. */
async function resized(json: unknown): Promise<{ accepted: ApiResponse; done: ApiResponse }> {
  const accepted = await patch(json);
  expect(accepted.status).toBe(202);
  expect(accepted.json.status).toBe('UPDATING');
  return { accepted, done: await waitWhile(asAlice, NAME, 'UPDATING') };
}

function expectProblem(response: ApiResponse, status: number, type: string) {
  expect({ status: response.status, contentType: response.headers.get('content-type'), type: response.json?.type }).toEqual({
    status,
    contentType: expect.stringMatching(/^application\/problem\+json/),
    type: `urn:mfenv:problem:${type}`,
  });
}

describe('resizing an environment through the local HTTP API', () => {
  let resourcesAtCreate: Record<string, string>;

  it('refuses a PATCH while the environment is CREATING with 409 problem+json, then it becomes READY', async () => {
    // prepare
    const created = await asAlice.post('/environments', { name: NAME, maxVcpus: 8, gpu: false });
    expect(created.status).toBe(202);

    // act
    const refused = await patch({ maxVcpus: 16 });
    const ready = await waitWhile(asAlice, NAME, 'CREATING');

    // assess
    expectProblem(refused, 409, 'environment-state-conflict');
    expect(refused.json.detail).toContain('CREATING');
    expect(ready.json).toMatchObject({ status: 'READY', spec: { maxVcpus: 8, gpu: false } });
    resourcesAtCreate = ready.json.resources;
  });

  it('applies a larger maxVcpus to the same compute environment, READY again with the same queue and bucket', async () => {
    // act
    const { done } = await resized({ maxVcpus: 16 });

    // assess
    expect(done.json).toMatchObject({ status: 'READY', statusReason: null, spec: { maxVcpus: 16, gpu: false }, resources: resourcesAtCreate });
    expect(await computeEnvironment(names().computeEnvironmentName)).toMatchObject({ computeResources: expect.objectContaining({ maxvCpus: 16 }) });
    expect((await queue()).computeEnvironmentOrder).toEqual([expect.objectContaining({ computeEnvironment: names().computeEnvironmentArn })]);
    await expect(aws.s3.send(new HeadBucketCommand({ Bucket: resourcesAtCreate.bucket }))).resolves.toBeDefined();
  });

  it('moves the queue to a replacement compute environment with the GPU instance types, and removes the old one', async () => {
    // act
    const { done } = await resized({ gpu: true });

    // assess: the replacement is named after the update's generation, and the queue and bucket are the same
    const record = done.json;
    expect(record).toMatchObject({ status: 'READY', statusReason: null, spec: { maxVcpus: 16, gpu: true } });
    const newArn: string = record.resources.computeEnvironmentArn;
    expect(newArn).toMatch(/compute-environment\/mfenv-rs-alice_r\d+$/);
    expect({ ...record.resources, computeEnvironmentArn: resourcesAtCreate.computeEnvironmentArn }).toEqual(resourcesAtCreate);
    const newName = newArn.split('/').pop()!;
    const detail = await computeEnvironment(newName);
    expect(detail?.computeResources).toMatchObject({ maxvCpus: 16, instanceTypes: expect.arrayContaining(['optimal', 'g4dn']) });
    expect(await computeEnvironment(names().computeEnvironmentName)).toBeUndefined();
    expect((await queue()).computeEnvironmentOrder).toEqual([expect.objectContaining({ computeEnvironment: newArn })]);
    // The instance role's ECS permissions follow the replacement's own cluster.
    const { PolicyDocument } = await aws.iam.send(new GetRolePolicyCommand({ RoleName: names().instanceRoleName, PolicyName: 'ecs-agent-own-cluster' }));
    expect(decodeURIComponent(PolicyDocument!)).toContain(detail!.ecsClusterArn!);
  });

  it('goes back to READY with the previous spec and a reason when the change fails, the queue on the compute environment it had', async () => {
    // prepare: the old compute environment cannot be deleted, after the queue has moved to the replacement
    const before = (await asAlice.get(`/environments/${NAME}`)).json;
    const inForce = before.resources.computeEnvironmentArn.split('/').pop();
    await injectFault(local.local.emulatorEndpoint, {
      service: 'batch',
      action: 'DeleteComputeEnvironment',
      code: 'AccessDeniedException',
      status: 403,
      message: 'Injected: not allowed to delete this compute environment',
      match: inForce,
    });

    // act
    const { done } = await resized({ gpu: false });

    // assess: the previous spec and resources, the reason, and everything back where it was
    expect(done.json).toMatchObject({ status: 'READY', spec: { maxVcpus: 16, gpu: true }, resources: before.resources });
    expect(done.json.statusReason).toMatch(/^Resizing to maxVcpus 16, gpu false, scheduling false failed: .*Injected: not allowed.*Nothing was changed/);
    expect((await queue()).computeEnvironmentOrder).toEqual([expect.objectContaining({ computeEnvironment: before.resources.computeEnvironmentArn })]);
    expect(await computeEnvironment(inForce)).toMatchObject({ state: 'ENABLED', computeResources: expect.objectContaining({ instanceTypes: expect.arrayContaining(['g4dn']) }) });
    const config = await asAlice.get(`/environments/${NAME}/config`);
    expect(config.json.METAFLOW_BATCH_JOB_QUEUE).toBe(resourcesAtCreate.jobQueueArn);
  });

  it('undoes an in-place change that AWS refuses, keeping maxvCpus as it was', async () => {
    // prepare
    const before = (await asAlice.get(`/environments/${NAME}`)).json;
    const inForce = before.resources.computeEnvironmentArn.split('/').pop();
    await injectFault(local.local.emulatorEndpoint, {
      service: 'batch',
      action: 'UpdateComputeEnvironment',
      code: 'ClientException',
      message: 'Injected: maxvCpus cannot be changed now',
      match: inForce,
    });

    // act
    const { done } = await resized({ maxVcpus: 32 });

    // assess
    expect(done.json).toMatchObject({ status: 'READY', spec: { maxVcpus: 16, gpu: true } });
    expect(done.json.statusReason).toContain('Injected: maxvCpus cannot be changed now');
    expect(await computeEnvironment(inForce)).toMatchObject({ computeResources: expect.objectContaining({ maxvCpus: 16 }) });
  });

  it('turns scheduled flows on and off: their role and payload keys come and go, nothing else changes', async () => {
    // prepare
    const before = (await asAlice.get(`/environments/${NAME}`)).json;
    const sfnRole = () => aws.iam.send(new GetRoleCommand({ RoleName: `mfenv-${NAME}-sfn` }));

    // act
    const on = (await resized({ scheduling: true })).done.json;
    const configOn = (await asAlice.get(`/environments/${NAME}/config`)).json;
    await expect(sfnRole()).resolves.toBeDefined();
    const off = (await resized({ scheduling: false })).done.json;
    const configOff = (await asAlice.get(`/environments/${NAME}/config`)).json;

    // assess
    expect(on).toMatchObject({ status: 'READY', statusReason: null, spec: { ...before.spec, scheduling: true } });
    expect(on.resources).toMatchObject({ ...before.resources, sfnRoleArn: expect.stringContaining(`mfenv-${NAME}-sfn`) });
    expect(configOn).toMatchObject({ METAFLOW_SFN_IAM_ROLE: on.resources.sfnRoleArn, METAFLOW_BATCH_JOB_QUEUE: before.resources.jobQueueArn });
    expect(off).toMatchObject({ status: 'READY', statusReason: null, spec: { ...before.spec, scheduling: false }, resources: before.resources });
    expect(configOff.METAFLOW_SFN_IAM_ROLE).toBeUndefined();
    await expect(sfnRole()).rejects.toMatchObject({ name: 'NoSuchEntityException' });
  });

  it('deletes the replacement compute environment with the rest of the environment', async () => {
    // prepare
    const inForce = (await asAlice.get(`/environments/${NAME}`)).json.resources.computeEnvironmentArn.split('/').pop();

    // act
    expect((await asAlice.delete(`/environments/${NAME}`)).status).toBe(202);
    const deleted = await waitWhile(asAlice, NAME, 'DELETING');

    // assess
    expect(deleted.json).toMatchObject({ status: 'DELETED' });
    expect(await computeEnvironment(inForce)).toBeUndefined();
  });
});
