/**
 * Deploy-time settings: what cdk.json and `-c` may say, and the sentence a wrong value gets. A bad value
 * must stop the synth before anything reaches CloudFormation.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { CONTEXT, ConfigError, DEFAULT_CONFIG, longestAccessRoleTrust, readConfig, reservedBucketPrefixFor } from '../../infra/config';
import { SETTING, settings } from '../../lambdas/core/settings';
import { scratchDir } from '../support/scratch';
import { PROJECT_ROOT, cdkJsonContext } from './synth';

const reader = (context: Record<string, unknown>) => ({ tryGetContext: (key: string) => context[key] });

describe('readConfig', () => {
  it('reads the defaults from cdk.json', () => {
    // prepare
    const context = cdkJsonContext();

    // act
    const config = readConfig(reader(context));

    // assess
    expect(config).toEqual(DEFAULT_CONFIG);
  });

  it('defaults to what the functions themselves read when a setting is not given', () => {
    // prepare: a function's environment without the settings that have defaults
    const saved = { ...process.env };
    const names = ['prefix', 'stackName', 'maxVcpusCeiling', 'maxEnvironments', 'maxEnvironmentsPerOwner', 'spotAllocationStrategy', 'admins', 'batchServiceRoleArn', 'deletedRecordRetentionDays', 'batchContainerRegistry'] as const;
    for (const name of names) delete process.env[SETTING[name]];

    // act
    const config = readConfig(reader({}));
    let functionsRead: Record<string, unknown>;
    try {
      functionsRead = Object.fromEntries(names.map((name) => [name, settings[name]()]));
    } finally {
      process.env = saved;
    }

    // assess
    expect(functionsRead).toEqual({
      prefix: config.prefix,
      stackName: config.stackName,
      maxVcpusCeiling: config.maxVcpusCeiling,
      maxEnvironments: config.maxEnvironments,
      maxEnvironmentsPerOwner: config.maxEnvironmentsPerOwner,
      spotAllocationStrategy: config.spotAllocationStrategy,
      admins: config.admins,
      batchServiceRoleArn: config.batchServiceRoleArn,
      deletedRecordRetentionDays: config.deletedRecordRetentionDays,
      batchContainerRegistry: config.batchContainerRegistry,
    });
  });

  it('accepts command-line strings for numbers and lists (cdk -c key=value)', () => {
    // prepare
    const context = {
      [CONTEXT.maxVcpusCeiling]: '256',
      [CONTEXT.admins]: 'arn:aws:iam::123456789012:role/PlatformAdmin, arn:aws:iam::123456789012:user/alice',
      [CONTEXT.availabilityZones]: '["eu-west-1a","eu-west-1b","eu-west-1c"]',
      [CONTEXT.spotAllocationStrategy]: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      [CONTEXT.organizationId]: 'o-abcd123456',
    };

    // act
    const config = readConfig(reader(context));

    // assess
    expect(config.maxVcpusCeiling).toBe(256);
    expect(config.admins).toEqual(['arn:aws:iam::123456789012:role/PlatformAdmin', 'arn:aws:iam::123456789012:user/alice']);
    expect(config.availabilityZones).toEqual(['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    expect(config.spotAllocationStrategy).toBe('SPOT_PRICE_CAPACITY_OPTIMIZED');
    expect(config.organizationId).toBe('o-abcd123456');
  });

  it.each([
    [CONTEXT.spotAllocationStrategy, 'BEST_FIT', /SPOT_CAPACITY_OPTIMIZED, SPOT_PRICE_CAPACITY_OPTIMIZED/],
    [CONTEXT.prefix, 'mf-team', /no hyphen/],
    [CONTEXT.prefix, 'MFENV', /lower-case/],
    // Buckets `sthree-<name>-<hash>`, and `amzn-s3-demo-x-<hash>` for the environment `s3-demo-x`.
    [CONTEXT.prefix, 'sthree', /"sthree-", a start of bucket names reserved by S3/],
    [CONTEXT.prefix, 'amzn', /"amzn-s3-demo-", a start of bucket names reserved by S3/],
    [CONTEXT.prefix, 'xn', /reserved by S3/],
    [CONTEXT.maxEnvironments, 51, /from 1 to 50/],
    [CONTEXT.maxVcpusCeiling, '12.5', /whole number/],
    [CONTEXT.admins, ['alice'], /IAM user or role ARN/],
    [CONTEXT.admins, '["arn:aws:iam::123456789012:user/alice"', /not valid JSON/],
    [CONTEXT.organizationId, 'my-org', /o-abcd123456/],
    [CONTEXT.vpcId, 'default', /vpc-0123456789abcdef0/],
    [CONTEXT.availabilityZones, ['us-east-1a'], /at least two/],
    [CONTEXT.batchServiceRoleArn, 'AWSServiceRoleForBatch', /IAM role ARN/],
    // A plain role session's name is chosen by whoever assumes the role: naming one would make the whole role admin.
    [CONTEXT.admins, ['arn:aws:sts::123456789012:assumed-role/PlatformAdmin/ops'], /name the role/],
    [CONTEXT.callerPrincipalArns, ['DataScience'], /ARN pattern/],
    [CONTEXT.callerPrincipalArns, ['arn:aws:s3:::mfenv-*'], /ARN pattern/],
    [CONTEXT.callerPrincipalTag, 'team', /key=value/],
    [CONTEXT.networkIsolation, 'yes', /true or false/],
    // Metaflow writes `<registry>/<image>`: a scheme or a trailing slash would make an image name Docker cannot pull.
    [CONTEXT.batchContainerRegistry, 'https://public.ecr.aws/docker/library', /registry host and path without a scheme/],
    [CONTEXT.batchContainerRegistry, 'public.ecr.aws/docker/library/', /registry host and path without a scheme/],
    [CONTEXT.environmentSubnetRange, '10.20.128.0', /IPv4 range/],
    [CONTEXT.environmentSubnetRange, '10.20.128.0/26', /smaller than one \/23/],
    // 8 blocks of /23 cannot serve the default 40 environments.
    [CONTEXT.environmentSubnetRange, '10.20.128.0/20', /holds 8 blocks of \/23, fewer than mfenv:maxEnvironments \(40\)/],
  ])('refuses %s = %j with a sentence naming the key', (key, value, expected) => {
    // prepare
    const context = { [key]: value };

    // act
    const read = () => readConfig(reader(context));

    // assess
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(key);
    expect(read).toThrow(expected);
  });

  it('accepts an IAM Identity Center session as an admin (one person), and reads the caller narrowing', () => {
    // prepare
    const sso = 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/ops@example.com';
    const context = {
      [CONTEXT.admins]: [sso],
      [CONTEXT.callerPrincipalArns]: 'arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_*',
      [CONTEXT.callerPrincipalTag]: 'team=data-science',
    };

    // act
    const config = readConfig(reader(context));

    // assess
    expect(config.admins).toEqual([sso]);
    expect(config.callerPrincipalArns).toEqual(['arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_*']);
    expect(config.callerPrincipalTag).toEqual({ key: 'team', value: 'data-science' });
  });

  it('refuses caller patterns that would lock an admin out of the API', () => {
    // prepare
    const context = {
      [CONTEXT.admins]: ['arn:aws:iam::123456789012:role/PlatformAdmin'],
      [CONTEXT.callerPrincipalArns]: ['arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*'],
    };

    // act
    const read = () => readConfig(reader(context));

    // assess
    expect(read).toThrow(/admits none of these admins: arn:aws:iam::123456789012:role\/PlatformAdmin/);
  });

  it('accepts prefixes that only resemble a reserved bucket-name start', () => {
    // prepare: close to a reserved start, but `<prefix>-` neither begins one nor is begun by one
    const near = ['sthre', 'sthree3', 'amz', 'amzns3', 'xnx', 'sthreex'];

    // act
    const prefixes = near.map((prefix) => readConfig(reader({ [CONTEXT.prefix]: prefix })).prefix);

    // assess
    expect(prefixes).toEqual(near);
    expect(near.map(reservedBucketPrefixFor)).toEqual(near.map(() => undefined));
  });

  it("refuses so many admins that an access role's trust policy could pass IAM's 2,048 characters", () => {
    // prepare
    const few = Array.from({ length: 3 }, (_, index) => `arn:aws:iam::123456789012:role/PlatformAdmin${index}`);
    const many = Array.from({ length: 12 }, (_, index) => `arn:aws:iam::123456789012:role/PlatformAdministrators${index}`);

    // act
    const readFew = () => readConfig(reader({ [CONTEXT.admins]: few }));
    const readMany = () => readConfig(reader({ [CONTEXT.admins]: many }));

    // assess
    expect(readFew).not.toThrow();
    expect(longestAccessRoleTrust(few)).toBeLessThanOrEqual(2048);
    expect(readMany).toThrow(/over IAM's limit of 2048/);
  });

  it('turns network isolation on by default, with the range the created VPC sets aside; an imported VPC must name its range', () => {
    // act
    const defaults = readConfig(reader({}));
    const imported = () => readConfig(reader({ [CONTEXT.vpcId]: 'vpc-0123456789abcdef0' }));
    const importedOff = readConfig(reader({ [CONTEXT.vpcId]: 'vpc-0123456789abcdef0', [CONTEXT.networkIsolation]: 'false' }));

    // assess
    expect(defaults.networkIsolation).toBe(true);
    expect(defaults.environmentSubnetRange).toBe('10.20.128.0/17');
    expect(imported).toThrow(/mfenv:environmentSubnetRange is needed with mfenv:vpcId/);
    expect(importedOff.networkIsolation).toBe(false);
  });

  it('refuses a per-teammate quota above the account-wide one', () => {
    // prepare
    const context = { [CONTEXT.maxEnvironments]: 3, [CONTEXT.maxEnvironmentsPerOwner]: 5 };

    // act
    const read = () => readConfig(reader(context));

    // assess
    expect(read).toThrow(/mfenv:maxEnvironmentsPerOwner \(5\) is larger than mfenv:maxEnvironments \(3\)/);
  });

  it('refuses zones together with an existing VPC, whose subnets decide the zones', () => {
    // prepare
    const context = { [CONTEXT.vpcId]: 'vpc-0123456789abcdef0', [CONTEXT.availabilityZones]: ['us-east-1a', 'us-east-1b'] };

    // act
    const read = () => readConfig(reader(context));

    // assess
    expect(read).toThrow(/Remove one of the two/);
  });
});

describe('the idle-expiry settings', () => {
  it('are off by default, with a grace of 3 days, as the functions read them when unset', () => {
    // prepare
    const saved = { ...process.env };
    delete process.env[SETTING.idleExpiryDays];
    delete process.env[SETTING.idleExpiryGraceDays];

    // act
    const config = readConfig(reader({}));
    let functionsRead: number[];
    try {
      functionsRead = [settings.idleExpiryDays(), settings.idleExpiryGraceDays()];
    } finally {
      process.env = saved;
    }

    // assess
    expect([config.idleExpiryDays, config.idleExpiryGraceDays]).toEqual([0, 3]);
    expect(functionsRead).toEqual([0, 3]);
  });

  it.each([
    [{ [CONTEXT.idleExpiryDays]: 14 }, [14, 3]],
    [{ [CONTEXT.idleExpiryDays]: '365', [CONTEXT.idleExpiryGraceDays]: '90' }, [365, 90]],
    [{ [CONTEXT.idleExpiryDays]: 1, [CONTEXT.idleExpiryGraceDays]: 1 }, [1, 1]],
    [{ [CONTEXT.idleExpiryDays]: 0, [CONTEXT.idleExpiryGraceDays]: 7 }, [0, 7]],
  ])('accept %j', (context, expected) => {
    // act
    const config = readConfig(reader(context));

    // assess
    expect([config.idleExpiryDays, config.idleExpiryGraceDays]).toEqual(expected);
  });

  it.each([
    [CONTEXT.idleExpiryDays, 366, /mfenv:idleExpiryDays is 366; it must be a whole number from 0 to 365/],
    [CONTEXT.idleExpiryDays, -1, /from 0 to 365/],
    [CONTEXT.idleExpiryDays, '1.5', /from 0 to 365/],
    [CONTEXT.idleExpiryDays, 'soon', /from 0 to 365/],
    [CONTEXT.idleExpiryGraceDays, 0, /mfenv:idleExpiryGraceDays is 0; it must be a whole number from 1 to 90/],
    [CONTEXT.idleExpiryGraceDays, 91, /from 1 to 90/],
  ])('refuse %s = %j at synth', (key, value, sentence) => {
    // prepare
    const context = { [CONTEXT.idleExpiryDays]: 14, [key]: value };

    // act
    const read = () => readConfig(reader(context));

    // assess
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(sentence);
  });
});

describe('cdk synth with a wrong setting', () => {
  it('stops with the sentence and exit status 1, not a stack trace', () => {
    // prepare: the CDK CLI hands context to the app in CDK_CONTEXT_JSON.
    const context = { ...cdkJsonContext(), [CONTEXT.spotAllocationStrategy]: 'CHEAPEST' };

    // act
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'infra/app.ts')], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, CDK_CONTEXT_JSON: JSON.stringify(context), CDK_OUTDIR: scratchDir('synth') },
    });

    // assess
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(
      'mfenv: Context mfenv:spotAllocationStrategy is "CHEAPEST"; it must be one of SPOT_CAPACITY_OPTIMIZED, SPOT_PRICE_CAPACITY_OPTIMIZED.',
    );
  });
});
