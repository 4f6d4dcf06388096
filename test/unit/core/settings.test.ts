import { ConfigurationError } from '../../../lambdas/core/errors';
import { SETTING, settings } from '../../../lambdas/core/settings';

describe('settings', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('reads typed values from the environment at call time', () => {
    // prepare
    process.env[SETTING.subnetIds] = 'subnet-a, subnet-b,';
    process.env[SETTING.maxVcpusCeiling] = '128';
    process.env[SETTING.bucketTlsOnly] = 'false';
    // act + assess
    expect(settings.subnetIds()).toEqual(['subnet-a', 'subnet-b']);
    expect(settings.maxVcpusCeiling()).toBe(128);
    expect(settings.bucketTlsOnly()).toBe(false);
  });

  it('falls back to the documented defaults', () => {
    // prepare
    delete process.env[SETTING.prefix];
    delete process.env[SETTING.spotAllocationStrategy];
    delete process.env[SETTING.admins];
    // act + assess
    expect(settings.prefix()).toBe('mfenv');
    expect(settings.spotAllocationStrategy()).toBe('SPOT_CAPACITY_OPTIMIZED');
    expect(settings.admins()).toEqual([]);
    expect(settings.bucketTlsOnly()).toBe(true);
  });

  it('leaves the Batch service role optional: undefined when unset or empty, the ARN when set', () => {
    // prepare
    const roleArn = 'arn:aws:iam::123456789012:role/batch-service';

    // act
    delete process.env[SETTING.batchServiceRoleArn];
    const unset = settings.batchServiceRoleArn();
    process.env[SETTING.batchServiceRoleArn] = '';
    const empty = settings.batchServiceRoleArn();
    process.env[SETTING.batchServiceRoleArn] = roleArn;
    const set = settings.batchServiceRoleArn();

    // assess
    expect(unset).toBeUndefined();
    expect(empty).toBeUndefined();
    expect(set).toBe(roleArn);
  });

  it('names the variable when a required setting is missing or malformed', () => {
    // prepare
    delete process.env[SETTING.tableName];
    process.env[SETTING.maxEnvironments] = '51';
    process.env[SETTING.spotAllocationStrategy] = 'BEST_FIT';
    // act + assess
    expect(() => settings.tableName()).toThrow(new ConfigurationError('The setting MFENV_TABLE_NAME is missing from this function\'s environment.'));
    expect(() => settings.maxEnvironments()).toThrow(/MFENV_MAX_ENVIRONMENTS must be an integer from 1 to 50/);
    expect(() => settings.spotAllocationStrategy()).toThrow(/SPOT_PRICE_CAPACITY_OPTIMIZED/);
  });

  it('refuses an admin list holding a plain role session, naming the setting', () => {
    // prepare
    process.env[SETTING.admins] = 'arn:aws:iam::123456789012:role/PlatformAdmin, arn:aws:sts::123456789012:assumed-role/PlatformAdmin/ops';
    // act + assess
    expect(() => settings.admins()).toThrow(ConfigurationError);
    expect(() => settings.admins()).toThrow(/MFENV_ADMINS holds "arn:aws:sts::123456789012:assumed-role\/PlatformAdmin\/ops"/);
  });
});
