/**
 * What every step Lambda shares: the input contract, the dispatcher (one Lambda per service group, one
 * function per step), error classification for Step Functions' Retry/Catch, and poll bookkeeping.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { WorkflowEnvironment } from '../core/environment';
import { MfenvError, ResourceNotReadyError, TransientError, ValidationError, messageOf } from '../core/errors';
import { logger } from '../core/logger';
import { httpStatusOf } from './aws-errors';
import { DESTRUCTIVE_STEPS, STEP_FUNCTIONS, type StepFunctionId, type StepName } from './catalogue';
import { assertTeardownRecorded } from './teardown-guard';

/** `$.poll` in the ASL: set to INITIAL_POLL by a Pass state, then replaced by each poll step's answer. */
export const PollState = z.object({
  attempt: z.number().int().min(0),
  waitSeconds: z.number().int().min(1),
  done: z.boolean().optional(),
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
  })
  .strict();
export type StepInput = z.infer<typeof StepInput>;

export type Step = (input: StepInput) => Promise<unknown>;
export type StepTable<F extends StepFunctionId> = Record<StepName<F>, Step>;

/** Longest any poll loop waits: 90 polls, the wait growing 1.5× from 2 s up to 30 s, ≈ 44 minutes. */
export const MAX_POLL_ATTEMPTS = 90;
const MAX_WAIT_SECONDS = 30;

/** The next `$.poll`: done, or one more attempt with a longer wait. Gives up with ResourceNotReady. */
export function nextPoll(previous: PollState | undefined, done: boolean, what: string): Required<PollState> {
  const attempt = (previous?.attempt ?? 0) + 1;
  if (!done && attempt >= MAX_POLL_ATTEMPTS) {
    throw new ResourceNotReadyError(`${what} did not settle after ${attempt} checks; AWS may be slow or stuck in this region.`);
  }
  const waitSeconds = Math.min(Math.ceil((previous?.waitSeconds ?? 2) * 1.5), MAX_WAIT_SECONDS);
  return { done, attempt, waitSeconds };
}

/** SDK errors worth retrying as they are: throttling, server faults, networking, IAM propagation. */
const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'InternalFailure',
  'ServerException',
  'OperationAbortedException',
  'ConcurrentModification',
  'ConcurrentModificationException',
  'TimeoutError',
  'ECONNRESET',
  'ECONNREFUSED',
]);

/** Maps whatever a step threw to an error whose name the ASL's Retry/Catch understand. */
export function asWorkflowError(error: unknown): Error {
  if (error instanceof MfenvError) return error;
  const name = (error as { name?: string })?.name ?? '';
  const status = httpStatusOf(error);
  if (TRANSIENT_NAMES.has(name) || (status !== undefined && status >= 500)) {
    return new TransientError(`${name || 'AWS'} answered: ${messageOf(error)}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(messageOf(error));
}

/**
 * Builds the Lambda handler of one step function: validates the input, logs with the environment and step
 * as keys, runs the step, and gives Step Functions an error name it can act on.
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
      if (DESTRUCTIVE_STEPS.includes(input.step)) await assertTeardownRecorded(input.environment);
      const output = await steps[input.step as StepName<F>](input);
      logger.info('step done', { output: output as Record<string, unknown> });
      return output ?? {};
    } catch (error) {
      const mapped = asWorkflowError(error);
      logger.error('step failed', { error: mapped });
      throw mapped;
    } finally {
      logger.removeKeys(['environment', 'step']);
    }
  };
  return middy(run);
}
