/**
 * Every workflow step's failure, through the local HTTP API: for each Task of both state machines, one row
 * makes that step fail (a real emulator condition where one exists, else an AWS error injected into the
 * emulator, test/support/faults.ts) and shows what a teammate then sees and what is left:
 *
 * - a provision step: the create ends CREATE_FAILED with a statusReason naming the step (or the resource it
 *   was making) and the cause, and the rollback removed everything of the environment (roles, profile,
 *   compute environment, queue, subnets, address block, the empty bucket); a DELETE then releases its quota;
 * - a teardown step: the delete ends DELETE_FAILED with such a reason, and a DELETE sent again ends DELETED
 *   with nothing left.
 *
 * Injected errors are ones no retry cures (access denied, invalid parameter): a transient one is retried by
 * the Task and the SDK, which the last test shows by absorbing two throttled calls. The table must name every
 * Task of statemachine/*.asl.json: a step added without a failure row fails the first test.
 *
 * One local mode serves every row; each row has its own environment, and every fault matches only requests
 * naming it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { ListTablesCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import {
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  DeleteInstanceProfileCommand,
  DeleteRoleCommand,
  GetInstanceProfileCommand,
  GetRoleCommand,
} from '@aws-sdk/client-iam';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { PROJECT_ROOT } from '../../infra/local/emulator';
import type { LocalUser } from '../../infra/local/runtime';
import { allStates } from '../../infra/local/workflow-runner';
import { type EnvironmentNames, namesFor } from '../../lambdas/core/naming';
import { liveCounts } from '../../lambdas/core/quota-counters';
import { STATE_MACHINES, type StateMachineId } from '../../lambdas/steps/catalogue';
import { type FaultSpec, clearFaults, injectFault, listFaults } from '../support/faults';
import { type EmulatorRootClients, emulatorRootClients } from '../support/emulator-root';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, apiClient } from '../support/signed-client';

// The handlers log every step, failures included: this test asserts on them instead.
process.env.POWERTOOLS_LOG_LEVEL ??= 'CRITICAL';
jest.setTimeout(120_000);

const local = useLocalMode({ maxEnvironments: 50, maxEnvironmentsPerOwner: 50 });
let alice: LocalUser;
let asAlice: ApiClient;
let aws: EmulatorRootClients;
const started = Date.now();

beforeAll(async () => {
  alice = await local.local.createUser('alice');
  asAlice = apiClient(local.local.apiUrl, alice);
  aws = emulatorRootClients(local.local.emulatorEndpoint);
}, 60_000);

afterEach(() => clearFaults(local.local.emulatorEndpoint));

afterAll(() => {
  for (const client of Object.values(aws ?? {})) client.destroy();
  console.log(`step failures: ${Date.now() - started} ms for the whole file`);
});

const TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] });

function namesOf(name: string): EnvironmentNames {
  const { env } = local.local.bootstrap;
  return namesFor({ prefix: env.MFENV_PREFIX!, accountId: env.MFENV_ACCOUNT_ID!, region: env.AWS_REGION!, stackName: env.MFENV_STACK_NAME! }, name);
}

/** What a row works with: its environment's name and resource names. */
interface RowContext {
  name: string;
  names: EnvironmentNames;
  inject(fault: FaultSpec): Promise<void>;
}

interface Row {
  machine: StateMachineId;
  /** The ASL Task state that fails. */
  state: string;
  /** The step that Task runs (checked against the ASL file). */
  step: string;
  /** The environment of the row (unique: faults match on it). */
  name: string;
  /** What makes it fail, for the test's title. */
  how: string;
  /** Makes the step fail: injects faults, or creates the real condition (returning how to remove it). */
  arrange(row: RowContext): Promise<void | (() => Promise<void>)>;
  /** What the statusReason must say: the step or what it was making, and the cause. */
  reason: (row: RowContext) => RegExp;
  /** More of the create request, for steps only some environments run (scheduling). */
  body?: Record<string, unknown>;
}

/** Someone else's: no mfenv tags. */
const plainRole = (roleName: string) => aws.iam.send(new CreateRoleCommand({ RoleName: roleName, AssumeRolePolicyDocument: TRUST }));

/** A non-transient refusal as each service words it (the boundary or an SCP saying no). */
const denied = (service: string, action: string, match: string | string[], extra: Partial<FaultSpec> = {}): FaultSpec => {
  const code = { iam: 'AccessDenied', s3: 'AccessDenied', ec2: 'UnauthorizedOperation', batch: 'AccessDeniedException', dynamodb: 'AccessDeniedException' }[service]!;
  const message = `User is not authorized to perform: ${service}:${action} (injected)`;
  return { service, action, code, message, status: service === 'dynamodb' ? 400 : 403, match, ...extra };
};
const quoted = (text: string) => `"${text}"`;

/** A real statusReason of a compute environment gone INVALID on a fresh account (Netflix/metaflow-tools#9). */
const IAM_INVALID_REASON = 'CLIENT_ERROR - Invalid IamInstanceProfile: not yet visible';

