/**
 * A failure the step did not word itself reaches the environment's statusReason naming the step and AWS's
 * error code, with the error's name (what Retry and Catch match) unchanged.
 */
import { ResourceConflictError } from '../../../lambdas/core/errors';
import { asWorkflowError, namingTheStep } from '../../../lambdas/steps/step';

/** An error as the SDK raises it: the code as name, the HTTP answer in $metadata. */
function sdkError(name: string, message: string, status: number): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

describe('namingTheStep', () => {
  it('prefixes an AWS error with the step and its code, keeping its name', () => {
    // prepare
    const thrown = sdkError('AccessDenied', 'Access Denied', 403);

    // act
    const named = namingTheStep('createBucket', thrown, asWorkflowError(thrown));

    // assess
    expect(named.name).toBe('AccessDenied');
    expect(named.message).toBe('in the step createBucket, AWS answered AccessDenied: Access Denied');
  });

  it('names the step of a transient error that outlived its retries, still a TransientError', () => {
    // prepare
    const thrown = sdkError('ThrottlingException', 'Rate exceeded', 400);

    // act
    const named = namingTheStep('createJobQueue', thrown, asWorkflowError(thrown));

    // assess
    expect(named.name).toBe('TransientError');
    expect(named.message).toBe('in the step createJobQueue, AWS answered ThrottlingException: Rate exceeded');
  });

  it('names the step of a bug, and leaves a sentence the step wrote alone', () => {
    // prepare
    const bug = new TypeError("Cannot read properties of undefined (reading 'SubnetId')");
    const worded = new ResourceConflictError('The IAM role "mfenv-a-job" already exists but does not belong to the environment "a".');

    // act
    const named = [namingTheStep('createSubnets', bug, asWorkflowError(bug)), namingTheStep('createJobRole', worded, asWorkflowError(worded))];

    // assess
    expect(named.map((error) => [error.name, error.message])).toEqual([
      ['TypeError', "in the step createSubnets, TypeError: Cannot read properties of undefined (reading 'SubnetId')"],
      [worded.name, worded.message],
    ]);
  });
});
