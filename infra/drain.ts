/**
 * `npm run drain -- --api <ApiUrl> --yes`: tears down every environment through the API, before the stack is
 * destroyed. Deleting the stack first would strand what the workflows created outside it (compute
 * environments, queues, roles, subnets, buckets), with nothing left to tear them down; the API's own DELETE
 * does it the tested way, keeping a bucket that holds data unless --purge asks otherwise.
 *
 * Run it with an admin's credentials (mfenv:admins): only an admin's GET /environments lists everyone's. Any
 * other caller sees only their own, and the API cannot say which one it is, so the script says so.
 *
 * Exit: 0 when every environment ended DELETED (or, without --yes, after listing what would be deleted);
 * 1 when one ended DELETE_FAILED, the API refused, or the timeout passed; 2 on a usage error.
 */
import { parseArgs } from 'node:util';
import { type SignedApi, defaultChainApi } from './signed-api';

const USAGE = `usage: npm run drain -- --api URL [--yes] [--purge] [--timeout 30m] [--region REGION] [--interval SECONDS]
  --api URL        the stack's ApiUrl output (or MFENV_API)
  --yes            act; without it, list what would be deleted and change nothing
  --purge          also delete the buckets that hold data (by default they are kept, as a plain DELETE keeps them)
  --timeout T      how long to wait for every environment to be DELETED: 90s, 30m, 2h (default 30m)
  --region REGION  the API's region (default: from an execute-api URL, else the SDK's)
  --interval S     seconds between two polls (default 5)`;

class UsageError extends Error {}

interface Options {
  api: string;
  yes: boolean;
  purge: boolean;
  timeoutMs: number;
  intervalMs: number;
  region?: string;
}

/** `90s`, `30m`, `2h`; a plain number is minutes. */
function durationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([smh]?)$/.exec(text.trim());
  if (!match) throw new UsageError(`--timeout ${text}: give a duration such as 90s, 30m or 2h.`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, '': 60_000 }[match[2] as 's' | 'm' | 'h' | ''];
  return Number(match[1]) * unit;
}

function optionsOf(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        api: { type: 'string' },
        yes: { type: 'boolean', default: false },
        purge: { type: 'boolean', default: false },
        timeout: { type: 'string', default: '30m' },
        interval: { type: 'string', default: '5' },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const api = values.api ?? process.env.MFENV_API;
  if (!api) throw new UsageError('Which API? Pass --api with the stack\'s ApiUrl output, or set MFENV_API.');
  try {
    new URL(api);
  } catch {
    throw new UsageError(`--api ${api} is not a URL: give the stack's ApiUrl output, e.g. https://abc123.execute-api.us-east-1.amazonaws.com/prod/`);
  }
  const interval = Number(values.interval);
  if (!(interval > 0)) throw new UsageError(`--interval ${values.interval}: give a number of seconds above 0.`);
  return {
    api,
    yes: values.yes,
    purge: values.purge,
    timeoutMs: durationMs(values.timeout),
    intervalMs: interval * 1_000,
    region: values.region,
  };
}

/** The fields of an environment the API answers that the drain reads. */
interface Environment {
  name: string;
  owner: string;
  status: string;
  statusReason: string | null;
  retainedBucket?: string;
}

interface Tracked {
  environment: Environment;
  /** A DELETE of this run was accepted and started a teardown: a DELETE_FAILED after it is that teardown's. */
  accepted: boolean;
  /** The last refusal shown, so a DELETE refused at every poll (409 while CREATING) is reported once. */
  lastRefusal?: string;
  outcome?: 'deleted' | 'failed';
}

const say = (line: string) => console.log(`drain: ${line}`);

function problemOf(response: { status: number; json: any; text: string }): string {
  const detail = response.json?.detail ?? response.json?.message ?? response.text.slice(0, 300);
  return `HTTP ${response.status}: ${detail}`;
}

/** Whether the environment still needs a DELETE from this run, given what is asked (purge) and what it shows. */
function needsDelete(tracked: Tracked, purge: boolean): boolean {
  const { status, retainedBucket } = tracked.environment;
  if (status === 'DELETED') return purge && retainedBucket !== undefined && !tracked.accepted;
  // A DELETING one is sent DELETE too: repeating it is harmless, and it takes over a teardown whose workflow stopped.
  if (status === 'DELETING' || status === 'DELETE_FAILED') return !tracked.accepted;
  // READY, CREATE_FAILED; CREATING answers 409 until its workflow ends (or takes it over when that has stopped).
  return true;
}

/** The outcome once the environment is at rest, or undefined while it still moves. */
function outcomeOf(tracked: Tracked, purge: boolean): Tracked['outcome'] {
  const { status } = tracked.environment;
  if (status === 'DELETED' && !needsDelete(tracked, purge)) return 'deleted';
  if (status === 'DELETE_FAILED' && tracked.accepted) return 'failed';
  return undefined;
}

