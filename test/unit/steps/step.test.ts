import type { Context } from 'aws-lambda';
import { API_MAX_ATTEMPTS, STEP_MAX_ATTEMPTS, batchClient, dynamoClient, resetClients, withStepClients } from '../../../lambdas/core/clients';
import type { WorkflowEnvironment } from '../../../lambdas/core/environment';
import { ResourceNotReadyError, TransientError, ValidationError } from '../../../lambdas/core/errors';
import { logger } from '../../../lambdas/core/logger';
import type { StepTable } from '../../../lambdas/steps/step';
import { MAX_POLL_ATTEMPTS, asWorkflowError, isTransientAwsError, nextPoll, pollWaitSeconds, stepHandler } from '../../../lambdas/steps/step';

/** The first waits the ASL's `Start…` Pass states set. */
const FIRST_WAITS = [2, 3];

/**
 * When each check of one poll loop runs, in seconds after the loop starts, until the loop gives up: the
 * first after the Pass state's wait, every next one after the wait the previous check answered. Lambda and
 * state-transition latency (tens of milliseconds) is left out.
 */
function checkTimes(firstWait: number): number[] {
  const times = [firstWait];
  let poll: { attempt: number; waitSeconds: number } = { attempt: 0, waitSeconds: firstWait };
  for (;;) {
    try {
      poll = nextPoll(poll, false, 'The resource');
    } catch {
      return times;
    }
    times.push(times.at(-1)! + poll.waitSeconds);
  }
}

/** Seconds between a resource becoming ready at `readyAt` and the first check that sees it. */
const noticeGap = (times: number[], readyAt: number) => times.find((time) => time >= readyAt)! - readyAt;

describe('nextPoll', () => {
  it('checks every 3 seconds for the first 3 minutes, then waits longer, up to 30 seconds', () => {
    // act
    const waits = Array.from({ length: MAX_POLL_ATTEMPTS }, (_, index) => nextPoll({ attempt: index, waitSeconds: 3 }, true, 'x').waitSeconds);

    // assess
    expect(waits.slice(0, 59)).toEqual(Array(59).fill(3));
    expect(waits.slice(59, 66)).toEqual([5, 7, 11, 16, 23, 30, 30]);
    expect(waits.every((wait, index) => index === 0 || wait >= waits[index - 1]!)).toBe(true);
    expect(Math.max(...waits)).toBe(30);
  });

  it.each(FIRST_WAITS)('notices within 5 s a resource ready at 60 s, at 180 s, or at any time in the first 3 minutes (first wait %i s)', (firstWait) => {
    // prepare
    const times = checkTimes(firstWait);

    // act
    const readyTimes = Array.from({ length: 1800 }, (_, tenth) => (tenth + 1) / 10);
    const worst = Math.max(...readyTimes.map((readyAt) => noticeGap(times, readyAt)));

    // assess
    expect(noticeGap(times, 60)).toBeLessThanOrEqual(5);
    expect(noticeGap(times, 180)).toBeLessThanOrEqual(5);
    expect(worst).toBeLessThanOrEqual(5);
  });

  it.each(FIRST_WAITS)('still gives a stuck resource about 44 minutes before giving up (first wait %i s)', (firstWait) => {
    // act
    const times = checkTimes(firstWait);

    // assess: the checks are bounded, and so is the loop's share of an execution's history
    expect(times).toHaveLength(MAX_POLL_ATTEMPTS);
    expect(times.at(-1)! / 60).toBeGreaterThanOrEqual(40);
    expect(times.at(-1)! / 60).toBeLessThanOrEqual(50);
  });

  it('depends on the attempt alone, so the Pass state’s first wait cannot shift the schedule', () => {
    // act + assess
    expect(nextPoll({ attempt: 70, waitSeconds: 2 }, false, 'x')).toEqual({ done: false, attempt: 71, waitSeconds: pollWaitSeconds(71) });
    expect(nextPoll({ attempt: 70, waitSeconds: 30 }, false, 'x').waitSeconds).toBe(30);
    expect(nextPoll(undefined, false, 'x')).toEqual({ done: false, attempt: 1, waitSeconds: 3 });
  });

  it('reports done without counting against the limit', () => {
    expect(nextPoll({ attempt: MAX_POLL_ATTEMPTS + 5, waitSeconds: 30 }, true, 'x').done).toBe(true);
  });

  it('gives up with ResourceNotReady, naming what did not settle', () => {
    // act + assess
    expect(() => nextPoll({ attempt: MAX_POLL_ATTEMPTS - 1, waitSeconds: 30 }, false, 'The compute environment')).toThrow(
      ResourceNotReadyError,
    );
    expect(() => nextPoll({ attempt: MAX_POLL_ATTEMPTS - 1, waitSeconds: 30 }, false, 'The compute environment')).toThrow(
      /The compute environment did not settle/,
    );
  });
});

/** An error as the AWS SDK throws it: the service's code as name, the HTTP status in $metadata. */
function awsError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}), ...extra });
}

/** A socket error as Node throws it: the code in `code`, a generic name. */
function socketError(code: string): Error {
  return Object.assign(new Error(`socket: ${code}`), { code });
}

