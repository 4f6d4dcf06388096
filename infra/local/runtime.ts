/**
 * Local mode: the whole system on this machine, differing from AWS only by configuration.
 *
 *   moto emulator  ← every AWS call of every handler (AWS_ENDPOINT_URL)
 *   workflow runner + Step Functions endpoint  ← StartExecution & co. (AWS_ENDPOINT_URL_SFN)
 *   HTTP adapter (API Gateway's part: SigV4 caller → proxy event)  → the API handler
 *
 * The handlers run in this process with process.env set to the settings the CDK stack would give their
 * Lambdas (infra/local/bootstrap.ts), so they read configuration exactly as on AWS.
 */
import { join } from 'node:path';
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, GetRoleCommand, IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { resetClients } from '../../lambdas/core/clients';
import { SETTING, type SpotAllocationStrategy } from '../../lambdas/core/settings';
import { API_FUNCTION } from '../../lambdas/steps/catalogue';
import { bootstrapEmulator, emulatorClientConfig, type LocalBootstrap } from './bootstrap';
import { EMULATOR_ACCOUNT_ID, EMULATOR_REGION, type Emulator, PROJECT_ROOT, startEmulator } from './emulator';
import { type ApiHandler, type ApiRoute, type HttpAdapter, startHttpAdapter } from './http-adapter';
import { createIdentityResolver } from './identity';
import { allowRequireOfImportOnlyPackages } from './module-hooks';
import { type SfnEndpoint, startSfnEndpoint } from './sfn-endpoint';
import { type ExecutionRecord, WorkflowRunner } from './workflow-runner';

/** The API's route table (`ROUTES`): the resources and methods the REST API declares. */
export const API_ROUTES_MODULE = 'lambdas/api/routes.ts';

export interface LocalModeOptions {
  /** Port of the API (default: a free one). */
  apiPort?: number;
  /** Port of the emulator (default: a free one). */
  emulatorPort?: number;
  /** Principal ARNs who see and manage every environment. */
  admins?: string[];
  /** The deploy-time settings of the same names (infra/config.ts); unset, the stack's defaults. */
  maxVcpusCeiling?: number;
  maxEnvironments?: number;
  maxEnvironmentsPerOwner?: number;
  spotAllocationStrategy?: SpotAllocationStrategy;
  deletedRecordRetentionDays?: number;
  /** The Batch service role compute environments name (infra/local/bootstrap.ts; default Batch's service-linked role). */
  batchServiceRole?: 'service-linked' | 'own';
  /** Pause of every Wait state and Retry, in ms (defaults: MFENV_LOCAL_WAIT_MS / MFENV_LOCAL_RETRY_MS or 200 / 100). */
  waitMs?: number;
  retryMs?: number;
  /** Passed to the emulator: keep its log quiet. */
  quiet?: boolean;
  /** Called for every API request served. */
  onRequest?: Parameters<typeof startHttpAdapter>[0]['onRequest'];
  /** Called for every workflow execution once it has stopped. */
  onExecutionEnd?: (record: ExecutionRecord) => void;
}