/**
 * Makes Batch report the environment's first compute environment INVALID for an IAM reason until it is deleted
 * (the emulator's POST /_mfenv/batch-status), so the provision takes its re-create path.
 */
async function firstComputeEnvironmentInvalid(names: EnvironmentNames): Promise<void> {
  const response = await fetch(`${local.local.emulatorEndpoint}/_mfenv/batch-status`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ computeEnvironment: names.computeEnvironmentName, status: 'INVALID', statusReason: IAM_INVALID_REASON }),
  });
  if (response.status !== 201) throw new Error(`The emulator refused the compute environment status (HTTP ${response.status}).`);
}

/**
 * Rows of the re-create path: the first compute environment INVALID, then a fault in one of its steps. Batch
 * describes the compute environment once per step on that path: the VALID check (1), the disable (2), its check
 * (3), the delete (4), its check (5), the re-created one's check (6).
 */
const RECREATE_ROWS: Row[] = [
  {
    machine: 'provision',
    state: 'DisableInvalidComputeEnvironment',
    step: 'disableInvalidComputeEnvironment',
    name: 'pf-rc-disable',
    how: 'the compute environment went INVALID for IAM, and Batch refuses to disable it',
    arrange: async ({ names, inject }) => {
      await firstComputeEnvironmentInvalid(names);
      await inject(denied('batch', 'UpdateComputeEnvironment', quoted(names.computeEnvironmentName)));
    },
    reason: () => /disableInvalidComputeEnvironment.*AccessDeniedException.*batch:UpdateComputeEnvironment/,
  },
  {
    machine: 'provision',
    state: 'CheckInvalidComputeEnvironmentDisabled',
    step: 'pollComputeEnvironment',
    name: 'pf-rc-disabled',
    how: 'the compute environment went INVALID for IAM, and Batch refuses to describe it once disabled',
    arrange: async ({ names, inject }) => {
      await firstComputeEnvironmentInvalid(names);
      await inject(denied('batch', 'DescribeComputeEnvironments', quoted(names.computeEnvironmentName), { skip: 2 }));
    },
    reason: () => /pollComputeEnvironment.*AccessDeniedException.*batch:DescribeComputeEnvironments/,
  },
  {
    machine: 'provision',
    state: 'DeleteInvalidComputeEnvironment',
    step: 'deleteInvalidComputeEnvironment',
    name: 'pf-rc-delete',
    how: 'the compute environment went INVALID for IAM, and Batch refuses to delete it',
    arrange: async ({ names, inject }) => {
      await firstComputeEnvironmentInvalid(names);
      await inject(denied('batch', 'DeleteComputeEnvironment', quoted(names.computeEnvironmentName)));
    },
    reason: () => /deleteInvalidComputeEnvironment.*AccessDeniedException.*batch:DeleteComputeEnvironment/,
  },
  {
    machine: 'provision',
    state: 'CheckInvalidComputeEnvironmentDeleted',
    step: 'pollComputeEnvironment',
    name: 'pf-rc-deleted',
    how: 'the compute environment went INVALID for IAM, and Batch refuses to describe it once deleted',
    arrange: async ({ names, inject }) => {
      await firstComputeEnvironmentInvalid(names);
      await inject(denied('batch', 'DescribeComputeEnvironments', quoted(names.computeEnvironmentName), { skip: 4 }));
    },
    reason: () => /pollComputeEnvironment.*AccessDeniedException.*batch:DescribeComputeEnvironments/,
  },
  {
    machine: 'provision',
    state: 'RecreateComputeEnvironment',
    step: 'createComputeEnvironment',
    name: 'pf-rc-create',
    how: 'the compute environment went INVALID for IAM, and Batch refuses to create it again',
    arrange: async ({ names, inject }) => {
      await firstComputeEnvironmentInvalid(names);
      await inject({ ...denied('batch', 'CreateComputeEnvironment', quoted(names.computeEnvironmentName)), skip: 1 });
    },
    reason: () => /createComputeEnvironment.*AccessDeniedException.*batch:CreateComputeEnvironment/,
  },
  {
    machine: 'provision',
    state: 'CheckRecreatedComputeEnvironmentValid',
    step: 'pollComputeEnvironment',
    name: 'pf-rc-valid',
    how: 'the compute environment went INVALID for IAM, and Batch refuses to describe the re-created one',
    arrange: async ({ names, inject }) => {
      await firstComputeEnvironmentInvalid(names);
      await inject(denied('batch', 'DescribeComputeEnvironments', quoted(names.computeEnvironmentName), { skip: 5 }));
    },
    reason: () => /pollComputeEnvironment.*AccessDeniedException.*batch:DescribeComputeEnvironments/,
  },
];

