/**
 * What every step Lambda shares: the input contract, the dispatcher (one Lambda per service group, one
 * function per step), error classification for Step Functions' Retry/Catch, and poll bookkeeping.
 */
import middy from '@middy/core';
import { isClockSkewError, isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { withStepClients } from '../core/clients';
import { WorkflowEnvironment } from '../core/environment';
import { MfenvError, ResourceNotReadyError, TransientError, ValidationError, messageOf } from '../core/errors';
import { logger, loggerMiddleware } from '../core/logger';
import { metricsMiddleware } from '../core/metrics';
import { errorCodeOf, httpStatusOf } from './aws-errors';
import { DESTRUCTIVE_STEPS, STEP_FUNCTIONS, type StepFunctionId, type StepName } from './catalogue';
import { assertTeardownRecorded } from './teardown-guard';

/** `$.poll` in the ASL: set to INITIAL_POLL by a Pass state, then replaced by each poll step's answer. */
export const PollState = z.object({
  attempt: z.number().int().min(0),
  waitSeconds: z.number().int().min(1),
  done: z.boolean().optional(),
  /**
   * Consecutive checks that saw the resource as wanted, for a poll that trusts only a run of them (an IAM
   * object another service must see: one sighting may come from a replica the next read does not hit).
   */
  sightings: z.number().int().min(0).optional(),
});
export type PollState = z.infer<typeof PollState>;

/** `$.error` as a Catch leaves it: `{ Error, Cause }` (Cause is the Lambda's JSON error on AWS). */
export const CaughtError = z.object({ Error: z.string(), Cause: z.string().optional() });
export type CaughtError = z.infer<typeof CaughtError>;

/** The Payload every Task state sends. Extra fields are per step (until, poll, error, bucket). */
export const StepInput = z
  .object({
    step: z.string(),
    environment: WorkflowEnvironment,
    poll: PollState.optional(),
    until: z.enum(['VALID', 'DISABLED', 'GONE']).optional(),
    error: CaughtError.optional(),
    bucket: z.object({ retained: z.boolean(), objectCount: z.number().int() }).optional(),
    /** The environment's address block (allocateNetwork's answer; null when network isolation is off). */
    network: z.object({ cidr: z.string().nullable() }).optional(),
    /** Set by the provision ASL's second VALID wait: the compute environment was re-created once already. */
    computeEnvironmentRecreated: z.boolean().optional(),
    /**
     * The update workflow's steps that retire a compute environment: the one in force before the resize
     * ("previous", once the queue uses its replacement) or the replacement it made ("replacement", undoing it).
     */
    computeEnvironment: z.enum(['previous', 'replacement']).optional(),
    /**
     * Set by the teardown ASL's compute environment waits: wait for every compute environment of the
     * environment (the one in force and any an interrupted update left), as its disable and delete steps act on.
     */
    everyComputeEnvironment: z.boolean().optional(),
    /** The update workflow's failure record: what went wrong undoing the change, when that failed too. */
    rollbackError: CaughtError.optional(),
  })
  .strict();
export type StepInput = z.infer<typeof StepInput>;

export type Step = (input: StepInput) => Promise<unknown>;
export type StepTable<F extends StepFunctionId> = Record<StepName<F>, Step>;

/**
 * The poll schedule. Batch makes most compute environments VALID within a minute or two and queues within
 * seconds, so for the first three minutes a poll loop checks every 3 s (AWS finishing and the workflow
 * noticing are at most one wait apart); after that the wait grows by half up to 30 s, as a resource that slow
 * is waiting on capacity, not on us. Every check costs three state transitions (Wait, Task, Choice).
 */
export const FAST_POLL_SECONDS = 3;
export const FAST_PHASE_SECONDS = 180;
const FAST_POLLS = FAST_PHASE_SECONDS / FAST_POLL_SECONDS;
const MAX_WAIT_SECONDS = 30;
/** Longest any poll loop waits: 3 min of 3 s checks, ~1 min of growing waits, then 30 s ones: ≈ 44 minutes. */
export const MAX_POLL_ATTEMPTS = 145;

/** The wait after the `attempt`-th check (1-based); the wait before the first is the ASL's Pass state's. */
export function pollWaitSeconds(attempt: number): number {
  if (attempt < FAST_POLLS) return FAST_POLL_SECONDS;
  return Math.min(Math.ceil(FAST_POLL_SECONDS * 1.5 ** (attempt - FAST_POLLS + 1)), MAX_WAIT_SECONDS);
}

/**
 * The next `$.poll`: done, or one more attempt. Gives up with ResourceNotReady. The wait depends on the attempt
 * alone, not on the previous wait, so a Pass state's first wait cannot shift the whole schedule.
 */
export function nextPoll(previous: PollState | undefined, done: boolean, what: string): Required<Omit<PollState, 'sightings'>> {
  const attempt = (previous?.attempt ?? 0) + 1;
  if (!done && attempt >= MAX_POLL_ATTEMPTS) {
    throw new ResourceNotReadyError(`${what} did not settle after ${attempt} checks; AWS may be slow or stuck in this region.`);
  }
  return { done, attempt, waitSeconds: pollWaitSeconds(attempt) };
}

/** What the classifiers take; typed from them, so @smithy/types need not be a dependency of its own. */
type SdkError = Parameters<typeof isTransientError>[0];

/**
 * Codes the SDK's classifiers do not mark transient but that are, for the calls the steps make: S3, IAM and
 * Batch refusing a call while another one on the same resource is in flight, DynamoDB losing a race with a
 * transaction, server faults some services name without a 5xx status (emulators), and socket errors
 * reported by name rather than by `code`.
 */
const ALSO_TRANSIENT = new Set([
  'OperationAborted',
  'OperationAbortedException',
  'ConcurrentModification',
  'ConcurrentModificationException',
  'TransactionConflict',
  'TransactionConflictException',
  'TransactionInProgressException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServerException',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
]);

/** A DynamoDB transaction's cancellation reasons that another try can clear; any other reason decides. */
const RETRYABLE_CANCELLATIONS = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded', 'None']);

/**
 * Codes the SDK's classifiers would retry that waiting does not cure here: IAM's LimitExceeded is an account
 * quota (the SDK lists it as throttling, which it is for other services), and the SDK counts authorization
 * failures among its clock-skew codes. Retrying them would only delay a failure a person must act on.
 */
const NOT_TRANSIENT = new Set(['LimitExceededException', 'AccessDeniedException', 'AuthFailure', 'InvalidSignatureException', 'SignatureDoesNotMatch']);

/** True when an AWS SDK (or socket) error is worth trying again as it is. */
export function isTransientAwsError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const sdkError = error as SdkError & { code?: unknown; CancellationReasons?: { Code?: string }[] };
  const name = typeof sdkError.name === 'string' ? sdkError.name : '';
  const code = typeof sdkError.code === 'string' ? sdkError.code : '';
  if (ALSO_TRANSIENT.has(name) || ALSO_TRANSIENT.has(code)) return true;
  if (name === 'TransactionCanceledException') {
    const reasons = (sdkError.CancellationReasons ?? []).map((reason) => reason.Code ?? 'None');
    return reasons.some((reason) => reason !== 'None') && reasons.every((reason) => RETRYABLE_CANCELLATIONS.has(reason));
  }
  const status = httpStatusOf(error);
  if (status !== undefined && status >= 500) return true;
  // An expired signature (a request that waited too long) is the one InvalidSignatureException worth retrying.
  if (NOT_TRANSIENT.has(name)) return name === 'InvalidSignatureException' && isTransientError(sdkError);
  return isThrottlingError(sdkError) || isTransientError(sdkError) || isServerError(sdkError) || isClockSkewError(sdkError);
}

