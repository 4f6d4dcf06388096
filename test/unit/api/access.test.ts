import { AdminArn, adminEntryMatches, callerFrom, maySee, ownerIdOf, ownerUniqueIdOf, owns, parsePrincipal } from '../../../lambdas/core/access';
import { UnauthenticatedError } from '../../../lambdas/core/errors';

const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '210987654321';
const SSO_ROLE = 'AWSReservedSSO_DataScientist_0123456789abcdef';

describe('principal ids (what an owner is recorded as)', () => {
  it.each([
    ['an IAM user', `arn:aws:iam::${ACCOUNT}:user/alice`, `arn:aws:iam::${ACCOUNT}:user/alice`],
    ['an IAM user with a path', `arn:aws:iam::${ACCOUNT}:user/team/alice`, `arn:aws:iam::${ACCOUNT}:user/alice`],
    ['a role', `arn:aws:iam::${ACCOUNT}:role/DataScience`, `arn:aws:iam::${ACCOUNT}:role/DataScience`],
    ['a role with a path', `arn:aws:iam::${ACCOUNT}:role/teams/ml/DataScience`, `arn:aws:iam::${ACCOUNT}:role/DataScience`],
    ['a role session', `arn:aws:sts::${ACCOUNT}:assumed-role/DataScience/job-42`, `arn:aws:iam::${ACCOUNT}:role/DataScience`],
    [
      'an Identity Center session (the session is the person)',
      `arn:aws:sts::${ACCOUNT}:assumed-role/${SSO_ROLE}/alice@example.com`,
      `arn:aws:sts::${ACCOUNT}:assumed-role/${SSO_ROLE}/alice@example.com`,
    ],
    ['the account root', `arn:aws:iam::${ACCOUNT}:root`, `arn:aws:iam::${ACCOUNT}:root`],
    ['a federated user', `arn:aws:sts::${ACCOUNT}:federated-user/carol`, `arn:aws:sts::${ACCOUNT}:federated-user/carol`],
    ['a GovCloud role session', `arn:aws-us-gov:sts::${ACCOUNT}:assumed-role/Ops/x`, `arn:aws-us-gov:iam::${ACCOUNT}:role/Ops`],
  ])('records %s as one id', (_case, arn, id) => {
    // act
    const recorded = ownerIdOf(arn);
    // assess
    expect(recorded).toBe(id);
  });

  it('gives every session of one role the same id, and two Identity Center users different ids', () => {
    // act
    const sessions = ['a', 'b'].map((session) => ownerIdOf(`arn:aws:sts::${ACCOUNT}:assumed-role/DataScience/${session}`));
    const people = ['alice', 'bob'].map((person) => ownerIdOf(`arn:aws:sts::${ACCOUNT}:assumed-role/${SSO_ROLE}/${person}`));
    // assess
    expect(sessions[0]).toBe(sessions[1]);
    expect(people[0]).not.toBe(people[1]);
  });

  it('does not take non-principal ARNs for principals', () => {
    // act + assess
    expect(parsePrincipal('alice')).toBeUndefined();
    expect(parsePrincipal(`arn:aws:s3:::${ACCOUNT}-bucket`)).toBeUndefined();
    expect(parsePrincipal(`arn:aws:iam::12345:user/alice`)).toBeUndefined();
  });
});

describe('admin matching', () => {
  const session = (role: string, name: string, account = ACCOUNT) => parsePrincipal(`arn:aws:sts::${account}:assumed-role/${role}/${name}`)!;

  it('lets an admin role with a path match callers arriving as sessions of that role', () => {
    // prepare
    const admin = `arn:aws:iam::${ACCOUNT}:role/platform/PlatformAdmin`;
    // act + assess
    expect(adminEntryMatches(admin, session('PlatformAdmin', 'anyone'))).toBe(true);
    expect(adminEntryMatches(admin, parsePrincipal(`arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`)!)).toBe(true);
  });

  it('lets an admin Identity Center role match all of its users, and a single SSO session only that user', () => {
    // prepare
    const adminRole = `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/${SSO_ROLE}`;
    const adminPerson = `arn:aws:sts::${ACCOUNT}:assumed-role/${SSO_ROLE}/alice@example.com`;
    // act + assess
    expect(adminEntryMatches(adminRole, session(SSO_ROLE, 'bob@example.com'))).toBe(true);
    expect(adminEntryMatches(adminPerson, session(SSO_ROLE, 'alice@example.com'))).toBe(true);
    expect(adminEntryMatches(adminPerson, session(SSO_ROLE, 'bob@example.com'))).toBe(false);
  });

  it('does not match another role, another account, a user of the same name, or garbage', () => {
    // prepare
    const admin = `arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`;
    // act + assess
    expect(adminEntryMatches(admin, session('PlatformAdminish', 'x'))).toBe(false);
    expect(adminEntryMatches(admin, session('PlatformAdmin', 'x', OTHER_ACCOUNT))).toBe(false);
    expect(adminEntryMatches(admin, parsePrincipal(`arn:aws:iam::${ACCOUNT}:user/PlatformAdmin`)!)).toBe(false);
    expect(adminEntryMatches('not-an-arn', parsePrincipal(`arn:aws:iam::${ACCOUNT}:user/PlatformAdmin`)!)).toBe(false);
  });

  it('matches an admin user exactly, whatever path either side writes', () => {
    // act + assess
    expect(adminEntryMatches(`arn:aws:iam::${ACCOUNT}:user/ops/root-of-all`, parsePrincipal(`arn:aws:iam::${ACCOUNT}:user/root-of-all`)!)).toBe(true);
    expect(adminEntryMatches(`arn:aws:iam::${ACCOUNT}:user/alice`, parsePrincipal(`arn:aws:iam::${ACCOUNT}:user/bob`)!)).toBe(false);
  });
});