const PROVISION_ROWS: Row[] = [
  {
    machine: 'provision',
    state: 'AllocateNetwork',
    step: 'allocateNetwork',
    name: 'pf-network',
    how: 'the registry refuses the claim of its address block',
    arrange: ({ name, inject }) => inject(denied('dynamodb', 'PutItem', ['NETWORK#', `"environment":{"S":"${name}"}`])),
    reason: () => /in the step allocateNetwork, AWS answered AccessDeniedException.*dynamodb:PutItem/,
  },
  {
    machine: 'provision',
    state: 'CreateBucket',
    step: 'createBucket',
    name: 'pf-bucket',
    how: 'S3 refuses the default encryption of the new bucket',
    arrange: ({ names, inject }) => inject(denied('s3', 'PutBucketEncryption', `/${names.bucket}`)),
    reason: () => /createBucket.*AccessDenied.*s3:PutBucketEncryption/,
  },
  {
    machine: 'provision',
    state: 'CreateJobRole',
    step: 'createJobRole',
    name: 'pf-jobrole',
    how: 'a role of someone else already has the job role name (real)',
    arrange: async ({ names }) => {
      await plainRole(names.jobRoleName);
      return async () => void (await aws.iam.send(new DeleteRoleCommand({ RoleName: names.jobRoleName })));
    },
    reason: ({ names }) => new RegExp(`The IAM role "${names.jobRoleName}" already exists but does not belong .*has no mfenv:environment tag`),
  },
  {
    machine: 'provision',
    state: 'CreateInstanceRole',
    step: 'createInstanceRole',
    name: 'pf-instrole',
    how: 'an instance profile of someone else already has the name (real)',
    arrange: async ({ names }) => {
      await aws.iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName }));
      return async () => void (await aws.iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName })));
    },
    reason: ({ names }) => new RegExp(`The instance profile "${names.instanceProfileName}" already exists but does not belong`),
  },
  {
    machine: 'provision',
    state: 'CreateAccessRole',
    step: 'createAccessRole',
    name: 'pf-accrole',
    how: 'IAM refuses the access role policy as malformed',
    arrange: ({ names, inject }) =>
      inject({
        service: 'iam',
        action: 'PutRolePolicy',
        code: 'MalformedPolicyDocument',
        message: 'Maximum policy size of 10240 bytes exceeded (injected)',
        match: `RoleName=${names.accessRoleName}`,
      }),
    reason: () => /createAccessRole.*MalformedPolicyDocument.*Maximum policy size/,
  },
  {
    machine: 'provision',
    state: 'CreateSubnets',
    step: 'createSubnets',
    name: 'pf-subnets',
    how: 'EC2 refuses the second subnet after the first was made',
    arrange: ({ names, inject }) => inject(denied('ec2', 'CreateSubnet', `=${names.computeEnvironmentName}-`, { skip: 1 })),
    reason: () => /createSubnets.*UnauthorizedOperation.*ec2:CreateSubnet/,
  },
  {
    machine: 'provision',
    state: 'CheckInstanceProfileVisible',
    step: 'pollInstanceProfile',
    name: 'pf-profile',
    how: 'IAM refuses to read the instance profile',
    arrange: ({ names, inject }) => inject(denied('iam', 'GetInstanceProfile', `InstanceProfileName=${names.instanceProfileName}`)),
    reason: () => /in the step pollInstanceProfile, AWS answered AccessDenied: .*iam:GetInstanceProfile/,
  },
  {
    machine: 'provision',
    state: 'CreateComputeEnvironment',
    step: 'createComputeEnvironment',
    name: 'pf-ce',
    how: 'Batch refuses the compute environment (invalid parameter)',
    arrange: ({ names, inject }) =>
      inject({
        service: 'batch',
        action: 'CreateComputeEnvironment',
        code: 'ClientException',
        message: 'Error executing request, Exception : maxvCpus is over the account Spot vCPU quota (injected)',
        match: quoted(names.computeEnvironmentName),
      }),
    reason: () => /createComputeEnvironment.*ClientException.*Spot vCPU quota/,
  },
  {
    machine: 'provision',
    state: 'CheckComputeEnvironmentValid',
    step: 'pollComputeEnvironment',
    name: 'pf-cevalid',
    how: 'Batch refuses to describe the compute environment',
    arrange: ({ names, inject }) => inject(denied('batch', 'DescribeComputeEnvironments', quoted(names.computeEnvironmentName))),
    reason: () => /pollComputeEnvironment.*AccessDeniedException.*batch:DescribeComputeEnvironments/,
  },
  {
    machine: 'provision',
    state: 'ScopeInstanceRole',
    step: 'scopeInstanceRole',
    name: 'pf-scope',
    how: "IAM refuses the instance role's cluster policy",
    arrange: ({ names, inject }) => inject(denied('iam', 'PutRolePolicy', [`RoleName=${names.instanceRoleName}`, 'ecs-agent-own-cluster'])),
    reason: () => /scopeInstanceRole.*AccessDenied.*iam:PutRolePolicy/,
  },
  {
    machine: 'provision',
    state: 'CreateJobQueue',
    step: 'createJobQueue',
    name: 'pf-queue',
    how: 'Batch refuses the job queue',
    arrange: ({ names, inject }) => inject(denied('batch', 'CreateJobQueue', quoted(names.jobQueueName))),
    reason: () => /createJobQueue.*AccessDeniedException.*batch:CreateJobQueue/,
  },
  {
    machine: 'provision',
    state: 'CheckJobQueueValid',
    step: 'pollJobQueue',
    name: 'pf-queuevalid',
    how: 'Batch refuses to describe the job queue',
    arrange: ({ names, inject }) => inject(denied('batch', 'DescribeJobQueues', quoted(names.jobQueueName))),
    reason: () => /pollJobQueue.*AccessDeniedException.*batch:DescribeJobQueues/,
  },
  {
    machine: 'provision',
    state: 'MarkReady',
    step: 'markReady',
    name: 'pf-ready',
    how: 'the registry refuses to record READY',
    arrange: ({ name, inject }) => inject(denied('dynamodb', 'UpdateItem', [`"ENV#${name}"`, 'METAFLOW_DEFAULT_DATASTORE'])),
    reason: () => /markReady.*AccessDeniedException.*dynamodb:UpdateItem/,
  },
];