function label(environment: Environment): string {
  return `${environment.name} (${environment.owner})`;
}

function update(tracked: Tracked, next: Environment): void {
  const before = tracked.environment;
  tracked.environment = next;
  if (next.status !== before.status) say(`${next.name}: ${before.status} → ${next.status}`);
}

async function step(api: SignedApi, tracked: Tracked, purge: boolean): Promise<void> {
  const { name } = tracked.environment;
  const path = `environments/${encodeURIComponent(name)}`;
  if (needsDelete(tracked, purge)) {
    const response = await api.delete(purge ? `${path}?purge=true` : path);
    if (response.status === 202) {
      tracked.lastRefusal = undefined;
      if (response.json?.status === 'DELETING') tracked.accepted = true;
      update(tracked, response.json);
    } else if (response.status === 404) {
      // Its record has expired (or the owner's principal changed): nothing of it is left to tear down here.
      update(tracked, { ...tracked.environment, status: 'DELETED', retainedBucket: undefined });
      tracked.accepted = true;
    } else {
      // 409 while it is being created (or while a teardown that keeps data runs, for --purge): asked again next poll.
      const refusal = problemOf(response);
      if (refusal !== tracked.lastRefusal) say(`${name}: DELETE not accepted yet (${refusal}); trying again`);
      tracked.lastRefusal = refusal;
    }
  } else {
    const response = await api.get(path);
    if (response.status === 200) update(tracked, response.json);
    else if (response.status === 404) update(tracked, { ...tracked.environment, status: 'DELETED', retainedBucket: undefined });
    else say(`${name}: could not read it (${problemOf(response)}); trying again`);
  }
  tracked.outcome = outcomeOf(tracked, purge);
  if (tracked.outcome === 'failed') say(`${name}: DELETE_FAILED: ${tracked.environment.statusReason ?? 'no reason given'}`);
  if (tracked.outcome === 'deleted' && tracked.environment.retainedBucket) {
    say(`${name}: bucket ${tracked.environment.retainedBucket} kept with its data (--purge deletes it)`);
  }
}

function summary(all: Tracked[]): { failed: number; pending: number } {
  const deleted = all.filter((tracked) => tracked.outcome === 'deleted');
  const failed = all.filter((tracked) => tracked.outcome === 'failed').length;
  const kept = deleted.filter((tracked) => tracked.environment.retainedBucket !== undefined).length;
  say(`${deleted.length} deleted, ${failed} failed, ${kept} kept buckets`);
  return { failed, pending: all.length - deleted.length - failed };
}

async function main(argv: string[]): Promise<number> {
  const options = optionsOf(argv);
  const api = await defaultChainApi(options.api, { region: options.region });

  const listed = await api.get('environments');
  if (listed.status !== 200) {
    say(`could not list the environments (${problemOf(listed)})`);
    return 1;
  }
  const environments: Environment[] = listed.json.environments;
  // An admin's list is everyone's; anyone else's is their own, and both answers look alike.
  console.error(
    `drain: you see ${environments.length} environment(s); if you are not listed in mfenv:admins, ` +
      "other teammates' environments are not included: run this with an admin's credentials.",
  );

  const all: Tracked[] = environments.map((environment) => ({ environment, accepted: false }));
  for (const tracked of all) tracked.outcome = outcomeOf(tracked, options.purge);
  const work = all.filter((tracked) => tracked.outcome === undefined);

  for (const { environment } of all) {
    const { status, retainedBucket } = environment;
    const action =
      status !== 'DELETED'
        ? `delete (${status})${options.purge ? ', with its bucket and data' : ''}`
        : options.purge
          ? `purge the kept bucket ${retainedBucket}`
          : `nothing: DELETED, bucket ${retainedBucket} kept with its data (--purge deletes it)`;
    say(`${options.yes ? '' : 'would '}${label(environment)}: ${action}`);
  }
  if (!options.yes) {
    say(`${work.length} environment(s) to delete; nothing was changed. Run again with --yes to delete them.`);
    return 0;
  }

  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    await Promise.all(work.filter((tracked) => tracked.outcome === undefined).map((tracked) => step(api, tracked, options.purge)));
    if (work.every((tracked) => tracked.outcome !== undefined)) break;
    if (Date.now() + options.intervalMs > deadline) {
      const pending = work.filter((tracked) => tracked.outcome === undefined);
      say(`timed out after ${options.timeoutMs / 1000} s; still not DELETED: ${pending.map((t) => `${t.environment.name} (${t.environment.status})`).join(', ')}`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
  const { failed, pending } = summary(all);
  return failed > 0 || pending > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`drain: ${error.message}\n${USAGE}`);
      process.exit(2);
    }
    console.error(`drain: ${(error as Error).message ?? error}`);
    process.exit(1);
  },
);