describe('callers and ownership', () => {
  it('refuses a request without a caller, or with one that is no IAM principal, as unauthenticated', () => {
    // act + assess
    expect(() => callerFrom(undefined, [])).toThrow(UnauthenticatedError);
    expect(() => callerFrom(null, [])).toThrow(/--aws-sigv4/);
    expect(() => callerFrom('anonymous', [])).toThrow(UnauthenticatedError);
  });

  it('marks admins from the admin list', () => {
    // act
    const admin = callerFrom(`arn:aws:sts::${ACCOUNT}:assumed-role/PlatformAdmin/ops`, [`arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`]);
    const teammate = callerFrom(`arn:aws:iam::${ACCOUNT}:user/alice`, [`arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`]);
    // assess
    expect(admin.isAdmin).toBe(true);
    expect(teammate.isAdmin).toBe(false);
  });

  it('compares the role, not the session, for role sessions; and lets admins see everything', () => {
    // prepare
    const owner = `arn:aws:iam::${ACCOUNT}:role/DataScience`;
    const laterSession = callerFrom(`arn:aws:sts::${ACCOUNT}:assumed-role/DataScience/monday`, []);
    const stranger = callerFrom(`arn:aws:iam::${ACCOUNT}:user/mallory`, []);
    const admin = callerFrom(`arn:aws:iam::${ACCOUNT}:user/ops`, [`arn:aws:iam::${ACCOUNT}:user/ops`]);
    // act + assess
    expect(owns(laterSession, { owner })).toBe(true);
    expect(maySee(laterSession, { owner })).toBe(true);
    expect(owns(stranger, { owner })).toBe(false);
    expect(maySee(stranger, { owner })).toBe(false);
    expect(owns(admin, { owner })).toBe(false);
    expect(maySee(admin, { owner })).toBe(true);
  });

  it('reads the unique id API Gateway reports, and refuses a re-created principal of the same name', () => {
    // prepare
    const owner = `arn:aws:iam::${ACCOUNT}:user/alice`;
    const record = { owner, ownerUniqueId: 'AIDAALICEORIGINAL01' };
    const alice = callerFrom(owner, [], 'AIDAALICEORIGINAL01');
    const recreated = callerFrom(owner, [], 'AIDAALICERECREATED1');
    const session = callerFrom(`arn:aws:sts::${ACCOUNT}:assumed-role/DataScience/monday`, [], 'AROADATASCIENCE0001:monday');
    // act + assess
    expect(alice.uniqueId).toBe('AIDAALICEORIGINAL01');
    expect(session.uniqueId).toBe('AROADATASCIENCE0001');
    expect(callerFrom(owner, [], '123456789012').uniqueId).toBeNull();
    expect(owns(alice, record)).toBe(true);
    expect(owns(recreated, record)).toBe(false);
    expect(maySee(recreated, record)).toBe(false);
    // An environment recorded without a unique id (created by an admin for the teammate) is owned by name.
    expect(owns(recreated, { owner, ownerUniqueId: null })).toBe(true);
  });

  it('records no unique id for an IAM Identity Center session (the role is re-created by Identity Center)', () => {
    const sso = callerFrom(
      `arn:aws:sts::${ACCOUNT}:assumed-role/AWSReservedSSO_DataScience_0123456789abcdef/carol@example.com`,
      [],
      'AROASSO0000000000001:carol@example.com',
    );
    const user = callerFrom(`arn:aws:iam::${ACCOUNT}:user/alice`, [], 'AIDAALICEORIGINAL01');
    expect(ownerUniqueIdOf(sso)).toBeNull();
    expect(ownerUniqueIdOf(user)).toBe('AIDAALICEORIGINAL01');
  });
});

describe('admin entries', () => {
  it.each([
    [`arn:aws:iam::${ACCOUNT}:user/ops`, true],
    [`arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`, true],
    [`arn:aws:iam::${ACCOUNT}:root`, true],
    [`arn:aws:sts::${ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/ops@example.com`, true],
    [`arn:aws:sts::${ACCOUNT}:assumed-role/PlatformAdmin/ops`, false],
    ['PlatformAdmin', false],
  ])('%s is an admin entry: %s', (entry, accepted) => {
    expect(AdminArn.safeParse(entry).success).toBe(accepted);
  });
});