export interface LocalUser {
  name: string;
  arn: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * The path IAM Identity Center gives the roles it creates for a permission set in an account, named
 * `AWSReservedSSO_<PermissionSet>_<16 hex characters>`.
 */
export const IDENTITY_CENTER_ROLE_PATH = '/aws-reserved/sso.amazonaws.com/';

export interface LocalRole {
  name: string;
  /** e.g. `/` or IDENTITY_CENTER_ROLE_PATH */
  path: string;
  /** `arn:aws:iam::ACCT:role/<path><name>` */
  arn: string;
  /** The role's unique id (AROA…): the first half of what API Gateway reports as a session's `user`. */
  roleId: string;
}

/** Temporary credentials of one session of a role: what a person or job behind that role signs with. */
export interface LocalRoleSession {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** `arn:aws:sts::ACCT:assumed-role/<role>/<session>`: the `userArn` API Gateway reports for it. */
  arn: string;
  /** `<role's unique id AROA…>:<session>`: the `user` and `caller` API Gateway reports for it. */
  userId: string;
}

export interface LocalMode {
  /** Root of the API, e.g. http://127.0.0.1:3000 */
  apiUrl: string;
  emulatorEndpoint: string;
  sfnEndpoint: string;
  region: string;
  accountId: string;
  bootstrap: LocalBootstrap;
  runner: WorkflowRunner;
  /** Every workflow execution so far (newest first), with its state transitions and step invocations. */
  executions(): ExecutionRecord[];
  /** Creates an IAM user with an access key in the emulator: someone who can call the API. */
  createUser(name: string): Promise<LocalUser>;
  /** The ARN local mode gives the IAM user of that name. */
  userArn(name: string): string;
  /**
   * Creates an IAM role in the emulator that the account's principals may assume: what a team's shared
   * role, a job's role or (under IDENTITY_CENTER_ROLE_PATH) an IAM Identity Center permission set is.
   */
  createRole(name: string, options?: { path?: string }): Promise<LocalRole>;
  /**
   * A new session of the role, with its temporary credentials, from the emulator's STS: someone who calls
   * the API as that role. The emulator does not evaluate trust policies, so any existing role works.
   */
  assumeRole(roleArn: string, sessionName: string): Promise<LocalRoleSession>;
  /** Stops the API, the workflows, the Step Functions endpoint and the emulator; restores process.env. */
  stop(): Promise<void>;
}

function loadApi(): { handler: ApiHandler; routes: readonly ApiRoute[] } {
  allowRequireOfImportOnlyPackages();
  const { handler } = require(join(PROJECT_ROOT, API_FUNCTION.entry)) as { handler?: unknown };
  if (typeof handler !== 'function') throw new Error(`${API_FUNCTION.entry} does not export a function named "handler".`);
  const { ROUTES } = require(join(PROJECT_ROOT, API_ROUTES_MODULE)) as { ROUTES?: unknown };
  if (!Array.isArray(ROUTES)) throw new Error(`${API_ROUTES_MODULE} does not export the route table ROUTES.`);
  return { handler: handler as ApiHandler, routes: ROUTES as ApiRoute[] };
}

export async function startLocalMode(options: LocalModeOptions = {}): Promise<LocalMode> {
  const savedEnv = { ...process.env };
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((error) => console.error('local mode: while stopping:', error));
    stops.length = 0;
    process.env = savedEnv;
    resetClients();
  };

