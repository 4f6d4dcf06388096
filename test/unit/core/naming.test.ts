import {
  S3_RESERVED_BUCKET_PREFIXES,
  S3_RESERVED_BUCKET_SUFFIXES,
  deploymentHash,
  executionName,
  namesFor,
  reservedBucketNameForm,
  resourcesOf,
  schedulingPrefixFits,
  tagsFor,
} from '../../../lambdas/core/naming';
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

describe('names of scheduled flows', () => {
  it("gives each environment its own state machine prefix, roles and table, and ARN patterns that match only its own names", () => {
    // act
    const alice = namesFor(deployment, 'alice');
    const alice2 = namesFor(deployment, 'alice-2');
    const matches = (pattern: string, arn: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(arn);
    // assess
    expect(alice).toMatchObject({
      sfnStateMachinePrefix: 'mfenv-alice',
      sfnRoleArn: 'arn:aws:iam::123456789012:role/mfenv/mfenv-alice-sfn',
      eventsRoleArn: 'arn:aws:iam::123456789012:role/mfenv/mfenv-alice-events',
      sfnTableName: 'mfenv-alice-sfn',
    });
    const own = 'arn:aws:states:eu-west-1:123456789012:stateMachine:mfenv-alice_NightlyFlow';
    const neighbours = 'arn:aws:states:eu-west-1:123456789012:stateMachine:mfenv-alice-2_NightlyFlow';
    expect(matches(alice.stateMachineArnPattern, own)).toBe(true);
    expect(matches(alice.stateMachineArnPattern, neighbours)).toBe(false);
    expect(matches(alice2.stateMachineArnPattern, own)).toBe(false);
    expect(matches(alice.ruleArnPattern, 'arn:aws:events:eu-west-1:123456789012:rule/mfenv-alice_NightlyFlow')).toBe(true);
    expect(matches(alice.ruleArnPattern, 'arn:aws:events:eu-west-1:123456789012:rule/mfenv-alice-2_NightlyFlow')).toBe(false);
  });

  it('keeps the longest name within IAM, DynamoDB and EventBridge limits with the default prefix, and says when a prefix is too long', () => {
    // prepare
    const longest = `a${'b'.repeat(30)}c`;
    // act
    const names = namesFor(deployment, longest);
    const longPrefix = namesFor({ ...deployment, prefix: 'abcdefghijklmnop' }, longest);
    // assess: IAM roles 64; Metaflow keeps `<prefix>_` whole in rule names of up to 47 characters
    expect(names.sfnRoleName.length).toBeLessThanOrEqual(64);
    expect(names.eventsRoleName.length).toBeLessThanOrEqual(64);
    expect(`${names.sfnStateMachinePrefix}_`.length).toBeLessThanOrEqual(47);
    expect(schedulingPrefixFits(names)).toBe(true);
    expect(schedulingPrefixFits(longPrefix)).toBe(false);
  });

  it('lists the scheduling resources only when scheduling is on', () => {
    // act
    const off = resourcesOf(namesFor(deployment, 'bob'));
    const on = resourcesOf(namesFor(deployment, 'bob'), true);
    // assess
    expect(off).not.toHaveProperty('sfnRoleArn');
    expect(Object.keys(on).filter((key) => !(key in off)).sort()).toEqual(['eventsRoleArn', 'sfnRoleArn', 'sfnStateMachinePrefix', 'sfnTableName']);
  });
});

describe('bucket names and the names S3 reserves', () => {
  it('can never end with a reserved suffix: the last 9 characters are a hyphen and 8 hex digits', () => {
    // prepare: what the last 9 characters of a bucket, or fewer of them, can be
    const hashTail = /^(-[0-9a-f]{8}|[0-9a-f]{0,8})$/;

    // act: the reserved suffixes whose last 9 characters (all of them when shorter) could be such a tail
    const fitting = S3_RESERVED_BUCKET_SUFFIXES.filter((suffix) => hashTail.test(suffix.slice(-9)));

    // assess
    expect(fitting).toEqual([]);
  });

  it.each([
    // Names shaped after each reserved form: none reaches the start (the prefix comes first) or the end (the hash does).
    's3-demo-x',
    'sthree-a',
    'xn-a',
    'amzn-s3-demo-a',
    'a-s3alias',
    'a--ol-s3',
    'a--x-s3',
    'a--table-s3',
    'mrap',
  ])('gives the environment %s a bucket name S3 accepts', (name) => {
    // prepare
    expect(name).toMatch(ENVIRONMENT_NAME_PATTERN);

    // act
    const bucket = namesFor(deployment, name).bucket;

    // assess
    expect(reservedBucketNameForm(bucket)).toBeUndefined();
  });

  it('recognizes every reserved form', () => {
    // act
    const found = [
      ...S3_RESERVED_BUCKET_PREFIXES.map((reserved) => reservedBucketNameForm(`${reserved}abc`)),
      ...S3_RESERVED_BUCKET_SUFFIXES.map((reserved) => reservedBucketNameForm(`abc${reserved}`)),
    ];

    // assess
    expect(found).toEqual([...S3_RESERVED_BUCKET_PREFIXES, ...S3_RESERVED_BUCKET_SUFFIXES]);
  });

  it('starts every environment name with a letter, so no name makes `xn--` after `<prefix>-`', () => {
    // act
    const startsWithHyphen = ENVIRONMENT_NAME_PATTERN.test('-ab');

    // assess
    expect(startsWithHyphen).toBe(false);
  });
});
