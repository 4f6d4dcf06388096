import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { namesFor, resourcesOf } from '../../../lambdas/core/naming';
import {
  accessRolePolicy,
  accessRoleTrustPolicy,
  batchJobLogGroupArn,
  bucketPolicy,
  instanceRolePolicy,
  instanceRoleTrustPolicy,
  jobRolePolicy,
  jobRoleTrustPolicy,
  permissionsBoundaryPolicy,
} from '../../../lambdas/core/policies';
import { SETTING, currentDeployment, settings } from '../../../lambdas/core/settings';

const ACCOUNT = '123456789012';

/** Every name and policy document an environment gets, built as the step handlers build them. */
function everythingBuiltIn(partition: string, region: string) {
  const deployment = { prefix: 'mfenv', accountId: ACCOUNT, region, stackName: 'mfenv', partition };
  const names = namesFor(deployment, 'alice');
  const logGroupArn = batchJobLogGroupArn(region, ACCOUNT, partition);
  // Batch reports the cluster's ARN, in the account's partition.
  const ecsClusterArn = `arn:${partition}:ecs:${region}:${ACCOUNT}:cluster/AWSBatch-mfenv-alice-0123`;
  return {
    names,
    resources: resourcesOf(names),
    logGroupArn,
    jobRoleTrust: jobRoleTrustPolicy(ACCOUNT),
    jobRole: jobRolePolicy(names),
    instanceRoleTrust: instanceRoleTrustPolicy(),
    instanceRole: instanceRolePolicy(ecsClusterArn, logGroupArn),
    accessRoleTrust: accessRoleTrustPolicy({
      owner: `arn:${partition}:sts::${ACCOUNT}:assumed-role/AWSReservedSSO_DataScience_0123456789abcdef/alice`,
      admins: [`arn:${partition}:iam::${ACCOUNT}:role/PlatformAdmin`, `arn:${partition}:iam::${ACCOUNT}:user/bob`],
    }),
    accessRole: accessRolePolicy(names, logGroupArn),
    bucket: bucketPolicy(names, true, { vpcId: 'vpc-0123456789abcdef0', s3EndpointId: 'vpce-0123456789abcdef0', cidr: '10.20.128.0/23' }),
    boundary: permissionsBoundaryPolicy('mfenv', partition, { accountId: ACCOUNT, region }),
  };
}

/** Every ARN in a JSON text: up to the next quote. */
const arnsIn = (text: string) => [...text.matchAll(/arn:[^"]*/g)].map(([arn]) => arn);

describe.each([
  ['aws-us-gov', 'us-gov-west-1'],
  ['aws-cn', 'cn-north-1'],
])('in the %s partition', (partition, region) => {
  it('builds every name and policy without an ARN of the commercial partition', () => {
    // act
    const text = JSON.stringify(everythingBuiltIn(partition, region));

    // assess
    expect(text).not.toContain('arn:aws:');
    const arns = arnsIn(text);
    expect(arns.length).toBeGreaterThan(30);
    expect(arns.filter((arn) => !arn.startsWith(`arn:${partition}:`))).toEqual([]);
  });

  it('writes S3 and IAM ARNs without a region, and the Batch log group with one', () => {
    // act
    const { names, logGroupArn } = everythingBuiltIn(partition, region);

    // assess
    expect(names.bucketArn).toBe(`arn:${partition}:s3:::${names.bucket}`);
    expect(names.jobRoleArn).toBe(`arn:${partition}:iam::${ACCOUNT}:role/mfenv/mfenv-alice-job`);
    expect(names.instanceProfileArn).toBe(`arn:${partition}:iam::${ACCOUNT}:instance-profile/mfenv/mfenv-alice-instance`);
    expect(names.jobQueueArn).toBe(`arn:${partition}:batch:${region}:${ACCOUNT}:job-queue/mfenv-alice`);
    expect(logGroupArn).toBe(`arn:${partition}:logs:${region}:${ACCOUNT}:log-group:/aws/batch/job`);
  });

  it('keeps the service principals of the commercial partition', () => {
    // act
    const { jobRoleTrust, instanceRoleTrust, accessRole } = everythingBuiltIn(partition, region);

    // assess
    expect(jobRoleTrust.Statement[0]!.Principal).toEqual({ Service: 'ecs-tasks.amazonaws.com' });
    expect(instanceRoleTrust.Statement[0]!.Principal).toEqual({ Service: 'ec2.amazonaws.com' });
    expect(JSON.stringify(accessRole)).toContain('"iam:PassedToService":"ecs-tasks.amazonaws.com"');
  });
});

describe('the partition setting', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env[SETTING.prefix] = 'mfenv';
    process.env[SETTING.stackName] = 'mfenv';
    process.env[SETTING.accountId] = ACCOUNT;
    process.env[SETTING.region] = 'us-gov-west-1';
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  it('reaches every name through the current deployment', () => {
    // prepare
    process.env[SETTING.partition] = 'aws-us-gov';

    // act
    const names = namesFor(currentDeployment(), 'alice');

    // assess
    expect(currentDeployment().partition).toBe('aws-us-gov');
    expect(arnsIn(JSON.stringify(resourcesOf(names))).every((arn) => arn.startsWith('arn:aws-us-gov:'))).toBe(true);
  });

  it('is the commercial partition when unset, as in local mode', () => {
    // prepare
    delete process.env[SETTING.partition];

    // act
    const deployment = currentDeployment();

    // assess
    expect(deployment.partition).toBe('aws');
  });

  it.each(['arn:aws', 'AWS', 'aws:', 'gov'])('refuses %j', (value) => {
    // prepare
    process.env[SETTING.partition] = value;

    // act
    const read = () => settings.partition();

    // assess
    expect(read).toThrow(/MFENV_PARTITION must be an AWS partition/);
  });
});

describe('the functions', () => {
  /** The code of every file under lambdas/, comments left out: they show example ARNs. */
  function codeOf(directory: string): { file: string; code: string }[] {
    return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
      const file = path.join(directory, entry.name);
      if (entry.isDirectory()) return codeOf(file);
      if (!entry.name.endsWith('.ts')) return [];
      const code = readFileSync(file, 'utf8')
        // Comments that open a line: `/*` also occurs inside ARN patterns (`…:job/*`).
        .replace(/^\s*\/\*[\s\S]*?\*\//gm, '')
        .replace(/^\s*\/\/.*$/gm, '');
      return [{ file, code }];
    });
  }

  it('write no ARN of the commercial partition', () => {
    // act
    const literal = codeOf(path.resolve(__dirname, '../../../lambdas')).filter(({ code }) => code.includes('arn:aws:'));

    // assess
    expect(literal.map(({ file }) => file)).toEqual([]);
  });
});
