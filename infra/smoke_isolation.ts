/**
 * `npm run smoke -- --full` (infra/smoke.ts): the proof that a job of one environment's definition, submitted
 * by a colleague to the colleague's own queue, cannot read the environment's bucket.
 *
 * The threat it answers (README, "Security"): job definitions are account-wide and SubmitJob checks no
 * PassRole, so the owner of environment B can submit A's `metaflow_*` definition, which names A's job role,
 * to B's queue. Only the network-isolation statements of A's bucket policy then stand between that job and
 * A's data. So the probe is one job definition registered through A's access role (A's job role, reading an
 * object of A's bucket), submitted twice without overrides: by B's access role to B's queue, where it must be
 * refused, and by A's access role to A's queue, where it must read. The two jobs differ only in where they
 * run, so a refusal that the control does not share is the bucket policy's, not a broken image or command.
 * A job with B's own job role would prove nothing here: B's job role holds no grant on A's bucket, so it is
 * refused with network isolation on or off.
 *
 * The image is the AWS CLI's official one on ECR Public: no Docker Hub (its anonymous pull limits), no
 * credentials to pull, and the client is in the image, so nothing is installed when the job starts. Its
 * entrypoint is `aws` and a Batch job definition cannot replace an entrypoint, so the command is the CLI's
 * arguments alone. `s3api get-object` exits 254 when the service answered with an error, and prints the
 * error's code (`AccessDenied`) to the job's log, which tells a refusal apart from every other failure.
 */
import { randomBytes } from 'node:crypto';
import type { JobDetail, RegisterJobDefinitionCommandInput } from '@aws-sdk/client-batch';

export const PROBE_IMAGE = 'public.ecr.aws/aws-cli/aws-cli:latest';
/** AWS CLI v2's exit code for "the request was made and the service returned an error". */
export const CLI_SERVICE_ERROR_EXIT = 254;
/** Where Batch sends job output by default (the access role may read it: `ReadBatchLogs`). */
export const BATCH_JOB_LOG_GROUP = '/aws/batch/job';

/** The object the probe reads, written into A's bucket by A's access role just before. */
export function canaryKey(): string {
  return `mfenv-smoke/canary-${randomBytes(4).toString('hex')}.txt`;
}

/**
 * The probe's job definition. `metaflow_` is the only prefix an access role may register and submit
 * (`RegisterMetaflowJobDefinitions`, `SubmitToOwnQueue` in lambdas/core/policies.ts). Registered without
 * tags: tagging on register needs `batch:TagResource`, which no access role holds.
 */
export function probeJobDefinition(args: { jobRoleArn: string; bucket: string; key: string; region: string }): RegisterJobDefinitionCommandInput {
  return {
    jobDefinitionName: `metaflow_mfenv_smoke_${randomBytes(4).toString('hex')}`,
    type: 'container',
    containerProperties: {
      image: PROBE_IMAGE,
      command: ['s3api', 'get-object', '--region', args.region, '--bucket', args.bucket, '--key', args.key, '/tmp/canary'],
      jobRoleArn: args.jobRoleArn,
      resourceRequirements: [
        { type: 'VCPU', value: '1' },
        { type: 'MEMORY', value: '512' },
      ],
    },
    // One attempt: a retried refusal is still a refusal, and a retry would only stretch the wait.
    retryStrategy: { attempts: 1 },
    timeout: { attemptDurationSeconds: 300 },
  };
}

/** What became of one probe job. */
export type ReadingKind =
  /** SUCCEEDED: the object was read. */
  | 'read'
  /** FAILED with the CLI's service-error exit and `AccessDenied` in its log. */
  | 'denied'
  /** It ran and failed for any other reason (another exit code, another error code, no log to tell). */
  | 'failed'
  /** It never ran a container: still waiting for an instance, or it could not start (image pull, ...). */
  | 'never-ran'
  /** Still STARTING or RUNNING when the wait ended. */
  | 'unfinished';

export interface Reading {
  kind: ReadingKind;
  detail: string;
}

const WAITING_STATUSES = new Set(['SUBMITTED', 'PENDING', 'RUNNABLE']);