const TEARDOWN_ROWS: Row[] = [
  {
    machine: 'teardown',
    state: 'DisableJobQueue',
    step: 'disableJobQueue',
    name: 'tf-qdisable',
    how: 'Batch refuses to disable the queue',
    arrange: ({ names, inject }) => inject(denied('batch', 'UpdateJobQueue', quoted(names.jobQueueName))),
    reason: () => /disableJobQueue.*AccessDeniedException.*batch:UpdateJobQueue/,
  },
  {
    machine: 'teardown',
    state: 'CheckJobQueueDisabled',
    step: 'pollJobQueue',
    name: 'tf-qdisabled',
    how: 'Batch refuses to describe the queue once disabled (the first describe passes: disableJobQueue)',
    arrange: ({ names, inject }) => inject(denied('batch', 'DescribeJobQueues', quoted(names.jobQueueName), { skip: 1 })),
    reason: () => /pollJobQueue.*AccessDeniedException.*batch:DescribeJobQueues/,
  },
  {
    machine: 'teardown',
    state: 'DeleteJobQueue',
    step: 'deleteJobQueue',
    name: 'tf-qdelete',
    how: 'Batch refuses to delete the queue',
    arrange: ({ names, inject }) => inject(denied('batch', 'DeleteJobQueue', quoted(names.jobQueueName))),
    reason: () => /deleteJobQueue.*AccessDeniedException.*batch:DeleteJobQueue/,
  },
  {
    machine: 'teardown',
    state: 'CheckJobQueueDeleted',
    step: 'pollJobQueue',
    name: 'tf-qdeleted',
    how: 'Batch refuses to describe the queue once deleted (three describes pass: disable, its check, delete)',
    arrange: ({ names, inject }) => inject(denied('batch', 'DescribeJobQueues', quoted(names.jobQueueName), { skip: 3 })),
    reason: () => /pollJobQueue.*AccessDeniedException.*batch:DescribeJobQueues/,
  },
  {
    machine: 'teardown',
    state: 'DisableComputeEnvironment',
    step: 'disableComputeEnvironment',
    name: 'tf-cedisable',
    how: 'Batch refuses to disable the compute environment',
    arrange: ({ names, inject }) => inject(denied('batch', 'UpdateComputeEnvironment', quoted(names.computeEnvironmentName))),
    reason: () => /disableComputeEnvironment.*AccessDeniedException.*batch:UpdateComputeEnvironment/,
  },
  {
    machine: 'teardown',
    state: 'CheckComputeEnvironmentDisabled',
    step: 'pollComputeEnvironment',
    name: 'tf-cedisabled',
    how: 'Batch refuses to describe the compute environment once disabled (the first describe passes)',
    arrange: ({ names, inject }) => inject(denied('batch', 'DescribeComputeEnvironments', quoted(names.computeEnvironmentName), { skip: 1 })),
    reason: () => /pollComputeEnvironment.*AccessDeniedException.*batch:DescribeComputeEnvironments/,
  },
  {
    machine: 'teardown',
    state: 'DeleteComputeEnvironment',
    step: 'deleteComputeEnvironment',
    name: 'tf-cedelete',
    how: 'Batch refuses to delete the compute environment',
    arrange: ({ names, inject }) => inject(denied('batch', 'DeleteComputeEnvironment', quoted(names.computeEnvironmentName))),
    reason: () => /deleteComputeEnvironment.*AccessDeniedException.*batch:DeleteComputeEnvironment/,
  },
  {
    machine: 'teardown',
    state: 'CheckComputeEnvironmentDeleted',
    step: 'pollComputeEnvironment',
    name: 'tf-cedeleted',
    how: 'Batch refuses to describe the compute environment once deleted (three describes pass)',
    arrange: ({ names, inject }) => inject(denied('batch', 'DescribeComputeEnvironments', quoted(names.computeEnvironmentName), { skip: 3 })),
    reason: () => /pollComputeEnvironment.*AccessDeniedException.*batch:DescribeComputeEnvironments/,
  },
  {
    machine: 'teardown',
    state: 'DeleteAccessRole',
    step: 'deleteAccessRole',
    name: 'tf-accrole',
    how: 'IAM refuses to delete the access role (conflict)',
    arrange: ({ names, inject }) =>
      inject({
        service: 'iam',
        action: 'DeleteRole',
        code: 'DeleteConflict',
        status: 409,
        message: 'Cannot delete entity, must detach all policies first (injected)',
        match: `RoleName=${names.accessRoleName}`,
      }),
    reason: () => /deleteAccessRole.*DeleteConflict.*must detach all policies first/,
  },
  {
    machine: 'teardown',
    state: 'DeleteInstanceRole',
    step: 'deleteInstanceRole',
    name: 'tf-instrole',
    how: 'IAM refuses to delete the instance profile',
    arrange: ({ names, inject }) => inject(denied('iam', 'DeleteInstanceProfile', `InstanceProfileName=${names.instanceProfileName}`)),
    reason: () => /deleteInstanceRole.*AccessDenied.*iam:DeleteInstanceProfile/,
  },
  {
    machine: 'teardown',
    state: 'DeleteJobRole',
    step: 'deleteJobRole',
    name: 'tf-jobrole',
    how: "IAM refuses to delete the job role's policy",
    arrange: ({ names, inject }) => inject(denied('iam', 'DeleteRolePolicy', `RoleName=${names.jobRoleName}`)),
    reason: () => /deleteJobRole.*AccessDenied.*iam:DeleteRolePolicy/,
  },
  {
    machine: 'teardown',
    state: 'DeleteSubnets',
    step: 'deleteSubnets',
    name: 'tf-subnets',
    how: 'EC2 refuses to delete one of its subnets',
    arrange: async ({ name, inject }) => {
      const { Subnets = [] } = await aws.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:mfenv:environment', Values: [name] }] }));
      await inject(denied('ec2', 'DeleteSubnet', `SubnetId=${Subnets[0]!.SubnetId}`));
    },
    reason: () => /deleteSubnets.*UnauthorizedOperation.*ec2:DeleteSubnet/,
  },
  {
    machine: 'teardown',
    state: 'DeleteBucket',
    step: 'deleteBucket',
    name: 'tf-bucket',
    how: 'S3 refuses to delete the bucket',
    arrange: ({ names, inject }) => inject(denied('s3', 'DeleteBucket', `/${names.bucket}`)),
    reason: () => /deleteBucket.*AccessDenied.*s3:DeleteBucket/,
  },
  {
    machine: 'teardown',
    state: 'FinishTeardown',
    step: 'finishTeardown',
    name: 'tf-finish',
    how: 'the registry refuses to record DELETED',
    arrange: ({ name, inject }) => inject(denied('dynamodb', 'TransactWriteItems', [`"ENV#${name}"`, '{"S":"DELETED"}'])),
    reason: () => /finishTeardown.*AccessDeniedException.*dynamodb:TransactWriteItems/,
  },
];