  try {
    // The emulator (installing its pinned Python environment on first use) and the bootstrap stack's resources.
    const emulator: Emulator = await startEmulator({ port: options.emulatorPort, quiet: options.quiet });
    stops.push(() => emulator.stop());
    const bootstrap = await bootstrapEmulator(emulator.endpoint, {
      admins: (options.admins ?? []).join(','),
      maxVcpusCeiling: options.maxVcpusCeiling,
      maxEnvironments: options.maxEnvironments,
      maxEnvironmentsPerOwner: options.maxEnvironmentsPerOwner,
      spotAllocationStrategy: options.spotAllocationStrategy,
      deletedRecordRetentionDays: options.deletedRecordRetentionDays,
      batchServiceRole: options.batchServiceRole,
    });
    const stackName = bootstrap.env[SETTING.stackName]!;

    // Step Functions: the ASL files, run locally, behind an endpoint the ordinary SFNClient can reach.
    const runner = new WorkflowRunner({
      region: EMULATOR_REGION,
      accountId: EMULATOR_ACCOUNT_ID,
      stackName,
      waitMs: options.waitMs,
      retryMs: options.retryMs,
      onExecutionEnd: options.onExecutionEnd,
    });
    // Every other Step Functions call (Metaflow's scheduled flows, the teardown's cleanup of them) goes on to the
    // emulator, so they all see one store of state machines (DESIGN §8).
    const sfn: SfnEndpoint = await startSfnEndpoint(runner, { forwardTo: emulator.endpoint });
    stops.push(() => sfn.stop());
    // Stopped before the endpoint: a step that starts a workflow (the rollback) still finds it while aborting.
    stops.push(() => runner.abortAll());

    // The configuration every handler reads: the stack's settings, plus where the AWS endpoints are.
    Object.assign(process.env, bootstrap.env, {
      [SETTING.provisionStateMachineArn]: runner.stateMachineArn('provision'),
      [SETTING.teardownStateMachineArn]: runner.stateMachineArn('teardown'),
      [SETTING.updateStateMachineArn]: runner.stateMachineArn('update'),
      AWS_ENDPOINT_URL_SFN: sfn.endpoint,
    });
    resetClients();

    // API Gateway's part: who is calling, and the proxy event for the API handler.
    const iam = new IAMClient(emulatorClientConfig(emulator.endpoint));
    stops.push(async () => iam.destroy());
    const sts = new STSClient(emulatorClientConfig(emulator.endpoint));
    stops.push(async () => sts.destroy());
    const adapter: HttpAdapter = await startHttpAdapter({
      ...loadApi(),
      identity: createIdentityResolver(emulator.endpoint, EMULATOR_REGION),
      accountId: EMULATOR_ACCOUNT_ID,
      functionName: `${stackName}-api`,
      region: EMULATOR_REGION,
      maxVcpusCeiling: Number(bootstrap.env[SETTING.maxVcpusCeiling]),
      port: options.apiPort,
      onRequest: options.onRequest,
    });
    stops.push(() => adapter.stop());

    const userArn = (name: string) => `arn:aws:iam::${EMULATOR_ACCOUNT_ID}:user/${name}`;
    return {
      apiUrl: adapter.url,
      emulatorEndpoint: emulator.endpoint,
      sfnEndpoint: sfn.endpoint,
      region: EMULATOR_REGION,
      accountId: EMULATOR_ACCOUNT_ID,
      bootstrap,
      runner,
      executions: () => runner.list(),
      userArn,
      async createUser(name) {
        const user = (await iam.send(new CreateUserCommand({ UserName: name }))).User!;
        const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
        return { name, arn: user.Arn!, accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
      },
      async createRole(name, { path = '/' } = {}) {
        // Trusting the account lets any of its principals assume the role, as a team's role usually does
        // (Identity Center's roles trust its SAML provider instead; the emulator checks neither).
        const trust = {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: `arn:aws:iam::${EMULATOR_ACCOUNT_ID}:root` },
              Action: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
            },
          ],
        };
        const role = (await iam.send(new CreateRoleCommand({ RoleName: name, Path: path, AssumeRolePolicyDocument: JSON.stringify(trust) }))).Role!;
        return { name, path: role.Path ?? path, arn: role.Arn!, roleId: role.RoleId! };
      },
      async assumeRole(roleArn, sessionName) {
        // The emulator's STS hands out sessions of roles that do not exist, each with a made-up unique id;
        // AWS refuses them, and so does local mode, so a typo does not become a caller nobody can match.
        if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
          throw new Error(`"${sessionName}" is not a role session name: 2 to 64 letters, digits or +=,.@_- (as AWS requires).`);
        }
        const missing = new Error(`There is no role ${roleArn} in the emulator: create it first (createRole).`);
        let existing: string | undefined;
        try {
          existing = (await iam.send(new GetRoleCommand({ RoleName: roleArn.split('/').pop() ?? '' }))).Role?.Arn;
        } catch (error) {
          if (error instanceof NoSuchEntityException || (error as { name?: string }).name === 'NoSuchEntityException') throw missing;
          throw error;
        }
        if (existing !== roleArn) throw missing;
        // The emulator's root asks, as nothing checks who may assume what locally.
        const answer = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName }));
        return {
          accessKeyId: answer.Credentials!.AccessKeyId!,
          secretAccessKey: answer.Credentials!.SecretAccessKey!,
          sessionToken: answer.Credentials!.SessionToken!,
          arn: answer.AssumedRoleUser!.Arn!,
          userId: answer.AssumedRoleUser!.AssumedRoleId!,
        };
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
