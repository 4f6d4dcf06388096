/**
 * `npm start`: local mode in the foreground. Starts the emulator, the workflows and the API, creates two
 * demo teammates (alice and bob) with access keys, and prints what to paste to use them. Ctrl-C stops
 * everything it started, the emulator included.
 *
 *   MFENV_PORT           port of the API (default 3000)
 *   MFENV_EMULATOR_PORT  port of the emulator (default 5000)
 *   MFENV_ADMINS         comma-separated admins: principal ARNs, or user names to create like the teammates
 *   MFENV_LOCAL_WAIT_MS  pause of each workflow Wait state in ms (default 200)
 *   POWERTOOLS_LOG_LEVEL the handlers' log level (default here WARN: one line per request and workflow instead)
 */
import type { LocalMode, LocalUser } from './runtime';
import type { ExecutionRecord } from './workflow-runner';

const DEMO_USERS = ['alice', 'bob'];

function port(variable: string, fallback: number): number {
  const value = Number(process.env[variable] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`${variable} must be a TCP port number (1-65535), not "${process.env[variable]}".`);
  }
  return value;
}

function executionLine(record: ExecutionRecord): string {
  const seconds = ((record.stopDate ?? new Date()).getTime() - record.startDate.getTime()) / 1000;
  const why = record.error ? ` (${record.error})` : '';
  return (
    `workflow ${record.name}: ${record.status}${why} in ${seconds.toFixed(1)} s, ` +
    `${record.stateTransitions} state transitions, ${record.stepInvocations} step invocations`
  );
}

function instructions(local: LocalMode, users: LocalUser[], admins: string[]): string {
  const [first, ...others] = users;
  const region = local.region;
  const lines = [
    '',
    'mfenv local mode is running.',
    '',
    `  API       ${local.apiUrl}   (SigV4, service execute-api, region ${region}; signatures are read, not verified)`,
    `  emulator  ${local.emulatorEndpoint}   (moto; its root credentials are testing / testing)`,
    ...(admins.length ? [`  admins    ${admins.join(', ')}`] : []),
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
    'Create, watch, fetch the Metaflow config, delete:',
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
  // Before the handlers are loaded: their logger reads the level once.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const { startLocalMode } = await import('./runtime');
  const { EMULATOR_ACCOUNT_ID } = await import('./emulator');

  const adminEntries = (process.env.MFENV_ADMINS ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const adminNames = adminEntries.filter((entry) => !entry.startsWith('arn:'));
  const admins = adminEntries.map((entry) => (entry.startsWith('arn:') ? entry : `arn:aws:iam::${EMULATOR_ACCOUNT_ID}:user/${entry}`));

  const local = await startLocalMode({
    apiPort: port('MFENV_PORT', 3000),
    emulatorPort: port('MFENV_EMULATOR_PORT', 5000),
    admins,
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
  console.log(instructions(local, users, admins));
}

main().catch((error) => {
  const taken = (error as { code?: string }).code === 'EADDRINUSE' ? ' Choose other ports with MFENV_PORT and MFENV_EMULATOR_PORT.' : '';
  console.error(`Local mode could not start: ${error instanceof Error ? error.message : String(error)}.${taken}`);
  process.exit(1);
});