/** Rows whose failing step is the failure path itself: its own outcome differs (below). */
const FAILURE_PATH_ROWS: Row[] = [
  {
    machine: 'provision',
    state: 'StartRollback',
    step: 'startRollback',
    name: 'pf-rollback',
    how: 'the job queue is refused, then the registry refuses to record the rollback',
    arrange: async ({ name, names, inject }) => {
      await inject(denied('batch', 'CreateJobQueue', quoted(names.jobQueueName)));
      await inject(denied('dynamodb', 'UpdateItem', [`"ENV#${name}"`, 'Rolling back']));
    },
    reason: () => /had stopped .*without recording an outcome/,
  },
  {
    machine: 'teardown',
    state: 'MarkTeardownFailed',
    step: 'markTeardownFailed',
    name: 'tf-markfailed',
    how: 'S3 refuses to delete the bucket, then the registry refuses to record DELETE_FAILED',
    arrange: async ({ name, names, inject }) => {
      await inject(denied('s3', 'DeleteBucket', `/${names.bucket}`));
      await inject(denied('dynamodb', 'UpdateItem', [`"ENV#${name}"`, '{"S":"DELETE_FAILED"}']));
    },
    reason: () => /had stopped .*without recording an outcome/,
  },
];

/** Rows of what scheduled flows add (environments created with scheduling) and what Metaflow leaves behind. */
const SCHEDULING_PROVISION_ROWS: Row[] = [
  {
    machine: 'provision',
    state: 'CreateScheduling',
    step: 'createScheduling',
    name: 'pf-sched',
    body: { scheduling: true },
    how: "DynamoDB refuses the scheduled flows' table",
    arrange: ({ names, inject }) => inject(denied('dynamodb', 'CreateTable', quoted(names.sfnTableName))),
    reason: () => /createScheduling.*AccessDeniedException.*dynamodb:CreateTable/,
  },
];
const SCHEDULING_TEARDOWN_ROWS: Row[] = [
  {
    machine: 'teardown',
    state: 'DeleteScheduling',
    step: 'deleteScheduling',
    name: 'tf-sched',
    body: { scheduling: true },
    how: "DynamoDB refuses to delete the scheduled flows' table",
    arrange: ({ names, inject }) => inject(denied('dynamodb', 'DeleteTable', quoted(names.sfnTableName))),
    reason: () => /deleteScheduling.*AccessDeniedException.*dynamodb:DeleteTable/,
  },
  {
    machine: 'teardown',
    state: 'DeregisterJobDefinitions',
    step: 'deregisterJobDefinitions',
    name: 'tf-jobdefs',
    // The listing names no environment; rows run one at a time, so the next one is this row's.
    how: "Batch refuses to list the job definitions Metaflow registered",
    arrange: ({ inject }) => inject(denied('batch', 'DescribeJobDefinitions', [])),
    reason: () => /deregisterJobDefinitions.*AccessDeniedException.*batch:DescribeJobDefinitions/,
  },
];

