/**
 * `npm start`: local mode in the foreground. Starts the emulator, the workflows and the API, creates two
 * demo teammates (alice and bob) with access keys, and prints what to paste to use them. Ctrl-C stops
 * everything it started, the emulator included.
 *
 *   MFENV_PORT                          port of the API (default 3000)
 *   MFENV_EMULATOR_PORT                 port of the emulator (default 5000)
 *   MFENV_ADMINS                        comma-separated admins: principal ARNs, or user names to create like the teammates
 *   MFENV_MAX_VCPUS_CEILING             largest maxVcpus a teammate may ask for (default 64)
 *   MFENV_MAX_ENVIRONMENTS              environments at once in the account (default 40)
 *   MFENV_MAX_ENVIRONMENTS_PER_OWNER    environments one teammate may hold (default 2)
 *   MFENV_SPOT_ALLOCATION_STRATEGY      SPOT_CAPACITY_OPTIMIZED (default) or SPOT_PRICE_CAPACITY_OPTIMIZED
 *   MFENV_DELETED_RECORD_RETENTION_DAYS days a DELETED environment stays visible (default 30)
 *   MFENV_LOCAL_WAIT_MS                 pause of each workflow Wait state in ms (default 200)
 *   POWERTOOLS_LOG_LEVEL                the handlers' log level (default here WARN: one line per request and workflow instead)
 *   POWERTOOLS_METRICS_DISABLED         default here true: the metrics' EMF lines are for CloudWatch, not this terminal
 *
 * The deploy-time settings are the CDK context values of the same names (mfenv:maxVcpusCeiling, ...), read
 * with the functions' own checks: local mode accepts exactly what a deployed function accepts.
 */
import { AdminArn } from '../../lambdas/core/access';
import { ConfigurationError } from '../../lambdas/core/errors';
import { SETTING, settings } from '../../lambdas/core/settings';
import type { LocalMode, LocalModeOptions, LocalUser } from './runtime';
import type { ExecutionRecord } from './workflow-runner';

const DEMO_USERS = ['alice', 'bob'];

function port(variable: string, fallback: number): number {
  const value = Number(process.env[variable] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`${variable} must be a TCP port number (1-65535), not "${process.env[variable]}".`);
  }
  return value;
}

/** A setting of local mode could not be read: the message names the variable and what it accepts. */
export class LocalSettingError extends Error {
  override readonly name = 'LocalSettingError';
}

/** An IAM user name (IAM's rule), which local mode creates and makes admin. */
const USER_NAME = /^[\w+=,.@-]{1,64}$/;

/**
 * MFENV_ADMINS: principal ARNs, or plain user names that local mode creates (as the ARN of that user in the
 * emulator's account). Each must be an admin a deployment accepts.
 */