/**
 * An error the step did not word itself (an AWS error as the SDK raised it, a bug) becomes the environment's
 * statusReason as it is, and AWS's message alone is often vague ("Access Denied"): it is prefixed with the
 * step and the error's code. The name stays, so Retry and Catch match it as before.
 */
export function namingTheStep(step: string, thrown: unknown, mapped: Error): Error {
  if (thrown instanceof MfenvError) return mapped;
  const code = errorCodeOf(thrown) || 'Error';
  const answered = httpStatusOf(thrown) !== undefined ? `AWS answered ${code}` : code;
  mapped.message = `in the step ${step}, ${answered}: ${messageOf(thrown)}`;
  return mapped;
}

/** Maps whatever a step threw to an error whose name the ASL's Retry/Catch understand. */
export function asWorkflowError(error: unknown): Error {
  if (error instanceof MfenvError) return error;
  if (isTransientAwsError(error)) {
    const name = (error as { name?: string }).name;
    return new TransientError(`${name || 'AWS'} answered: ${messageOf(error)}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(messageOf(error));
}

/**
 * Builds the Lambda handler of one step function: validates the input, logs with the environment and step
 * as keys, runs the step, and gives Step Functions an error name it can act on. The logger's middleware adds
 * the Lambda request id, cold start and X-Ray trace id to every line and drops the environment and step
 * keys when the invocation ends (resetKeys), whether the step succeeded or threw; the metrics' middleware
 * writes what the step recorded (a READY's seconds, a CREATE_FAILED).
 */
export function stepHandler<F extends StepFunctionId>(id: F, steps: StepTable<F>) {
  const known = STEP_FUNCTIONS[id].steps as readonly string[];
  const run = async (event: unknown, _context: Context): Promise<unknown> => {
    const parsed = StepInput.safeParse(event);
    if (!parsed.success) {
      throw new ValidationError(`The ${id} step function got an input it cannot read: ${parsed.error.message}`);
    }
    const input = parsed.data;
    if (!known.includes(input.step)) {
      throw new ValidationError(`The ${id} step function has no step "${input.step}".`);
    }
    logger.appendKeys({ environment: input.environment.name, step: input.step });
    try {
      // Step clients retry little: the Task's Retry is the backoff that counts.
      const output = await withStepClients(async () => {
        if (DESTRUCTIVE_STEPS.includes(input.step)) await assertTeardownRecorded(input.environment, input.step);
        return steps[input.step as StepName<F>](input);
      });
      logger.info('step done', { output: output as Record<string, unknown> });
      return output ?? {};
    } catch (error) {
      const mapped = namingTheStep(input.step, error, asWorkflowError(error));
      logger.error('step failed', { error: mapped });
      throw mapped;
    }
  };
  return middy(run).use(loggerMiddleware()).use(metricsMiddleware());
}
