/**
 * The whole system through its HTTP API, in local mode: signed requests → the API handler → the ASL
 * workflows run locally → the step handlers → the emulator. What a teammate does, end to end:
 * create, wait for READY, fetch the Metaflow config, delete, wait for DELETED; and that nothing of the
 * environment is left in the emulator afterwards. Also: other teammates cannot see or touch it, and bad
 * requests change nothing.
 */
import { DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { DescribeRouteTablesCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import {
  GetRoleCommand,
  GetRolePolicyCommand,
  ListAttachedRolePoliciesCommand,
  ListInstanceProfilesCommand,
  ListPoliciesCommand,
  ListRolesCommand,
} from '@aws-sdk/client-iam';
import { CreateBucketCommand, GetBucketPolicyCommand, HeadBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3';
import type { LocalUser } from '../../infra/local/runtime';
import type { ExecutionRecord } from '../../infra/local/workflow-runner';
import { namesFor } from '../../lambdas/core/naming';
import { type EmulatorRootClients, emulatorRootClients } from '../support/emulator-root';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, type ApiResponse, apiClient, signedFetch, waitWhile } from '../support/signed-client';
import { LOCAL_PAYLOAD_KEYS } from '../support/payload';

// The handlers log every step; this test prints its own figures instead.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
// A test waits for whole workflows (each wait bounded at 120 s); a busy machine must not turn that into a failure.
jest.setTimeout(300_000);

const ADMIN_ARN = 'arn:aws:iam::123456789012:user/dana';
const local = useLocalMode({ admins: [ADMIN_ARN] });
let alice: LocalUser;
let bob: LocalUser;
let asAlice: ApiClient;
let asBob: ApiClient;
let asAdmin: ApiClient;
let aws: EmulatorRootClients;

beforeAll(async () => {
  alice = await local.local.createUser('alice');
  bob = await local.local.createUser('bob');
  asAlice = apiClient(local.local.apiUrl, alice);
  asBob = apiClient(local.local.apiUrl, bob);
  const admin = await local.local.createUser('dana');
  expect(admin.arn).toBe(ADMIN_ARN);
  asAdmin = apiClient(local.local.apiUrl, admin);
  aws = emulatorRootClients(local.local.emulatorEndpoint);
}, 60_000);

afterAll(() => {
  for (const client of Object.values(aws ?? {})) client.destroy();
});

async function snapshot() {
  const registry = await aws.dynamo.send(new ScanCommand({ TableName: local.local.bootstrap.tableName }));
  const buckets = await aws.s3.send(new ListBucketsCommand({}));
  return {
    registryItems: registry.Count ?? 0,
    buckets: (buckets.Buckets ?? []).map((bucket) => bucket.Name).sort(),
    executions: local.local.executions().length,
  };
}

function expectProblem(response: ApiResponse, status: number | 'any4xx') {
  if (status === 'any4xx') {
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  } else {
    expect(response.status).toBe(status);
  }
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.json).toMatchObject({ status: response.status, title: expect.any(String), detail: expect.any(String) });
  expect(response.json.detail.length).toBeGreaterThan(10);
}

function figures(label: string, records: ExecutionRecord[]): string {
  return records
    .map((record) => {
      const ms = (record.stopDate?.getTime() ?? Date.now()) - record.startDate.getTime();
      return `${label} ${record.stateMachineId} ${record.name}: ${record.status} in ${ms} ms, ${record.stateTransitions} state transitions, ${record.stepInvocations} step invocations ${JSON.stringify(record.stepInvocationsByFunction)}`;
    })
    .join('\n');
}

describe('an environment through the local HTTP API', () => {
  it.each([
    ['malformed JSON', { body: '{"name": "alice",' }],
    ['a name of the wrong type', { json: { name: 5 } }],
    ['maxVcpus of the wrong type', { json: { name: 'alice', maxVcpus: 'lots' } }],
    ['gpu of the wrong type', { json: { name: 'alice', gpu: 'yes' } }],
    ['maxVcpus over the ceiling', { json: { name: 'alice', maxVcpus: 100_000 } }],
    ['an upper-case name', { json: { name: 'Alice' } }],
    ['a name ending in a hyphen', { json: { name: 'alice-' } }],
    ['a one-letter name', { json: { name: 'a' } }],
    ['an unknown field', { json: { name: 'alice', color: 'red' } }],
    ['a JSON array', { json: ['alice'] }],
  ])('refuses a POST with %s with a 4xx problem and creates nothing', async (_case, request) => {
    // prepare
    const before = await snapshot();

    // act
    const response = await asAlice.send('POST', '/environments', request);

    // assess
    expectProblem(response, 'any4xx');
    expect(await snapshot()).toEqual(before);
  });

  it('refuses an unsigned POST with 403, as API Gateway does, and creates nothing', async () => {
    // prepare
    const before = await snapshot();

    // act
    const response = await signedFetch(local.local.apiUrl, undefined, 'POST', '/environments', { json: { name: 'alice' } });

    // assess
    expectProblem(response, 403);
    expect(response.json.type).toBe('urn:mfenv:problem:unauthenticated');
    expect(response.json.gatewayMessage).toContain('--aws-sigv4');
    expect(await snapshot()).toEqual(before);
  });

  it('creates, serves, hides from others, and deletes without leftovers', async () => {
    // prepare
    const { bootstrap } = local.local;
    const started = Date.now();

    // act: create, and wait for READY
    const created = await asAlice.post('/environments', { name: 'alice', maxVcpus: 8, gpu: false });
    const ready = await waitWhile(asAlice, 'alice', 'CREATING');
    const readyAt = Date.now();
    const config = await asAlice.get('/environments/alice/config');

    // assess: accepted, then READY with the Metaflow payload of DESIGN §5
    expect(created.status).toBe(202);
    expect(created.headers.get('location')).toBe('/environments/alice');
    expect(created.json).toMatchObject({ name: 'alice', owner: alice.arn, status: 'CREATING' });
    expect(ready.json).toMatchObject({ name: 'alice', owner: alice.arn, status: 'READY', spec: { maxVcpus: 8, gpu: false } });
    expect(config.status).toBe(200);
    const payload = config.json as Record<string, string>;
    expect(Object.keys(payload).sort()).toEqual(LOCAL_PAYLOAD_KEYS);
    const resources = ready.json.resources as Record<string, string>;
    expect(payload).toMatchObject({
      METAFLOW_DEFAULT_DATASTORE: 's3',
      METAFLOW_DATASTORE_SYSROOT_S3: `s3://${resources.bucket}/metaflow`,
      METAFLOW_DATATOOLS_S3ROOT: `s3://${resources.bucket}/data`,
      METAFLOW_BATCH_JOB_QUEUE: resources.jobQueueArn,
      METAFLOW_ECS_S3_ACCESS_IAM_ROLE: resources.jobRoleArn,
      METAFLOW_DEFAULT_METADATA: 'local',
      METAFLOW_USER: 'alice',
      METAFLOW_S3_ENDPOINT_URL: local.local.emulatorEndpoint,
    });

    // assess: the resources exist in the emulator, the compute environment as designed
    await expect(aws.s3.send(new HeadBucketCommand({ Bucket: resources.bucket }))).resolves.toBeDefined();
    const role = await aws.iam.send(new GetRoleCommand({ RoleName: payload.METAFLOW_ECS_S3_ACCESS_IAM_ROLE!.split('/').pop()! }));
    expect(role.Role?.Arn).toBe(payload.METAFLOW_ECS_S3_ACCESS_IAM_ROLE);
    const queues = await aws.batch.send(new DescribeJobQueuesCommand({ jobQueues: [payload.METAFLOW_BATCH_JOB_QUEUE!] }));
    expect(queues.jobQueues).toHaveLength(1);
    expect(queues.jobQueues![0]).toMatchObject({ jobQueueArn: resources.jobQueueArn, state: 'ENABLED', status: 'VALID' });
    const ceArn = queues.jobQueues![0]!.computeEnvironmentOrder![0]!.computeEnvironment!;
    const ces = await aws.batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [ceArn] }));
    const ce = ces.computeEnvironments![0]!;
    expect(ce).toMatchObject({ type: 'MANAGED', state: 'ENABLED' });
    expect(ce.computeResources).toMatchObject({ type: 'SPOT', allocationStrategy: 'SPOT_CAPACITY_OPTIMIZED', minvCpus: 0, maxvCpus: 8 });
    expect(ce.computeResources!.securityGroupIds).toEqual([bootstrap.securityGroupId]);
    // IMDSv2 only: the launch template the bootstrap made, at its default version.
    expect(ce.computeResources!.launchTemplate).toMatchObject({ launchTemplateId: bootstrap.env.MFENV_LAUNCH_TEMPLATE_ID, version: '$Default' });

    // assess: network isolation. The compute environment uses subnets of its own (not the shared ones), one
    // per zone of the shared subnets, public, in alice's block of the environment range, on the shared route
    // table; the bucket policy refuses her job and instance roles anywhere else; the instance role holds no
    // AWS managed policy, only the ECS agent's work on her own cluster.
    const ownSubnetIds = [...(ce.computeResources!.subnets ?? [])].sort();
    expect(ownSubnetIds).toHaveLength(bootstrap.subnetIds.length);
    for (const id of ownSubnetIds) expect(bootstrap.subnetIds).not.toContain(id);
    const { Subnets: ownSubnets = [] } = await aws.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ownSubnetIds }));
    const block = ownSubnets[0]!.CidrBlock!.replace(/\.\d+\/25$/, '');
    for (const subnet of ownSubnets) {
      expect(subnet.VpcId).toBe(bootstrap.vpcId);
      expect(subnet.MapPublicIpOnLaunch).toBe(true);
      expect(subnet.CidrBlock).toMatch(/^10\.20\.(1[2-9][0-9]|2[0-5][0-9])\.(0|128)\/25$/);
      expect(subnet.CidrBlock!.startsWith(block)).toBe(true);
      expect(Object.fromEntries((subnet.Tags ?? []).map((tag) => [tag.Key, tag.Value]))).toMatchObject({ 'mfenv:environment': 'alice' });
    }
    const { RouteTables = [] } = await aws.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: ownSubnetIds }] }));
    expect(RouteTables.map((table) => table.RouteTableId)).toEqual([bootstrap.env.MFENV_ROUTE_TABLE_ID]);
    const bucketPolicy = JSON.parse((await aws.s3.send(new GetBucketPolicyCommand({ Bucket: resources.bucket }))).Policy!);
    const sids = bucketPolicy.Statement.map((statement: { Sid: string }) => statement.Sid);
    expect(sids).toEqual(['EnvironmentRolesOnlyThroughTheEndpoint', 'EnvironmentRolesOnlyFromTheVpc', 'EnvironmentRolesOnlyFromTheirSubnets']);
    expect(JSON.stringify(bucketPolicy)).toContain(bootstrap.env.MFENV_S3_ENDPOINT_ID!);
    const instanceRoleName = `mfenv-alice-instance`;
    expect((await aws.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: instanceRoleName }))).AttachedPolicies).toEqual([]);
    const agentPolicy = await aws.iam.send(new GetRolePolicyCommand({ RoleName: instanceRoleName, PolicyName: 'ecs-agent-own-cluster' }));
    expect(decodeURIComponent(agentPolicy.PolicyDocument!)).toContain(ce.ecsClusterArn!);

    // act + assess: another teammate neither sees nor touches it
    expectProblem(await asBob.get('/environments/alice'), 404);
    expectProblem(await asBob.get('/environments/alice/config'), 404);
    expectProblem(await asBob.delete('/environments/alice'), 404);
    const bobsList = await asBob.get('/environments');
    expect(bobsList.status).toBe(200);
    expect(JSON.stringify(bobsList.json)).not.toContain('"alice"');
    expect((await asAlice.get('/environments/alice')).json.status).toBe('READY');
    // ...while an admin (MFENV_ADMINS) sees everyone's
    const adminsView = await asAdmin.get('/environments/alice');
    expect(adminsView).toMatchObject({ status: 200, json: { name: 'alice', owner: alice.arn, status: 'READY' } });

    // act: delete, and wait for DELETED
    const deleting = await asAlice.delete('/environments/alice');
    const deleted = await waitWhile(asAlice, 'alice', 'DELETING');
    const deletedAt = Date.now();

    // assess: DELETED, and nothing of alice's is left
    expect(deleting.status).toBe(202);
    expect(deleted.status).toBe(200);
    expect(deleted.json).toMatchObject({ name: 'alice', status: 'DELETED' });
    const buckets = (await aws.s3.send(new ListBucketsCommand({}))).Buckets ?? [];
    expect(buckets.map((bucket) => bucket.Name)).not.toContain(resources.bucket);
    const roles = (await aws.iam.send(new ListRolesCommand({ PathPrefix: '/mfenv/' }))).Roles ?? [];
    expect(roles.map((r) => r.RoleName)).toEqual([]);
    const profiles = (await aws.iam.send(new ListInstanceProfilesCommand({ PathPrefix: '/mfenv/' }))).InstanceProfiles ?? [];
    expect(profiles.map((profile) => profile.InstanceProfileName)).toEqual([]);
    const policies = (await aws.iam.send(new ListPoliciesCommand({ Scope: 'Local', PathPrefix: '/mfenv/' }))).Policies ?? [];
    expect(policies.map((policy) => policy.Arn)).toEqual([bootstrap.env.MFENV_PERMISSIONS_BOUNDARY_ARN]);
    const remainingCes = (await aws.batch.send(new DescribeComputeEnvironmentsCommand({}))).computeEnvironments ?? [];
    expect(remainingCes.map((environment) => environment.computeEnvironmentName)).not.toContain('mfenv-alice');
    const remainingQueues = (await aws.batch.send(new DescribeJobQueuesCommand({}))).jobQueues ?? [];
    expect(remainingQueues.map((queue) => queue.jobQueueName)).not.toContain('mfenv-alice');
    const { Subnets: leftSubnets = [] } = await aws.ec2.send(
      new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:mfenv:environment', Values: ['alice'] }] }),
    );
    expect(leftSubnets).toEqual([]);
    await expect(aws.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ownSubnetIds }))).rejects.toMatchObject({ name: 'InvalidSubnetID.NotFound' });

    // figures, not assertions: how long the lifecycle took and what Step Functions would bill
    await local.local.runner.settled();
    const records = local.local.executions().filter((record) => record.name.startsWith('alice-')).reverse();
    console.log(
      [
        `lifecycle: ${deletedAt - started} ms (POST → READY ${readyAt - started} ms, DELETE → DELETED ${deletedAt - readyAt} ms)`,
        figures('workflow', records),
        `total: ${records.reduce((sum, record) => sum + record.stateTransitions, 0)} state transitions, ` +
          `${records.reduce((sum, record) => sum + record.stepInvocations, 0)} step invocations`,
      ].join('\n'),
    );
    expect(records.map((record) => [record.stateMachineId, record.status])).toEqual([
      ['provision', 'SUCCEEDED'],
      ['teardown', 'SUCCEEDED'],
    ]);
  });

  it('rolls a create that cannot finish back through the teardown workflow, ending CREATE_FAILED with a reason', async () => {
    // prepare: someone else's bucket already holds the name the environment "carol" needs
    const { env } = local.local.bootstrap;
    const names = namesFor(
      { prefix: env.MFENV_PREFIX!, accountId: env.MFENV_ACCOUNT_ID!, region: env.AWS_REGION!, stackName: env.MFENV_STACK_NAME! },
      'carol',
    );
    await aws.s3.send(new CreateBucketCommand({ Bucket: names.bucket }));

    // act
    const created = await asAlice.post('/environments', { name: 'carol', maxVcpus: 4, gpu: false });
    const failed = await waitWhile(asAlice, 'carol', 'CREATING');
    await local.local.runner.settled();

    // assess: CREATE_FAILED with a sentence naming the cause; the rollback (started by a step through the
    // SFN endpoint) removed what the create had made, and the foreign bucket is untouched
    expect(created.status).toBe(202);
    expect(failed.json).toMatchObject({ name: 'carol', status: 'CREATE_FAILED' });
    expect(failed.json.statusReason).toContain(names.bucket);
    const records = local.local.executions().filter((record) => record.name.startsWith('carol-')).reverse();
    expect(records.map((record) => [record.stateMachineId, record.status, record.error])).toEqual([
      ['provision', 'FAILED', 'ProvisioningFailed'],
      ['teardown', 'SUCCEEDED', undefined],
    ]);
    await expect(aws.s3.send(new HeadBucketCommand({ Bucket: names.bucket }))).resolves.toBeDefined();
    const roles = (await aws.iam.send(new ListRolesCommand({ PathPrefix: '/mfenv/' }))).Roles ?? [];
    expect(roles.map((r) => r.RoleName)).toEqual([]);
    const policies = (await aws.iam.send(new ListPoliciesCommand({ Scope: 'Local', PathPrefix: '/mfenv/' }))).Policies ?? [];
    expect(policies.map((policy) => policy.Arn)).toEqual([env.MFENV_PERMISSIONS_BOUNDARY_ARN]);
    console.log(figures('rollback', records));
  });
});