export function localAdmins(value: string | undefined, accountId: string): { admins: string[]; userNames: string[] } {
  const entries = (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const userNames = entries.filter((entry) => !entry.startsWith('arn:'));
  for (const entry of entries) {
    const fine = entry.startsWith('arn:') ? AdminArn.safeParse(entry).success : USER_NAME.test(entry);
    if (!fine) {
      throw new LocalSettingError(
        `${SETTING.admins} holds "${entry}", which is neither an IAM user name nor an admin principal ARN ` +
          '(an IAM user or role ARN; a role session only for IAM Identity Center roles, AWSReservedSSO_*)',
      );
    }
  }
  const admins = entries.map((entry) => (entry.startsWith('arn:') ? entry : `arn:aws:iam::${accountId}:user/${entry}`));
  return { admins, userNames };
}

/** The deploy-time settings that change what the API and the workflows do, from the environment. */
export type LocalSettings = Required<
  Pick<LocalModeOptions, 'maxVcpusCeiling' | 'maxEnvironments' | 'maxEnvironmentsPerOwner' | 'spotAllocationStrategy' | 'deletedRecordRetentionDays'>
>;

/**
 * Reads the settings from `env` with the functions' own readers (lambdas/core/settings.ts), which take their
 * ranges and defaults from one table: a value a deployed function would refuse stops local mode at start,
 * with the variable named, instead of failing every request. An empty variable counts as unset.
 */
export function localSettings(env: NodeJS.ProcessEnv): LocalSettings {
  const names = [
    SETTING.maxVcpusCeiling,
    SETTING.maxEnvironments,
    SETTING.maxEnvironmentsPerOwner,
    SETTING.spotAllocationStrategy,
    SETTING.deletedRecordRetentionDays,
  ];
  // The readers read process.env: they are given exactly these variables, and process.env is put back after.
  const saved = process.env;
  process.env = {};
  for (const name of names) if (env[name]?.trim()) process.env[name] = env[name]!.trim();
  try {
    return {
      maxVcpusCeiling: settings.maxVcpusCeiling(),
      maxEnvironments: settings.maxEnvironments(),
      maxEnvironmentsPerOwner: settings.maxEnvironmentsPerOwner(),
      spotAllocationStrategy: settings.spotAllocationStrategy(),
      deletedRecordRetentionDays: settings.deletedRecordRetentionDays(),
    };
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    // The readers' sentences name the variable followed by a space (MFENV_MAX_ENVIRONMENTS is a prefix of another).
    const name = names.find((candidate) => error.message.includes(`${candidate} `));
    const given = name ? ` (it is "${env[name]}")` : '';
    throw new LocalSettingError(`${error.message.replace(/\.$/, '')}${given}`);
  } finally {
    process.env = saved;
  }
}

function executionLine(record: ExecutionRecord): string {
  const seconds = ((record.stopDate ?? new Date()).getTime() - record.startDate.getTime()) / 1000;
  const why = record.error ? ` (${record.error})` : '';
  return (
    `workflow ${record.name}: ${record.status}${why} in ${seconds.toFixed(1)} s, ` +
    `${record.stateTransitions} state transitions, ${record.stepInvocations} step invocations`
  );
}

function instructions(local: LocalMode, users: LocalUser[], admins: string[], deployment: LocalSettings): string {
  const [first, ...others] = users;
  const region = local.region;
  const lines = [
    '',
    'mfenv local mode is running.',
    '',
    `  API       ${local.apiUrl}   (SigV4, service execute-api, region ${region}; signatures are read, not verified)`,
    `  emulator  ${local.emulatorEndpoint}   (moto; its root credentials are testing / testing)`,
    ...(admins.length ? [`  admins    ${admins.join(', ')}`] : []),
    `  limits    maxVcpus up to ${deployment.maxVcpusCeiling}; ${deployment.maxEnvironmentsPerOwner} environments per teammate, ` +
      `${deployment.maxEnvironments} in all; ${deployment.spotAllocationStrategy}`,
    `  OpenAPI   ${local.apiUrl}/openapi.json`,
    '',
    `Act as ${first!.name} (paste into bash or zsh):`,
    '',
    `  export AWS_ACCESS_KEY_ID=${first!.accessKeyId} AWS_SECRET_ACCESS_KEY=${first!.secretAccessKey} AWS_REGION=${region}`,
    `  API=${local.apiUrl}`,
    `  SIGV4=(--aws-sigv4 "aws:amz:${region}:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")`,
    '',
    ...others.map(
      (user) => `  # or as ${user.name}: export AWS_ACCESS_KEY_ID=${user.accessKeyId} AWS_SECRET_ACCESS_KEY=${user.secretAccessKey}`,
    ),
    '',
    'With the command line (Python 3.9+; install it once with: pip install ./cli):',
    '',
    `  export MFENV_API=$API AWS_ENDPOINT_URL_STS=${local.emulatorEndpoint} AWS_ENDPOINT_URL_BATCH=${local.emulatorEndpoint}   # the two endpoints: local mode only`,
    `  mfenv create ${first!.name} --wait`,
    `  mfenv run ${first!.name} -- python flow.py run      # as the environment's access role; artifacts land in its bucket`,
    `  mfenv delete ${first!.name} --purge --wait`,
    `  # scheduled flows (mfenv create NAME --scheduling; python flow.py step-functions create), also:`,
    `  export AWS_ENDPOINT_URL_SFN=${local.sfnEndpoint} AWS_ENDPOINT_URL_EVENTBRIDGE=${local.emulatorEndpoint}`,
    '',
    'Or with curl: create, watch, fetch the Metaflow config, delete:',
    '',
    `  curl -s "\${SIGV4[@]}" -X POST "$API/environments" -H 'content-type: application/json' -d '{"name":"${first!.name}","maxVcpus":16}'`,
    `  curl -s "\${SIGV4[@]}" "$API/environments/${first!.name}"          # until "status": "READY"`,
    `  curl -s "\${SIGV4[@]}" "$API/environments"                 # all your environments`,
    `  curl -s "\${SIGV4[@]}" "$API/environments/${first!.name}/config"   # the Metaflow config`,
    `  curl -s "\${SIGV4[@]}" -X DELETE "$API/environments/${first!.name}"   # ?purge=true also deletes the bucket's data`,
    '',
    'Use it as a Metaflow profile:',
    '',
    '  mkdir -p ~/.metaflowconfig',
    `  curl -s "\${SIGV4[@]}" "$API/environments/${first!.name}/config" > ~/.metaflowconfig/config_${first!.name}.json`,
    `  export METAFLOW_PROFILE=${first!.name}`,
    '  python flow.py run        # artifacts land in the environment\'s bucket in the emulator',
    '',
    'Ctrl-C stops everything.',
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  // Before the handlers are loaded: their logger reads the level once, their metrics whether they are on.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  const { startLocalMode } = await import('./runtime');
  const { EMULATOR_ACCOUNT_ID } = await import('./emulator');

  // Every setting is checked before anything starts.
  const { admins, userNames: adminNames } = localAdmins(process.env[SETTING.admins], EMULATOR_ACCOUNT_ID);
  const deployment = localSettings(process.env);
  const apiPort = port('MFENV_PORT', 3000);
  const emulatorPort = port('MFENV_EMULATOR_PORT', 5000);

  const local = await startLocalMode({
    apiPort,
    emulatorPort,
    admins,
    ...deployment,
    onRequest: ({ method, path, status, caller, ms }) =>
      console.log(`${method} ${path} → ${status}${caller ? ` (${caller.split('/').pop()})` : ''} ${ms} ms`),
    onExecutionEnd: (record) => console.log(executionLine(record)),
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the API, the workflows and the emulator...`);
    local.stop().then(
      () => process.exit(0),
      (error) => {
        console.error('Could not stop cleanly:', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const users: LocalUser[] = [];
  for (const name of [...new Set([...DEMO_USERS, ...adminNames])]) users.push(await local.createUser(name));
  console.log(instructions(local, users, admins, deployment));
}

// Run by `npm start`; imported (by tests), it only offers the readers above.
if (require.main === module) {
  main().catch((error) => {
    const taken = (error as { code?: string }).code === 'EADDRINUSE' ? ' Choose other ports with MFENV_PORT and MFENV_EMULATOR_PORT.' : '';
    console.error(`Local mode could not start: ${error instanceof Error ? error.message : String(error)}.${taken}`);
    process.exit(1);
  });
}
