/**
 * The preflight of POST /environments against the emulator (DESIGN §4): Spot quotas set in the emulator's
 * Service Quotas over HTTP (infra/local/moto_quotas.py), the region's real instance offerings, subnets and
 * Batch objects made in the emulator. A refusal answers problem+json and changes nothing: no record, no
 * counter, no workflow, and its Idempotency-Key is free again; a limit creates the environment with warnings.
 */
import { BatchClient, CreateComputeEnvironmentCommand, DeleteComputeEnvironmentCommand } from '@aws-sdk/client-batch';
import { CreateSubnetCommand, EC2Client } from '@aws-sdk/client-ec2';
import * as registry from '../../../lambdas/core/registry';
import { SETTING } from '../../../lambdas/core/settings';
import { type Answer, userArn } from '../../support/api-events';
import { useEmulator } from '../../support/emulator';
import { asAlice, executionsFor, snapshot, uniqueName, useFreshRegistryAndWorkflows } from './fixtures';

const emulator = useEmulator();
const workflows = useFreshRegistryAndWorkflows(emulator);

const STANDARD = 'L-34B43A08';
const GPU = 'L-3819A6DF';

/** Sets Spot quotas in the emulator's Service Quotas, over HTTP. */
async function setQuotas(body: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${emulator.context.emulator.endpoint}/_mfenv/quotas`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
}

afterEach(async () => {
  // Back to local mode's generous quotas and the file's settings.
  await setQuotas({ deny: false });
  await setQuotas({ quotaCode: STANDARD, value: 10000 });
  await setQuotas({ quotaCode: GPU, value: 10000 });
  for (const setting of [SETTING.gpuInstanceFamilies, SETTING.networkIsolation, SETTING.subnetIds]) {
    process.env[setting] = emulator.context.bootstrap.env[setting];
  }
});

function expectProblem(answer: Answer, status: number, type: string) {
  expect({ status: answer.status, contentType: answer.headers['content-type'], type: answer.json.type }).toEqual({
    status,
    contentType: 'application/problem+json',
    type: `urn:mfenv:problem:${type}`,
  });
}

describe('Spot quotas', () => {
  it("refuses a create when the standard Spot quota is 0 (AWS's default, read through GetAWSDefaultServiceQuota), changing nothing", async () => {
    // prepare: never changed from a default of 0, so GetServiceQuota answers NoSuchResourceException
    await setQuotas({ quotaCode: STANDARD, value: null, defaultValue: 0 });
    const name = uniqueName('no-spot');
    const key = { headers: { 'Idempotency-Key': `key-${name}` } };
    const before = await snapshot(workflows);

    // act
    const refused = await asAlice.post('/environments', { name, maxVcpus: 16 }, key);

    // assess: the problem names the quota, its code and how to raise it; nothing was written or started
    expectProblem(refused, 409, 'spot-quota-zero');
    expect(refused.json.title).toBe('The account has no Spot vCPU quota');
    expect(refused.json.detail).toContain('"All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests" (ec2 L-34B43A08) is 0 vCPUs in us-east-1');
    expect(refused.json.detail).toContain('aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-34B43A08 --desired-value 16');
    expect(await snapshot(workflows)).toEqual(before);
    expect(await registry.getEnvironment(name)).toBeUndefined();

    // act: the quota raised, the same key runs the request (the refusal released it)
    await setQuotas({ quotaCode: STANDARD, value: 64 });
    const created = await asAlice.post('/environments', { name, maxVcpus: 16 }, key);

    // assess
    expect(created.status).toBe(202);
    expect(created.headers['idempotent-replayed']).toBeUndefined();
  });

  it("creates with a warning when the standard quota is a new account's 5 vCPUs, below maxVcpus; the record and GET carry it", async () => {
    // prepare
    await setQuotas({ quotaCode: STANDARD, value: null, defaultValue: 5 });
    const name = uniqueName('low-spot');

    // act
    const created = await asAlice.post('/environments', { name, maxVcpus: 32, gpu: false });
    const got = await asAlice.get(`/environments/${name}`);

    // assess
    expect(created.status).toBe(202);
    expect(created.json.warnings).toEqual([expect.stringMatching(/L-34B43A08\) is 5 vCPUs in us-east-1, below this environment's maxVcpus \(32\)/)]);
    expect(got.json.warnings).toEqual(created.json.warnings);
    expect((await registry.getEnvironment(name))!.warnings).toEqual(created.json.warnings);
  });

  it('creates a GPU environment with a warning when the G and VT quota is 0', async () => {
    // prepare
    await setQuotas({ quotaCode: GPU, value: 0 });
    const name = uniqueName('no-gpu-quota');

    // act
    const created = await asAlice.post('/environments', { name, maxVcpus: 16 });

    // assess
    expect(created.status).toBe(202);
    expect(created.json.spec).toMatchObject({ maxVcpus: 16, gpu: true, gpuInstanceFamilies: ['g4dn', 'g5', 'g6'] });
    expect(created.json.warnings).toEqual([expect.stringMatching(/^GPU jobs cannot start: .*L-3819A6DF.*"gpu": false/)]);
  });

  it('creates, warning that it could not check, when Service Quotas refuses the function', async () => {
    // prepare
    await setQuotas({ deny: true });
    const name = uniqueName('denied');

    // act
    const created = await asAlice.post('/environments', { name, maxVcpus: 16 });

    // assess
    expect(created.status).toBe(202);
    expect(created.json.warnings).toEqual([
      expect.stringMatching(/L-34B43A08\) could not be checked \(AccessDeniedException: /),
      expect.stringMatching(/L-3819A6DF\) could not be checked \(AccessDeniedException: /),
    ]);
  });

  it('says nothing in local mode, whose quotas are generous', async () => {
    // act
    const created = await asAlice.post('/environments', { name: uniqueName('quiet') });
    // assess
    expect(created.status).toBe(202);
    expect(created.json).not.toHaveProperty('warnings');
  });
});

describe('GPU families', () => {
  it('creates a GPU environment for CPU only, with a warning, when the region offers none of the families; the workflow gets none', async () => {
    // prepare: families the emulator's region does not offer
    process.env[SETTING.gpuInstanceFamilies] = 'zz1,zz2';
    const name = uniqueName('no-families');

    // act
    const created = await asAlice.post('/environments', { name, maxVcpus: 8 });

    // assess
    expect(created.status).toBe(202);
    expect(created.json.spec).toMatchObject({ maxVcpus: 8, gpu: true, gpuInstanceFamilies: [] });
    expect(created.json.warnings).toEqual([expect.stringMatching(/^None of the GPU instance families this deployment uses \(zz1, zz2\) is offered in us-east-1/)]);
    const { provision } = await executionsFor(workflows, name);
    expect(provision.map((execution) => execution.input.environment.spec)).toEqual([expect.objectContaining({ gpu: true, gpuInstanceFamilies: [] })]);
  });

  it('keeps the offered families only', async () => {
    // prepare
    process.env[SETTING.gpuInstanceFamilies] = 'g5,zz1';
    const name = uniqueName('some-families');

    // act
    const created = await asAlice.post('/environments', { name, maxVcpus: 8 });

    // assess
    expect(created.json.spec.gpuInstanceFamilies).toEqual(['g5']);
    expect(created.json.warnings).toEqual(['The GPU instance family zz1 is not offered in us-east-1: GPU jobs run on g5 only.']);
  });
});

describe('shared subnets without network isolation', () => {
  it('refuses with 409 deployment-misconfigured when a shared subnet gives no public address, changing nothing', async () => {
    // prepare: a subnet as an imported VPC may have it (MapPublicIpOnLaunch false, EC2's default)
    const ec2 = new EC2Client(emulator.context.clientConfig);
    const closed = (await ec2.send(new CreateSubnetCommand({ VpcId: emulator.context.bootstrap.vpcId, CidrBlock: '10.20.96.0/24' }))).Subnet!.SubnetId!;
    ec2.destroy();
    process.env[SETTING.networkIsolation] = 'false';
    process.env[SETTING.subnetIds] = [...emulator.context.bootstrap.subnetIds, closed].join(',');
    const before = await snapshot(workflows);

    // act
    const refused = await asAlice.post('/environments', { name: uniqueName('closed'), gpu: false });

    // assess
    expectProblem(refused, 409, 'deployment-misconfigured');
    expect(refused.json.detail).toContain(`its shared subnet ${closed} gives instances no public IP address`);
    expect(refused.json.detail).toContain('ask the platform owner');
    expect(await snapshot(workflows)).toEqual(before);
  });

  it('admits the bootstrap’s public subnets', async () => {
    // prepare
    process.env[SETTING.networkIsolation] = 'false';
    // act
    const created = await asAlice.post('/environments', { name: uniqueName('open'), gpu: false });
    // assess
    expect(created.status).toBe(202);
    expect(created.json).not.toHaveProperty('warnings');
  });
});

describe("the region's Batch objects", () => {
  it('refuses with 409 when the region already holds 50 compute environments (of anyone), changing nothing', async () => {
    // prepare: 50 compute environments made directly in the emulator, as other teams and tools would
    const batch = new BatchClient(emulator.context.clientConfig);
    const names = Array.from({ length: 50 }, (_, index) => `other-team-${index}`);
    for (const computeEnvironmentName of names) {
      await batch.send(
        new CreateComputeEnvironmentCommand({
          computeEnvironmentName,
          type: 'UNMANAGED',
          serviceRole: emulator.context.bootstrap.env[SETTING.batchServiceRoleArn],
        }),
      );
    }
    const before = await snapshot(workflows);

    try {
      // act
      const refused = await asAlice.post('/environments', { name: uniqueName('full'), gpu: false });

      // assess
      expectProblem(refused, 409, 'batch-limit-reached');
      expect(refused.json.detail).toContain('already holds 50 AWS Batch compute environments');
      expect(refused.json.detail).toContain('https://docs.aws.amazon.com/batch/latest/userguide/service_limits.html');
      expect(await snapshot(workflows)).toEqual(before);
    } finally {
      for (const computeEnvironment of names) await batch.send(new DeleteComputeEnvironmentCommand({ computeEnvironment }));
      batch.destroy();
    }
  });

  it('admits a create while the region holds fewer', async () => {
    // act
    const created = await asAlice.post('/environments', { name: uniqueName('room'), gpu: false });
    // assess
    expect(created.status).toBe(202);
    expect(created.json.owner).toBe(userArn('alice'));
  });
});