const ROWS = [...PROVISION_ROWS, ...RECREATE_ROWS, ...SCHEDULING_PROVISION_ROWS, ...TEARDOWN_ROWS, ...SCHEDULING_TEARDOWN_ROWS, ...FAILURE_PATH_ROWS];

/**
 * Tasks without a row yet, each with why: the coverage test fails when one gets a row (drop it here) or when
 * a Task is missing from both lists.
 */
const NOT_YET_COVERED: Record<string, string> = {};

/**
 * Whole state machines this table leaves out. A failed resize ends back in READY with the old size, not in
 * CREATE_FAILED or DELETE_FAILED, so its rows would check other things: test/system/resize.test.ts fails it
 * through injected faults instead, not yet step by step.
 */
const MACHINES_NOT_COVERED: Partial<Record<StateMachineId, string>> = {
  update: 'a failed resize goes back to READY; test/system/resize.test.ts covers its failures',
};

/** Every Task of both ASL files: its state machine, state name and step. */
function aslTasks(): { machine: StateMachineId; state: string; step: string }[] {
  return (Object.keys(STATE_MACHINES) as StateMachineId[]).filter((machine) => !MACHINES_NOT_COVERED[machine]).flatMap((machine) => {
    const definition = JSON.parse(readFileSync(join(PROJECT_ROOT, STATE_MACHINES[machine].file), 'utf8'));
    return allStates(definition.States)
      .filter(([, state]) => state.Type === 'Task')
      .map(([state, definitionOf]) => ({ machine, state, step: (definitionOf.Parameters as { Payload: { step: string } }).Payload.step }));
  });
}

// ---- what a row waits for and checks ----

async function contextOf(row: Row): Promise<RowContext> {
  return {
    name: row.name,
    names: namesOf(row.name),
    async inject(fault) {
      await injectFault(local.local.emulatorEndpoint, fault);
    },
  };
}