describe('isTransientAwsError', () => {
  it.each([
    ['throttling (Batch, IAM)', awsError('ThrottlingException', 400)],
    ['throttling (EC2)', awsError('RequestLimitExceeded', 503)],
    ['throttling (S3)', awsError('SlowDown', 503)],
    ['throttling by status alone', awsError('Whatever', 429)],
    ['DynamoDB throughput', awsError('ProvisionedThroughputExceededException', 400)],
    ['a server fault', awsError('ServerException', 500)],
    ['a server fault of any name', awsError('Whatever', 503)],
    ['a service unavailable without a status (emulators)', awsError('ServiceUnavailable')],
    ['an SDK timeout', awsError('TimeoutError')],
    ['a request timeout', awsError('RequestTimeout', 400)],
    ['S3 refusing while another operation runs', awsError('OperationAborted', 409)],
    ['a concurrent modification', awsError('ConcurrentModificationException', 409)],
    ['DynamoDB conflicting with a transaction', awsError('TransactionConflictException', 400)],
    [
      'a DynamoDB transaction cancelled by a conflict',
      awsError('TransactionCanceledException', 400, { CancellationReasons: [{ Code: 'None' }, { Code: 'TransactionConflict' }] }),
    ],
    ['a reset connection', socketError('ECONNRESET')],
    ['a timed-out socket', socketError('ETIMEDOUT')],
    ['a broken pipe', socketError('EPIPE')],
    ['a socket error by name', awsError('ECONNRESET')],
    ['a socket error under an SDK error', Object.assign(awsError('Unknown'), { cause: socketError('ECONNRESET') })],
    ['a skewed clock', awsError('RequestTimeTooSkewed', 403)],
    ['an expired signature', Object.assign(awsError('InvalidSignatureException', 400), { message: 'Signature expired: 20240101T000000Z is now earlier than ...' })],
    ['an error the service marks retryable', Object.assign(awsError('Anything', 400), { $retryable: {} })],
  ])('%s is transient', (_, error) => {
    // act + assess
    expect(isTransientAwsError(error)).toBe(true);
  });

  it.each([
    ['a refusal', awsError('AccessDeniedException', 403)],
    ['an IAM quota reached', awsError('LimitExceededException', 409)],
    ['an invalid request', awsError('ClientException', 400)],
    ['a missing entity', awsError('NoSuchEntityException', 404)],
    ['a bad signature', awsError('SignatureDoesNotMatch', 403)],
    [
      'a DynamoDB transaction cancelled by its condition',
      awsError('TransactionCanceledException', 400, { CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'TransactionConflict' }] }),
    ],
    ['an aborted call', Object.assign(awsError('AbortError'), { cause: socketError('ECONNRESET') })],
    ['a plain error', new Error('bug')],
    ['not an error at all', 'text'],
    ['nothing', undefined],
  ])('%s is not transient', (_, error) => {
    // act + assess
    expect(isTransientAwsError(error)).toBe(false);
  });
});

describe('asWorkflowError', () => {
  it('turns transient errors into TransientError, which the ASL retries, keeping the cause', () => {
    // prepare
    const throttled = awsError('ThrottlingException', 400);
    const serverFault = awsError('Whatever', 503);

    // act
    const mapped = [throttled, serverFault].map(asWorkflowError);

    // assess
    expect(mapped[0]).toBeInstanceOf(TransientError);
    expect(mapped[0]!.name).toBe('TransientError');
    expect(mapped[0]!.message).toMatch(/^ThrottlingException answered: /);
    expect(mapped[0]!.cause).toBe(throttled);
    expect(mapped[1]).toBeInstanceOf(TransientError);
  });

  it('keeps domain errors and client errors as they are', () => {
    // prepare
    const domain = new ValidationError('bad');
    const client = awsError('ClientException', 400);

    // act + assess
    expect(asWorkflowError(domain)).toBe(domain);
    expect(asWorkflowError(client)).toBe(client);
    expect(asWorkflowError('text').message).toBe('text');
  });
});

describe('SDK retries inside steps', () => {
  afterEach(() => resetClients());

  it('are fewer than the API’s, so they do not multiply with the Task’s Retry', async () => {
    // act
    const apiAttempts = await batchClient().config.maxAttempts();
    const stepAttempts = await withStepClients(async () => batchClient().config.maxAttempts());

    // assess
    expect(apiAttempts).toBe(API_MAX_ATTEMPTS);
    expect(stepAttempts).toBe(STEP_MAX_ATTEMPTS);
    expect(STEP_MAX_ATTEMPTS).toBeLessThanOrEqual(2);
  });

  it('apply to every client a step handler uses, while the API keeps its own clients', async () => {
    // prepare: a poll step that reports the attempts of the clients it gets
    jest.spyOn(logger, 'info').mockImplementation(() => undefined);
    const seen: number[] = [];
    const steps = {
      pollJobQueue: async () => {
        seen.push(await batchClient().config.maxAttempts(), await dynamoClient().config.maxAttempts());
        return {};
      },
    } as unknown as StepTable<'batch'>;
    const handler = stepHandler('batch', steps);
    const environment: WorkflowEnvironment = {
      name: 'alice',
      owner: 'arn:aws:iam::123456789012:user/alice',
      ownerUniqueId: null,
      spec: { maxVcpus: 16, gpu: false },
      generation: 1,
      purge: false,
      mode: 'delete',
    };

    // act
    await handler({ step: 'pollJobQueue', environment, until: 'VALID' }, {} as Context);

    // assess
    expect(seen).toEqual([STEP_MAX_ATTEMPTS, STEP_MAX_ATTEMPTS]);
    expect(await dynamoClient().config.maxAttempts()).toBe(API_MAX_ATTEMPTS);
  });
});
