import { MAX_POLL_ATTEMPTS, asWorkflowError, nextPoll } from '../../../lambdas/steps/step';
import { ResourceNotReadyError, TransientError, ValidationError } from '../../../lambdas/core/errors';

describe('nextPoll', () => {
  it('counts attempts and grows the wait by half each time, up to 30 seconds', () => {
    // act
    const waits: number[] = [];
    let poll = nextPoll(undefined, false, 'the queue');
    for (let i = 0; i < 12; i += 1) {
      waits.push(poll.waitSeconds);
      poll = nextPoll(poll, false, 'the queue');
    }
    // assess
    expect(waits.slice(0, 4)).toEqual([3, 5, 8, 12]);
    expect(Math.max(...waits)).toBe(30);
    expect(poll.attempt).toBe(13);
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

describe('asWorkflowError', () => {
  it('turns throttling and server faults into TransientError, which the ASL retries', () => {
    // prepare
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    const serverFault = Object.assign(new Error('boom'), { name: 'Whatever', $metadata: { httpStatusCode: 503 } });
    // act + assess
    expect(asWorkflowError(throttled)).toBeInstanceOf(TransientError);
    expect(asWorkflowError(throttled).name).toBe('TransientError');
    expect(asWorkflowError(serverFault)).toBeInstanceOf(TransientError);
  });

  it('keeps domain errors and client errors as they are', () => {
    // prepare
    const domain = new ValidationError('bad');
    const client = Object.assign(new Error('no such thing'), { name: 'ClientException', $metadata: { httpStatusCode: 400 } });
    // act + assess
    expect(asWorkflowError(domain)).toBe(domain);
    expect(asWorkflowError(client)).toBe(client);
    expect(asWorkflowError('text').message).toBe('text');
  });
});