/** The CLI's error line, e.g. `An error occurred (AccessDenied) when calling the GetObject operation: ...`. */
export function cliErrorLine(log: string | undefined): { code: string; line: string } | undefined {
  const line = log?.split('\n').find((candidate) => /An error occurred \(\w+\)/.test(candidate));
  const code = line && /An error occurred \((\w+)\)/.exec(line)?.[1];
  return line && code ? { code, line: line.trim() } : undefined;
}

/**
 * Reads a job as DescribeJobs reports it (and its log, if it was read), after the wait: `waited` says for
 * how long, for a job that never started.
 */
export function classifyProbeJob(job: JobDetail | undefined, log: string | undefined, waited: string): Reading {
  if (!job) return { kind: 'never-ran', detail: 'DescribeJobs does not know the job' };
  const status = job.status ?? '?';
  const exitCode = job.container?.exitCode;
  const reason = [job.statusReason, job.container?.reason].filter(Boolean).join('; ');
  if (status === 'SUCCEEDED') return { kind: 'read', detail: `SUCCEEDED (exit ${exitCode ?? 0})` };
  if (WAITING_STATUSES.has(status)) {
    return { kind: 'never-ran', detail: `still ${status} after ${waited}${reason ? ` (${reason})` : ''}` };
  }
  if (status !== 'FAILED') return { kind: 'unfinished', detail: `still ${status} after ${waited}` };
  if (exitCode === undefined || exitCode === null) {
    // No exit code: no container ran to the end. Without a start time it never got one at all.
    return job.startedAt === undefined
      ? { kind: 'never-ran', detail: `FAILED before it started: ${reason || 'no reason given'}` }
      : { kind: 'failed', detail: `FAILED without an exit code: ${reason || 'no reason given'}` };
  }
  const error = cliErrorLine(log);
  if (exitCode === CLI_SERVICE_ERROR_EXIT && error?.code === 'AccessDenied') {
    return { kind: 'denied', detail: `FAILED, exit ${exitCode}: ${error.line}` };
  }
  const why = error ? error.line : log === undefined ? 'its log could not be read' : `log: ${lastLines(log)}`;
  return { kind: 'failed', detail: `FAILED, exit ${exitCode}${reason ? ` (${reason})` : ''}: ${why}` };
}

const lastLines = (log: string) => log.trim().split('\n').slice(-3).join(' | ') || '(empty)';

export interface Verdict {
  outcome: 'PASS' | 'FAIL';
  detail: string;
}

const QUOTA_HINT =
  "no Spot instance came for it: the Spot vCPU quota or Spot capacity (README, 'Deploying to a real account': quotas to raise first)";

/**
 * The two lines the proof prints: the foreign job (A's definition on B's queue) must be denied, and the
 * control (the same definition on A's queue) must read; a denial without a working control proves nothing.
 */
export function proofVerdicts(foreign: Reading, control: Reading, names: { home: string; elsewhere: string }): { proof: Verdict; control: Verdict } {
  const controlVerdict: Verdict =
    control.kind === 'read'
      ? { outcome: 'PASS', detail: `the same job on ${names.home}'s queue read the object: ${control.detail}` }
      : { outcome: 'FAIL', detail: `the same job on ${names.home}'s queue did not read the object: ${explain(control)}` };
  let proof: Verdict;
  switch (foreign.kind) {
    case 'denied':
      proof =
        control.kind === 'read'
          ? { outcome: 'PASS', detail: `on ${names.elsewhere}'s queue with ${names.home}'s job role: ${foreign.detail}` }
          : { outcome: 'FAIL', detail: `refused on ${names.elsewhere}'s queue, but the control did not read either, so the refusal proves nothing: ${foreign.detail}` };
      break;
    case 'read':
      proof = {
        outcome: 'FAIL',
        detail: `ISOLATION BROKEN: a job with ${names.home}'s job role read ${names.home}'s bucket from ${names.elsewhere}'s queue (${foreign.detail})`,
      };
      break;
    default:
      proof = { outcome: 'FAIL', detail: `the job on ${names.elsewhere}'s queue proved nothing: ${explain(foreign)}` };
  }
  return { proof, control: controlVerdict };
}

function explain(reading: Reading): string {
  if (reading.kind === 'never-ran' && reading.detail.startsWith('still RUNNABLE')) return `it never ran, ${reading.detail}: ${QUOTA_HINT}`;
  if (reading.kind === 'never-ran') return `it never ran: ${reading.detail}`;
  return reading.detail;
}
