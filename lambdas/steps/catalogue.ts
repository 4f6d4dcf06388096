/**
 * The workflow catalogue: every state machine, every step Lambda and every step it runs, listed once.
 *
 * - CDK (infra/workflows.ts) creates one Lambda per entry of STEP_FUNCTIONS, with its own least-privilege
 *   role, and fills each ASL `${placeholder}` with that function's ARN.
 * - Local mode (infra/local/workflow-runner.ts) fills the same placeholders with local ARNs and binds every
 *   Task state to the same handler module.
 * - test/infra checks that every Task in every ASL file names a placeholder and a step listed here, and that
 *   every step listed here is used. So a new step cannot be forgotten in either place.
 *
 * Each step Lambda receives `{ step, environment, ...parameters }` (see StepInput in ./step.ts) and
 * dispatches on `step`. Steps are grouped by the AWS service they touch, so each role stays small.
 *
 * The API Lambda is listed here too (API_FUNCTION): CDK (infra/stack.ts) deploys it and local mode
 * (infra/local/runtime.ts) serves it from the same entry.
 */

/** The API Lambda: its entry exports `handler`, an API Gateway REST proxy handler. */
export const API_FUNCTION = {
  entry: 'lambdas/api/handler.ts',
  description: 'Serves /environments: validates, authorizes, records and starts the workflows.',
} as const;

/**
 * The uninstall guard: a CloudFormation custom resource's handler that refuses to let the bootstrap stack be
 * deleted while environments are live (infra/uninstall-guard.ts).
 */
export const UNINSTALL_GUARD_FUNCTION = {
  entry: 'lambdas/ops/uninstall-guard.ts',
  description: 'Refuses the deletion of the bootstrap stack while environments are live.',
} as const;

/**
 * The idle-expiry check: run daily by a schedule the stack creates only when mfenv:idleExpiryDays is set
 * (infra/idle-expiry.ts); it announces, then tears down, environments no job used for that long.
 */
export const IDLE_EXPIRY_FUNCTION = {
  entry: 'lambdas/ops/idle-expiry.ts',
  description: 'Announces, then tears down (keeping the bucket), environments with no job for the idle-expiry period.',
} as const;

export const STATE_MACHINES = {
  provision: { file: 'statemachine/provision.asl.json', description: 'Creates one environment, then marks it READY (or rolls back).' },
  teardown: { file: 'statemachine/teardown.asl.json', description: 'Deletes one environment in the order AWS requires.' },
  update: { file: 'statemachine/update.asl.json', description: 'Resizes one READY environment, then marks it READY again (or undoes the change).' },
} as const;
export type StateMachineId = keyof typeof STATE_MACHINES;

export const STEP_FUNCTIONS = {
  registry: {
    placeholder: 'RegistryStepsFunctionArn',
    entry: 'lambdas/steps/registry-steps.ts',
    description: 'Records workflow outcomes in the registry; starts the rollback of a failed create.',
    steps: ['markReady', 'startRollback', 'finishTeardown', 'markTeardownFailed', 'markUpdated', 'markUpdateFailed'],
  },
  bucket: {
    placeholder: 'BucketStepsFunctionArn',
    entry: 'lambdas/steps/bucket-steps.ts',
    description: "Creates and deletes (or retains) an environment's S3 bucket.",
    steps: ['createBucket', 'deleteBucket'],
  },
  iam: {
    placeholder: 'IamStepsFunctionArn',
    entry: 'lambdas/steps/iam-steps.ts',
    description: 'Creates and deletes the job role, the instance role and profile, and the access role.',
    steps: [
      'createJobRole',
      'createInstanceRole',
      'pollInstanceProfile',
      'scopeInstanceRole',
      'createAccessRole',
      'deleteJobRole',
      'deleteInstanceRole',
      'deleteAccessRole',
    ],
  },
  network: {
    placeholder: 'NetworkStepsFunctionArn',
    entry: 'lambdas/steps/network-steps.ts',
    description: "Claims an environment's address block, creates and deletes its own subnets in the shared VPC.",
    steps: ['allocateNetwork', 'createSubnets', 'deleteSubnets'],
  },
  batch: {
    placeholder: 'BatchStepsFunctionArn',
    entry: 'lambdas/steps/batch-steps.ts',
    description: 'Creates, polls, disables and deletes the Spot compute environment and the job queue.',
    steps: [
      'createComputeEnvironment',
      'pollComputeEnvironment',
      'disableComputeEnvironment',
      'deleteComputeEnvironment',
      'disableInvalidComputeEnvironment',
      'deleteInvalidComputeEnvironment',
      'createJobQueue',
      'pollJobQueue',
      'disableJobQueue',
      'deleteJobQueue',
      'planUpdate',
      'updateComputeEnvironment',
      'pollComputeEnvironmentSettled',
      'restoreComputeEnvironment',
      'switchJobQueue',
      'restoreJobQueue',
      'disableRetiredComputeEnvironment',
      'deleteRetiredComputeEnvironment',
    ],
  },
  scheduling: {
    placeholder: 'SchedulingStepsFunctionArn',
    entry: 'lambdas/steps/scheduling-steps.ts',
    description: "Creates and deletes what scheduled flows need (two roles, a table) and what Metaflow made; deregisters the environment's job definitions.",
    steps: ['createScheduling', 'deleteScheduling', 'deregisterJobDefinitions'],
  },
} as const;

/**
 * Steps that remove or disable something. Before acting, each checks the registry (steps/teardown-guard.ts):
 * the record must show this very teardown, so a workflow started with a wrong input deletes nothing.
 * Not listed: disableInvalidComputeEnvironment and deleteInvalidComputeEnvironment, which run inside a
 * provision (the record is CREATING, not a teardown) and guard themselves: they touch only a compute
 * environment of ours that AWS reports INVALID, and only while the record shows this very create.
 */
export const DESTRUCTIVE_STEPS: readonly string[] = [
  'deleteBucket',
  'deleteJobRole',
  'deleteInstanceRole',
  'deleteAccessRole',
  'deleteSubnets',
  'disableComputeEnvironment',
  'deleteComputeEnvironment',
  'disableJobQueue',
  'deleteJobQueue',
  'deleteScheduling',
  'deregisterJobDefinitions',
  'disableRetiredComputeEnvironment',
  'deleteRetiredComputeEnvironment',
];

/**
 * The DESTRUCTIVE_STEPS the update workflow may run (mode "update"; teardown-guard.ts): the compute environment
 * a resize replaces (or the replacement it undoes), and the scheduling resources it turns off. Any other
 * destructive step started in update mode removes nothing.
 */
export const UPDATE_DESTRUCTIVE_STEPS: readonly string[] = ['disableRetiredComputeEnvironment', 'deleteRetiredComputeEnvironment', 'deleteScheduling'];

export type StepFunctionId = keyof typeof STEP_FUNCTIONS;
export type StepName<F extends StepFunctionId> = (typeof STEP_FUNCTIONS)[F]['steps'][number];

export const STEP_FUNCTION_IDS = Object.keys(STEP_FUNCTIONS) as StepFunctionId[];