/** Waits until the environment's workflows have all stopped (at least `atLeast` of them), and answers its record. */
async function settle(name: string, atLeast: number) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const executions = local.local.executions().filter((execution) => execution.name.startsWith(`${name}-`));
    if (executions.length >= atLeast && executions.every((execution) => execution.status !== 'RUNNING')) {
      const response = await asAlice.get(`/environments/${name}`);
      return { record: response.json, executions };
    }
    if (Date.now() > deadline) throw new Error(`the workflows of ${name} did not stop within 90 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const executionCount = (name: string) => local.local.executions().filter((execution) => execution.name.startsWith(`${name}-`)).length;

/** The Task state whose Lambda failed last in the execution (the state entered last before that failure). */
function lastFailedState(executionArn: string): string | undefined {
  let entered: string | undefined;
  let failed: string | undefined;
  for (const event of local.local.runner.history(executionArn)) {
    if (event.type === 'TaskStateEntered') entered = event.stateEnteredEventDetails?.name;
    if (event.type === 'TaskFailed') failed = entered;
  }
  return failed;
}

/** Parallel branches interleave in the history, so the failing state is named only for the states outside them. */
const OUTSIDE_PARALLELS = new Set(
  (Object.keys(STATE_MACHINES) as StateMachineId[]).flatMap((machine) => {
    const definition = JSON.parse(readFileSync(join(PROJECT_ROOT, STATE_MACHINES[machine].file), 'utf8'));
    return Object.keys(definition.States as object).map((state) => `${machine}/${state}`);
  }),
);

/** Whatever of the environment exists in the emulator, by name, tag or registry item. */
async function leftovers(name: string, names: EnvironmentNames): Promise<string[]> {
  const found: string[] = [];
  const exists = (call: Promise<unknown>) =>
    call.then(
      () => true,
      (error: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
        if (error.name === 'NoSuchEntity' || error.$metadata?.httpStatusCode === 404) return false;
        throw error;
      },
    );
  for (const roleName of [names.jobRoleName, names.instanceRoleName, names.accessRoleName, names.sfnRoleName, names.eventsRoleName]) {
    if (await exists(aws.iam.send(new GetRoleCommand({ RoleName: roleName })))) found.push(`role ${roleName}`);
  }
  if (await exists(aws.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: names.instanceProfileName })))) {
    found.push(`instance profile ${names.instanceProfileName}`);
  }
  if (await exists(aws.s3.send(new HeadBucketCommand({ Bucket: names.bucket })))) found.push(`bucket ${names.bucket}`);
  const { computeEnvironments = [] } = await aws.batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [names.computeEnvironmentName] }));
  found.push(...computeEnvironments.map((ce) => `compute environment ${ce.computeEnvironmentName} (${ce.status})`));
  const { jobQueues = [] } = await aws.batch.send(new DescribeJobQueuesCommand({ jobQueues: [names.jobQueueName] }));
  found.push(...jobQueues.map((queue) => `job queue ${queue.jobQueueName} (${queue.status})`));
  const { Subnets = [] } = await aws.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:mfenv:environment', Values: [name] }] }));
  found.push(...Subnets.map((subnet) => `subnet ${subnet.SubnetId}`));
  const { Items = [] } = await aws.dynamo.send(
    new ScanCommand({
      TableName: local.local.bootstrap.tableName,
      FilterExpression: 'begins_with(pk, :network) AND #environment = :name',
      ExpressionAttributeNames: { '#environment': 'environment' },
      ExpressionAttributeValues: { ':network': { S: 'NETWORK#' }, ':name': { S: name } },
    }),
  );
  found.push(...Items.map((item) => `address block ${item.pk!.S}`));
  const { TableNames = [] } = await aws.dynamo.send(new ListTablesCommand({}));
  found.push(...TableNames.filter((table) => table === names.sfnTableName).map((table) => `table ${table}`));
  return found;
}

/** The faults a row injected that no request ever met: a row whose fault missed proves nothing. */
async function unusedFaults(): Promise<string[]> {
  return (await listFaults(local.local.emulatorEndpoint)).filter((fault) => fault.hits === 0).map((fault) => `${fault.service}:${fault.action}`);
}

/** DELETE, and the environment ends DELETED with nothing left and its quota released. */
async function deleteCompletely(name: string, names: EnvironmentNames) {
  const before = executionCount(name);
  const answer = await asAlice.delete(`/environments/${name}`);
  expect(answer.status).toBe(202);
  const { record } = await settle(name, before + 1);
  expect(record).toMatchObject({ name, status: 'DELETED' });
  expect(await leftovers(name, names)).toEqual([]);
}

describe('every workflow step, failing', () => {
  let baseline: { account: number; owner: number };
  beforeAll(async () => {
    baseline = await liveCounts(alice.arn);
  });
  afterEach(async () => {
    // Every row ends with its environment DELETED: the quota counters are where they started.
    expect(await liveCounts(alice.arn)).toEqual(baseline);
  });

  it('has a row for every Task of both state machines, running the step the ASL file names', () => {
    // prepare
    const tasks = aslTasks();

    // act
    const missing = tasks.filter((task) => !ROWS.some((row) => row.machine === task.machine && row.state === task.state));
    const stale = ROWS.filter((row) => !tasks.some((task) => task.machine === row.machine && task.state === row.state && task.step === row.step));

    // assess
    expect(missing.map((task) => `${task.machine}/${task.state}`).sort()).toEqual(Object.keys(NOT_YET_COVERED).sort());
    expect(stale.map((row) => `${row.machine}/${row.state} (${row.step})`)).toEqual([]);
    expect(new Set(ROWS.map((row) => row.name)).size).toBe(ROWS.length);
  });

  it.each([...PROVISION_ROWS, ...RECREATE_ROWS, ...SCHEDULING_PROVISION_ROWS].map((row) => [row.state, row.how, row] as const))(
    'provision: %s fails (%s): CREATE_FAILED naming it, everything rolled back',
    async (_state, _how, row) => {
      // prepare
      const context = await contextOf(row);
      const removeCondition = await row.arrange(context);

      // act
      const created = await asAlice.post('/environments', { name: row.name, maxVcpus: 4, gpu: false, ...row.body });
      const { record, executions } = await settle(row.name, 2);

      // assess: CREATE_FAILED with a reason naming the step and the cause, the rollback finished
      expect(created.status).toBe(202);
      expect(record).toMatchObject({ name: row.name, status: 'CREATE_FAILED' });
      expect(record.statusReason).toMatch(row.reason(context));
      expect(record.statusReason).toMatch(/Everything it created has been removed\.$/);
      expect(await unusedFaults()).toEqual([]);
      const [rollback, provision] = executions;
      expect([provision!.stateMachineId, provision!.status, rollback!.stateMachineId, rollback!.status]).toEqual(['provision', 'FAILED', 'teardown', 'SUCCEEDED']);
      if (OUTSIDE_PARALLELS.has(`provision/${row.state}`)) expect(lastFailedState(provision!.executionArn)).toBe(row.state);
      // assess: nothing of it is left; someone else's resource that stood in the way was not touched (removing
      // it fails if the rollback deleted it)
      await removeCondition?.();
      expect(await leftovers(row.name, context.names)).toEqual([]);

      // act + assess: a DELETE releases what the failed environment still counts against the quotas
      await deleteCompletely(row.name, context.names);
    },
  );

  it.each([...TEARDOWN_ROWS, ...SCHEDULING_TEARDOWN_ROWS].map((row) => [row.state, row.how, row] as const))(
    'teardown: %s fails (%s): DELETE_FAILED naming it, and DELETE again finishes',
    async (_state, _how, row) => {
      // prepare
      const context = await contextOf(row);
      await asAlice.post('/environments', { name: row.name, maxVcpus: 4, gpu: false, ...row.body });
      expect((await settle(row.name, 1)).record.status).toBe('READY');
      await row.arrange(context);

      // act
      const deleting = await asAlice.delete(`/environments/${row.name}`);
      const { record, executions } = await settle(row.name, 2);

      // assess
      expect(deleting.status).toBe(202);
      expect(record).toMatchObject({ name: row.name, status: 'DELETE_FAILED' });
      expect(record.statusReason).toMatch(row.reason(context));
      expect(record.statusReason).toMatch(/Send DELETE again to retry\.$/);
      expect(await unusedFaults()).toEqual([]);
      const teardown = executions[0]!;
      expect([teardown.stateMachineId, teardown.status]).toEqual(['teardown', 'FAILED']);
      if (OUTSIDE_PARALLELS.has(`teardown/${row.state}`)) expect(lastFailedState(teardown.executionArn)).toBe(row.state);

      // act + assess: sent again, the DELETE finishes and leaves nothing
      await deleteCompletely(row.name, context.names);
    },
  );

  it('provision: StartRollback fails (the registry refuses): the create stops visibly, and DELETE takes it over', async () => {
    // prepare
    const row = FAILURE_PATH_ROWS[0]!;
    const context = await contextOf(row);
    await row.arrange(context);

    // act
    await asAlice.post('/environments', { name: row.name, maxVcpus: 4, gpu: false, ...row.body });
    const { record, executions } = await settle(row.name, 1);
    const takenOver = await asAlice.delete(`/environments/${row.name}`);

    // assess: no rollback could start, so the record still shows the create (its workflow stopped), and the
    // DELETE says so and removes everything
    expect(await unusedFaults()).toEqual([]);
    expect(executions.map((execution) => [execution.stateMachineId, execution.status, execution.error])).toEqual([['provision', 'FAILED', 'ProvisioningFailed']]);
    expect(lastFailedState(executions[0]!.executionArn)).toBe('StartRollback');
    expect(record).toMatchObject({ name: row.name, status: 'CREATING' });
    expect(takenOver.status).toBe(202);
    expect(takenOver.json.statusReason).toMatch(row.reason(context));
    const { record: deleted } = await settle(row.name, 2);
    expect(deleted).toMatchObject({ name: row.name, status: 'DELETED' });
    expect(await leftovers(row.name, context.names)).toEqual([]);
  });

  it('teardown: MarkTeardownFailed fails (the registry refuses): the delete stops visibly, and DELETE again takes it over', async () => {
    // prepare
    const row = FAILURE_PATH_ROWS[1]!;
    const context = await contextOf(row);
    await asAlice.post('/environments', { name: row.name, maxVcpus: 4, gpu: false, ...row.body });
    expect((await settle(row.name, 1)).record.status).toBe('READY');
    await row.arrange(context);

    // act
    await asAlice.delete(`/environments/${row.name}`);
    const { record, executions } = await settle(row.name, 2);
    const takenOver = await asAlice.delete(`/environments/${row.name}`);

    // assess
    expect(await unusedFaults()).toEqual([]);
    expect([executions[0]!.stateMachineId, executions[0]!.status, executions[0]!.error]).toEqual(['teardown', 'FAILED', 'TeardownFailed']);
    expect(lastFailedState(executions[0]!.executionArn)).toBe('MarkTeardownFailed');
    expect(record).toMatchObject({ name: row.name, status: 'DELETING' });
    expect(takenOver.status).toBe(202);
    expect(takenOver.json.statusReason).toMatch(row.reason(context));
    const { record: deleted } = await settle(row.name, 3);
    expect(deleted).toMatchObject({ name: row.name, status: 'DELETED' });
    expect(await leftovers(row.name, context.names)).toEqual([]);
  });

  it('absorbs a transient fault: IAM throttling CreateRole twice still ends READY', async () => {
    // prepare
    const name = 'tr-throttled';
    const names = namesOf(name);
    await injectFault(local.local.emulatorEndpoint, {
      service: 'iam',
      action: 'CreateRole',
      code: 'Throttling',
      message: 'Rate exceeded (injected)',
      status: 400,
      times: 2,
      match: `RoleName=${names.jobRoleName}`,
    });

    // act
    await asAlice.post('/environments', { name, maxVcpus: 4, gpu: false });
    const { record } = await settle(name, 1);

    // assess: both throttled calls happened, and the create went on
    expect((await listFaults(local.local.emulatorEndpoint)).map((fault) => fault.hits)).toEqual([2]);
    expect(record).toMatchObject({ name, status: 'READY', statusReason: null });
    await deleteCompletely(name, names);
  });
});
