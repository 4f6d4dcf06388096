import { hasSettled, instanceSelectionFor, isIamPropagationDelay } from '../../../lambdas/steps/batch-steps';
import { reasonOfCaughtError } from '../../../lambdas/steps/caught-error';
import { assertOurs, environmentTagOf, isOurs } from '../../../lambdas/steps/ownership';

/** Tags of a resource of alice's environment, made by this deployment (the stack name defaults to mfenv). */
const OURS = { 'mfenv:environment': 'alice', 'managed-by': 'mfenv' };
const what = 'The compute environment "mfenv-alice"';

describe('instanceSelectionFor', () => {
  it('asks for optimal instances and the standard AL2023 image without GPUs', () => {
    expect(instanceSelectionFor({ gpu: false })).toEqual({
      instanceTypes: ['optimal'],
      ec2Configuration: [{ imageType: 'ECS_AL2023' }],
    });
  });

  it('adds the current GPU families and the NVIDIA image with GPUs', () => {
    expect(instanceSelectionFor({ gpu: true })).toEqual({
      instanceTypes: ['optimal', 'g4dn', 'g5', 'g6'],
      ec2Configuration: [{ imageType: 'ECS_AL2023' }, { imageType: 'ECS_AL2023_NVIDIA' }],
    });
  });
});

describe('hasSettled', () => {
  it('VALID needs status VALID and state ENABLED', () => {
    expect(hasSettled('VALID', what, { status: 'VALID', state: 'ENABLED', tags: OURS }, 'alice')).toBe(true);
    expect(hasSettled('VALID', what, { status: 'CREATING', state: 'ENABLED', tags: OURS }, 'alice')).toBe(false);
    expect(hasSettled('VALID', what, { status: 'VALID', state: 'DISABLED', tags: OURS }, 'alice')).toBe(false);
  });

  it('fails at once with AWS’s reason when the resource went INVALID', () => {
    // act
    const check = () =>
      hasSettled('VALID', what, { status: 'INVALID', state: 'ENABLED', statusReason: 'CLIENT_ERROR - subnet not found', tags: OURS }, 'alice');
    // assess
    expect(check).toThrow(expect.objectContaining({ name: 'ResourceFailed', message: expect.stringContaining('CLIENT_ERROR - subnet not found') }));
  });

  it('refuses to wait for VALID on a resource that is not ours', () => {
    expect(() => hasSettled('VALID', what, { status: 'VALID', state: 'ENABLED', tags: { 'mfenv:environment': 'bob' } }, 'alice')).toThrow(
      expect.objectContaining({ name: 'ResourceConflict' }),
    );
  });

  it('DISABLED waits until the change is through; GONE until the resource is no longer described', () => {
    expect(hasSettled('DISABLED', what, { status: 'UPDATING', state: 'DISABLED', tags: OURS }, 'alice')).toBe(false);
    expect(hasSettled('DISABLED', what, { status: 'VALID', state: 'DISABLED', tags: OURS }, 'alice')).toBe(true);
    expect(hasSettled('DISABLED', what, undefined, 'alice')).toBe(true);
    expect(hasSettled('GONE', what, { status: 'DELETING', state: 'DISABLED', tags: OURS }, 'alice')).toBe(false);
    expect(hasSettled('GONE', what, undefined, 'alice')).toBe(true);
  });

  it('does not wait on a resource that is not ours while tearing down', () => {
    expect(hasSettled('GONE', what, { status: 'VALID', state: 'ENABLED', tags: { 'mfenv:environment': 'bob' } }, 'alice')).toBe(true);
  });
});

describe('isIamPropagationDelay', () => {
  const clientError = (message: string, name = 'ClientException') => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });

  it('recognises Batch not yet seeing a new role or instance profile', () => {
    expect(isIamPropagationDelay(clientError('Instance profile arn:aws:iam::1:instance-profile/mfenv/x is not valid'))).toBe(true);
    expect(isIamPropagationDelay(clientError('could not find instanceRole arn:aws:iam::1:instance-profile/x', 'InvalidParameterValue'))).toBe(true);
  });

  it('does not retry other client errors', () => {
    expect(isIamPropagationDelay(clientError('Object already exists'))).toBe(false);
    expect(isIamPropagationDelay(clientError('maxvCpus must be at least minvCpus'))).toBe(false);
    expect(isIamPropagationDelay(new Error('instance profile not found'))).toBe(false);
  });
});

describe('reasonOfCaughtError', () => {
  it('reads the errorMessage out of the JSON cause AWS gives', () => {
    const error = { Error: 'ResourceConflict', Cause: JSON.stringify({ errorType: 'ResourceConflict', errorMessage: 'The bucket is taken.', trace: [] }) };
    expect(reasonOfCaughtError(error)).toBe('The bucket is taken');
  });

  it('takes a plain-text cause as it is, on one line and without the final period', () => {
    expect(reasonOfCaughtError({ Error: 'X', Cause: '  The queue\n went INVALID.  ' })).toBe('The queue went INVALID');
  });

  it('explains a cause-less States error, and a missing error', () => {
    expect(reasonOfCaughtError({ Error: 'States.Timeout' })).toBe('a step did not finish in the time allowed');
    expect(reasonOfCaughtError({ Error: 'Lambda.Unknown', Cause: '' })).toBe('a step failed with Lambda.Unknown');
    expect(reasonOfCaughtError(undefined)).toBe('an unknown error stopped the workflow');
  });

  it('keeps a broken JSON cause as text, and cuts very long reasons', () => {
    expect(reasonOfCaughtError({ Error: 'X', Cause: '{not json' })).toBe('{not json');
    expect(reasonOfCaughtError({ Error: 'X', Cause: 'a'.repeat(5000) }).length).toBeLessThanOrEqual(600);
  });
});

describe('ownership', () => {
  it('reads the environment tag from Batch maps and IAM/S3 lists', () => {
    expect(environmentTagOf({ 'mfenv:environment': 'alice' })).toBe('alice');
    expect(environmentTagOf([{ Key: 'managed-by', Value: 'mfenv' }, { Key: 'mfenv:environment', Value: 'alice' }])).toBe('alice');
    expect(isOurs(undefined, 'alice')).toBe(false);
    expect(isOurs([{ Key: 'mfenv:environment', Value: 'bob' }], 'alice')).toBe(false);
  });

  it("is ours only when made for this environment by this deployment: another stack's namesake is not", () => {
    // prepare
    const sameNameOtherStack = [
      { Key: 'mfenv:environment', Value: 'alice' },
      { Key: 'managed-by', Value: 'mfenv-team2' },
    ];
    // act + assess
    expect(isOurs(OURS, 'alice')).toBe(true);
    expect(isOurs(OURS, 'alice', 'mfenv-team2')).toBe(false);
    expect(isOurs(sameNameOtherStack, 'alice')).toBe(false);
    expect(isOurs(sameNameOtherStack, 'alice', 'mfenv-team2')).toBe(true);
    expect(isOurs({ 'mfenv:environment': 'alice' }, 'alice')).toBe(false);
    expect(() => assertOurs(what, sameNameOtherStack, 'alice')).toThrow(/managed by the deployment "mfenv-team2", not this one/);
  });
});
