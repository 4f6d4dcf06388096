/**
 * `npm start` reads the deploy-time settings from the environment with the functions' own readers: the same
 * defaults and ranges as a deployed function, a wrong value refused at start with the variable named.
 */
import { LocalSettingError, localAdmins, localSettings } from '../../../infra/local/start';

const ACCOUNT = '123456789012';

describe('local mode settings', () => {
  it('takes the stack defaults when nothing is set', () => {
    // act
    const settings = localSettings({});

    // assess
    expect(settings).toEqual({
      maxVcpusCeiling: 64,
      maxEnvironments: 40,
      maxEnvironmentsPerOwner: 2,
      spotAllocationStrategy: 'SPOT_CAPACITY_OPTIMIZED',
      deletedRecordRetentionDays: 30,
    });
  });

  it('reads every setting from its variable, an empty one counting as unset', () => {
    // prepare
    const env = {
      MFENV_MAX_VCPUS_CEILING: '16',
      MFENV_MAX_ENVIRONMENTS: ' 5 ',
      MFENV_MAX_ENVIRONMENTS_PER_OWNER: '1',
      MFENV_SPOT_ALLOCATION_STRATEGY: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      MFENV_DELETED_RECORD_RETENTION_DAYS: '',
    };

    // act
    const settings = localSettings(env);

    // assess
    expect(settings).toEqual({
      maxVcpusCeiling: 16,
      maxEnvironments: 5,
      maxEnvironmentsPerOwner: 1,
      spotAllocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      deletedRecordRetentionDays: 30,
    });
  });

  it.each([
    ['MFENV_MAX_VCPUS_CEILING', 'lots', /MFENV_MAX_VCPUS_CEILING must be an integer from 1 to 10000 \(it is "lots"\)$/],
    ['MFENV_MAX_ENVIRONMENTS', '51', /MFENV_MAX_ENVIRONMENTS must be an integer from 1 to 50 \(it is "51"\)$/],
    ['MFENV_MAX_ENVIRONMENTS_PER_OWNER', '0', /MFENV_MAX_ENVIRONMENTS_PER_OWNER must be an integer from 1 to 50 \(it is "0"\)$/],
    ['MFENV_MAX_ENVIRONMENTS_PER_OWNER', '1.5', /MFENV_MAX_ENVIRONMENTS_PER_OWNER must be an integer/],
    ['MFENV_SPOT_ALLOCATION_STRATEGY', 'BEST_FIT', /MFENV_SPOT_ALLOCATION_STRATEGY must be one of SPOT_CAPACITY_OPTIMIZED, SPOT_PRICE_CAPACITY_OPTIMIZED/],
    ['MFENV_DELETED_RECORD_RETENTION_DAYS', '-1', /MFENV_DELETED_RECORD_RETENTION_DAYS must be an integer from 1 to 3650/],
  ])('refuses %s=%s, naming the variable', (name, value, message) => {
    // act + assess
    expect(() => localSettings({ [name]: value })).toThrow(LocalSettingError);
    expect(() => localSettings({ [name]: value })).toThrow(message);
  });

  it("leaves the process's own environment as it was", () => {
    // prepare
    const before = { ...process.env };

    // act
    localSettings({ MFENV_MAX_ENVIRONMENTS: '3' });
    expect(() => localSettings({ MFENV_MAX_ENVIRONMENTS: 'x' })).toThrow();

    // assess
    expect(process.env).toEqual(before);
  });
});

describe('local mode admins', () => {
  it('turns plain user names into the users local mode creates, and keeps ARNs', () => {
    // act
    const { admins, userNames } = localAdmins(` dana, arn:aws:iam::${ACCOUNT}:role/PlatformAdmin ,`, ACCOUNT);

    // assess
    expect(admins).toEqual([`arn:aws:iam::${ACCOUNT}:user/dana`, `arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`]);
    expect(userNames).toEqual(['dana']);
  });

  it('has no admins when unset', () => {
    // act + assess
    expect(localAdmins(undefined, ACCOUNT)).toEqual({ admins: [], userNames: [] });
  });

  it.each([
    [`arn:aws:sts::${ACCOUNT}:assumed-role/DataScience/alice`, /MFENV_ADMINS holds "arn:aws:sts::123456789012:assumed-role\/DataScience\/alice"/],
    ['two words', /MFENV_ADMINS holds "two words", which is neither an IAM user name nor an admin principal ARN/],
    ['arn:aws:s3:::bucket', /MFENV_ADMINS holds "arn:aws:s3:::bucket"/],
  ])('refuses %s', (entry, message) => {
    // act + assess
    expect(() => localAdmins(entry, ACCOUNT)).toThrow(message);
  });
});
