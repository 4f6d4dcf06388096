import { deploymentHash, executionName, namesFor, resourcesOf, tagsFor } from '../../../lambdas/core/naming';
import { ENVIRONMENT_NAME_PATTERN } from '../../../lambdas/core/environment';

const deployment = { prefix: 'mfenv', accountId: '123456789012', region: 'eu-west-1', stackName: 'mfenv' };

describe('namesFor', () => {
  it('derives every name from the environment name under the prefix and IAM path', () => {
    // act
    const names = namesFor(deployment, 'alice');
    // assess
    expect(names.computeEnvironmentName).toBe('mfenv-alice');
    expect(names.jobQueueName).toBe('mfenv-alice');
    expect(names.jobRoleArn).toBe('arn:aws:iam::123456789012:role/mfenv/mfenv-alice-job');
    expect(names.instanceProfileArn).toBe('arn:aws:iam::123456789012:instance-profile/mfenv/mfenv-alice-instance');
    expect(names.accessRoleArn).toBe('arn:aws:iam::123456789012:role/mfenv/mfenv-alice-access');
    expect(names.jobQueueArn).toBe('arn:aws:batch:eu-west-1:123456789012:job-queue/mfenv-alice');
    expect(names.computeEnvironmentArn).toBe('arn:aws:batch:eu-west-1:123456789012:compute-environment/mfenv-alice');
    expect(names.bucket).toMatch(/^mfenv-alice-[0-9a-f]{8}$/);
    expect(names.bucketArn).toBe(`arn:aws:s3:::${names.bucket}`);
  });

  it('keeps the longest allowed name within every AWS limit', () => {
    // prepare: the longest name the pattern accepts
    const longest = `a${'b'.repeat(30)}c`;
    expect(longest).toMatch(ENVIRONMENT_NAME_PATTERN);
    // act
    const names = namesFor(deployment, longest);
    // assess: S3 63, IAM role/profile/policy 64/128, Batch 128
    expect(names.bucket.length).toBeLessThanOrEqual(63);
    expect(names.bucket).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
    expect(names.jobRoleName.length).toBeLessThanOrEqual(64);
    expect(names.instanceRoleName.length).toBeLessThanOrEqual(64);
    expect(names.accessRoleName.length).toBeLessThanOrEqual(64);
    expect(executionName('rollback', longest, 999_999).length).toBeLessThanOrEqual(80);
  });

  it('gives two deployments different bucket names for the same environment', () => {
    // act
    const a = namesFor(deployment, 'alice').bucket;
    const otherAccount = namesFor({ ...deployment, accountId: '210987654321' }, 'alice').bucket;
    const otherStack = namesFor({ ...deployment, stackName: 'mfenv-staging' }, 'alice').bucket;
    // assess
    expect(new Set([a, otherAccount, otherStack]).size).toBe(3);
    expect(deploymentHash(deployment)).toBe(deploymentHash({ ...deployment }));
  });

  it('lists the API resources and tags of an environment', () => {
    // act
    const resources = resourcesOf(namesFor(deployment, 'bob'));
    const tags = tagsFor(deployment, 'bob', 'arn:aws:iam::123456789012:user/bob');
    // assess
    expect(Object.keys(resources).sort()).toEqual(
      ['accessRoleArn', 'bucket', 'computeEnvironmentArn', 'instanceProfileArn', 'jobQueueArn', 'jobRoleArn'],
    );
    expect(tags).toEqual({
      'mfenv:environment': 'bob',
      'mfenv:owner': 'arn:aws:iam::123456789012:user/bob',
      'managed-by': 'mfenv',
    });
  });
});
