/**
 * The bundles Lambda runs, run against the emulator. The Lambda build (infra/lambda-bundle.ts) bundles the
 * SDK differently from the source every other test runs (credentials from the environment only; the
 * clients' schemas read with literal trait keys, so unused ones are dropped), so those tests cannot vouch
 * for it. Here each function is built as deployed, loaded in a fresh Node as Lambda loads it (its settings
 * in the environment, checked at init), and invoked; what it did is read back from the emulator with the
 * source's own clients, and compared with what the source answers for the same request.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { settingsReadByEntry } from '../../infra/functions';
import { BUNDLE_FILE, bundleLambda } from '../../infra/lambda-bundle';
import { handler as sourceApiHandler } from '../../lambdas/api/handler';
import { TAG } from '../../lambdas/core/naming';
import { API_FUNCTION, STEP_FUNCTIONS } from '../../lambdas/steps/catalogue';
import { apiCaller, userArn } from '../support/api-events';
import { useEmulator } from '../support/emulator';
import { scratchDir } from '../support/scratch';
import { createStandInWorkflows, quietLogs } from './api/fixtures';
import { namesOf, uniqueName, workflowEnvironment } from './steps/fixtures';

const emulator = useEmulator();
let scratch: string;
const bundles: Record<'api' | 'network' | 'iam', string> = { api: '', network: '', iam: '' };

beforeAll(async () => {
  quietLogs();
  scratch = scratchDir('bundles');
  const entries = { api: API_FUNCTION.entry, network: STEP_FUNCTIONS.network.entry, iam: STEP_FUNCTIONS.iam.entry };
  for (const [name, entry] of Object.entries(entries) as [keyof typeof bundles, string][]) {
    const outdir = path.join(scratch, name);
    await bundleLambda({ entry, outdir, requiredSettings: settingsReadByEntry(entry) });
    bundles[name] = path.join(outdir, BUNDLE_FILE);
  }
  await createStandInWorkflows(emulator.context);
}, 120_000);

/** Loads the bundle in a fresh Node with this process's environment (the emulator's settings), calls its handler once. */
const INVOKER = [
  "import { readFileSync, writeFileSync } from 'node:fs';",
  'const [bundle, eventFile, answerFile] = process.argv.slice(1);',
  'const { handler } = await import(bundle);',
  "const context = { functionName: 'bundle-under-test', awsRequestId: 'bundle-invocation', getRemainingTimeInMillis: () => 29000 };",
  'let answer;',
  "try { answer = { result: (await handler(JSON.parse(readFileSync(eventFile, 'utf8')), context)) ?? null }; }",
  'catch (error) { answer = { error: { name: error.name, message: error.message } }; }',
  'writeFileSync(answerFile, JSON.stringify(answer));',
].join('\n');

let invocations = 0;
async function invokeBundle<T>(bundle: string, event: unknown): Promise<T> {
  invocations += 1;
  const eventFile = path.join(scratch, `event-${invocations}.json`);
  const answerFile = path.join(scratch, `answer-${invocations}.json`);
  writeFileSync(eventFile, JSON.stringify(event));
  execFileSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', INVOKER, bundle, eventFile, answerFile], {
    env: process.env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const answer = JSON.parse(readFileSync(answerFile, 'utf8')) as { result: T } | { error: { name: string; message: string } };
  if ('error' in answer) throw Object.assign(new Error(answer.error.message), { name: answer.error.name });
  return answer.result;
}

const bundledApi = (event: APIGatewayProxyEvent) => invokeBundle<APIGatewayProxyResult>(bundles.api, event);

describe('the API bundle', () => {
  it('creates an environment after its preflight (EC2, Service Quotas, Batch), recorded as the source handler records one', async () => {
    // prepare: the same request to the bundle and to the source, for two names
    const viaBundle = apiCaller(bundledApi, userArn('alice'));
    const viaSource = apiCaller(sourceApiHandler, userArn('alice'));
    const [bundled, source] = [uniqueName('bundled'), uniqueName('source')];

    // act
    const created = await viaBundle.post('/environments', { name: bundled, maxVcpus: 16, gpu: true });
    await viaSource.post('/environments', { name: source, maxVcpus: 16, gpu: true });
    const readByBundle = await viaBundle.get(`/environments/${bundled}`);
    const readBySource = await viaSource.get(`/environments/${bundled}`);
    const sourceRecord = await viaSource.get(`/environments/${source}`);

    // assess: accepted; the GPU families the preflight read from EC2 recorded; both handlers read the same answer
    expect({ status: created.status, type: created.headers['content-type'] }).toEqual({ status: 202, type: 'application/json' });
    expect(readByBundle.status).toBe(200);
    expect(readByBundle.json).toEqual(readBySource.json);
    expect(readByBundle.json.status).toBe('CREATING');
    expect(readByBundle.json.spec.gpuInstanceFamilies.length).toBeGreaterThan(0);
    expect(readByBundle.json.spec).toEqual(sourceRecord.json.spec);
  });

  it('answers a refused request with the same problem as the source', async () => {
    // prepare
    const viaBundle = apiCaller(bundledApi, userArn('bob'));
    const viaSource = apiCaller(sourceApiHandler, userArn('bob'));

    // act
    const bundled = await viaBundle.post('/environments', { name: 'Not A Name', maxVcpus: 16 });
    const source = await viaSource.post('/environments', { name: 'Not A Name', maxVcpus: 16 });

    // assess
    expect(bundled.status).toBe(400);
    expect(bundled.headers['content-type']).toBe('application/problem+json');
    // (each request has its own id)
    expect({ ...bundled.json, requestId: undefined }).toEqual({ ...source.json, requestId: undefined });
  });
});

describe('the step bundles', () => {
  it("network: claims a block and creates the environment's subnets, which EC2 then lists by their tags", async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('bundled-net'));
    const ec2 = new EC2Client(emulator.context.clientConfig);

    // act
    const allocation = await invokeBundle<{ cidr: string }>(bundles.network, { step: 'allocateNetwork', environment });
    const created = await invokeBundle<{ subnetIds: string[] }>(bundles.network, { step: 'createSubnets', environment, network: allocation });

    // assess
    const { Subnets = [] } = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: `tag:${TAG.environment}`, Values: [environment.name] }] }));
    ec2.destroy();
    expect(allocation.cidr).toMatch(/\/23$/);
    expect(created.subnetIds.length).toBeGreaterThan(0);
    expect(Subnets.map((subnet) => subnet.SubnetId).sort()).toEqual([...created.subnetIds].sort());
    expect(Subnets.every((subnet) => subnet.MapPublicIpOnLaunch === true)).toBe(true);
  });

  it('IAM: creates the job role with its permissions boundary, and refuses a step it does not have by name', async () => {
    // prepare
    const environment = workflowEnvironment(uniqueName('bundled-iam'));
    const names = namesOf(environment.name);
    const iam = new IAMClient(emulator.context.clientConfig);

    // act
    const answer = await invokeBundle(bundles.iam, { step: 'createJobRole', environment });
    const unknown = await invokeBundle(bundles.iam, { step: 'noSuchStep', environment }).catch((error: Error) => error);

    // assess
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: names.jobRoleName }));
    iam.destroy();
    expect(answer).toEqual({ jobRoleArn: names.jobRoleArn });
    expect(Role?.PermissionsBoundary?.PermissionsBoundaryArn).toMatch(/:policy\//);
    expect(unknown).toMatchObject({ name: 'ValidationError', message: 'The iam step function has no step "noSuchStep".' });
  });
});
