/**
 * Local mode honours the deploy-time settings it is started with (npm start reads them from MFENV_*): the
 * vCPU ceiling in the request check and the served OpenAPI document, the quota per teammate, and the Spot
 * allocation strategy of the compute environments the workflow creates.
 */
import { BatchClient, DescribeComputeEnvironmentsCommand } from '@aws-sdk/client-batch';
import { emulatorClientConfig } from '../../infra/local/bootstrap';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, apiClient, signedFetch } from '../support/signed-client';

process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
jest.setTimeout(180_000);

const context = useLocalMode({ maxVcpusCeiling: 8, maxEnvironmentsPerOwner: 1, spotAllocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED' });
let asCarol: ApiClient;

beforeAll(async () => {
  asCarol = apiClient(context.local.apiUrl, await context.local.createUser('carol'));
});

async function waitUntilSettled(name: string): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { json } = await asCarol.get(`/environments/${name}`);
    if (json?.status !== 'CREATING' || Date.now() > deadline) return json?.status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('local mode with deploy-time settings', () => {
  it('checks maxVcpus against its ceiling, and documents that ceiling', async () => {
    // act
    const tooMany = await asCarol.post('/environments', { name: 'big-one', maxVcpus: 9 });
    const document = await signedFetch(context.local.apiUrl, undefined, 'GET', '/openapi.json');

    // assess
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.detail).toContain('at most 8');
    expect(document.json.components.schemas.CreateEnvironmentRequest.properties.maxVcpus).toMatchObject({ maximum: 8, default: 8 });
  });

  it('holds a teammate to its quota per teammate', async () => {
    // act
    const first = await asCarol.post('/environments', { name: 'first', gpu: false });
    const second = await asCarol.post('/environments', { name: 'second' });

    // assess
    expect(first.status).toBe(202);
    expect(first.json.spec).toEqual({ maxVcpus: 8, gpu: false, scheduling: false });
    expect(second.status).toBe(409);
    expect(second.json).toMatchObject({ type: 'urn:mfenv:problem:quota-exceeded' });
    expect(second.json.detail).toContain('quota per teammate: 1');
  });

  it('creates compute environments with its Spot allocation strategy', async () => {
    // act
    const status = await waitUntilSettled('first');
    const { json: environment } = await asCarol.get('/environments/first');

    // assess
    expect({ status, statusReason: environment.statusReason }).toEqual({ status: 'READY', statusReason: null });
    const batch = new BatchClient(emulatorClientConfig(context.local.emulatorEndpoint));
    const { computeEnvironments } = await batch.send(
      new DescribeComputeEnvironmentsCommand({ computeEnvironments: [environment.resources.computeEnvironmentArn] }),
    );
    batch.destroy();
    expect(computeEnvironments?.[0]?.computeResources).toMatchObject({ allocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED', maxvCpus: 8 });
  });
});
