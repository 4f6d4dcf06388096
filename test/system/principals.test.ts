/**
 * Every kind of caller AWS knows, through local mode's signed HTTP API: not only IAM users but role
 * sessions (temporary credentials with a session token), as people reach AWS through IAM Identity Center
 * and jobs through their roles. Who owns what follows lambdas/core/access.ts: a role's sessions share its
 * environments, an Identity Center session is its person alone, and an admin role's sessions see everyone's.
 */
import type { LocalRole, LocalUser } from '../../infra/local/runtime';
import { useLocalMode } from '../support/local-mode';
import { type ApiClient, apiClient, waitWhile } from '../support/signed-client';

// The handlers log every step; the assertions say what matters here. (Set before local mode loads them.)
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
jest.setTimeout(300_000);

const ACCOUNT = '123456789012';
const ADMIN_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/PlatformAdmin`;
/** The role IAM Identity Center creates for the permission set DataScience, at the path it uses. */
const SSO_ROLE = 'AWSReservedSSO_DataScience_0123456789abcdef';
const SSO_ROLE_PATH = '/aws-reserved/sso.amazonaws.com/';
const local = useLocalMode({ admins: [ADMIN_ROLE_ARN] });
let dataScience: LocalRole;
let identityCenter: LocalRole;
let erin: LocalUser;

beforeAll(async () => {
  dataScience = await local.local.createRole('DataScience');
  identityCenter = await local.local.createRole(SSO_ROLE, { path: SSO_ROLE_PATH });
  await local.local.createRole('PlatformAdmin');
  erin = await local.local.createUser('erin');
}, 60_000);

afterAll(async () => {
  // Workflows a test started but did not wait for end before local mode stops.
  await local.local?.runner.settled();
});

/** The API as one session of a role: a new session (new temporary credentials) each call. */
async function asSessionOf(roleArn: string, sessionName: string): Promise<ApiClient> {
  return apiClient(local.local.apiUrl, await local.local.assumeRole(roleArn, sessionName));
}

describe('callers other than IAM users, through the local HTTP API', () => {
  it("lets a role own an environment: every session of the role shares it, through READY and DELETED; others don't see it", async () => {
    // prepare
    const notebook = await asSessionOf(dataScience.arn, 'notebook');
    const pipeline = await asSessionOf(dataScience.arn, 'pipeline');
    const asErin = apiClient(local.local.apiUrl, erin);
    const roleOwner = `arn:aws:iam::${ACCOUNT}:role/DataScience`;

    // act
    const created = await notebook.post('/environments', { name: 'science' });
    const seenByPipeline = await pipeline.get('/environments/science');
    const seenByErin = await asErin.get('/environments/science');
    const ready = await waitWhile(pipeline, 'science', 'CREATING');

    // assess: the role owns it, not the session that created it
    expect(created.status).toBe(202);
    expect(created.json).toMatchObject({ name: 'science', owner: roleOwner, status: 'CREATING' });
    expect(seenByPipeline).toMatchObject({ status: 200, json: { name: 'science', owner: roleOwner } });
    expect(seenByErin.status).toBe(404);
    expect(ready.json).toMatchObject({ name: 'science', owner: roleOwner, status: 'READY' });
    expect((await pipeline.get('/environments/science/config')).status).toBe(200);
    const listed = await pipeline.get('/environments');
    expect(listed.json.environments.map((environment: { name: string }) => environment.name)).toContain('science');

    // act: another session deletes it
    const deleting = await pipeline.delete('/environments/science');
    const deleted = await waitWhile(notebook, 'science', 'DELETING');

    // assess
    expect(deleting.status).toBe(202);
    expect(deleted.json).toMatchObject({ name: 'science', owner: roleOwner, status: 'DELETED' });
  });

  it("lets each person of an IAM Identity Center permission set own their environments alone", async () => {
    // prepare
    const alice = await asSessionOf(identityCenter.arn, 'alice@example.com');
    const bob = await asSessionOf(identityCenter.arn, 'bob@example.com');
    const aliceAgain = await asSessionOf(identityCenter.arn, 'alice@example.com');
    const aliceOwner = `arn:aws:sts::${ACCOUNT}:assumed-role/${SSO_ROLE}/alice@example.com`;

    // act
    const created = await alice.post('/environments', { name: 'alice-sso' });
    const seenByBob = await bob.get('/environments/alice-sso');
    const bobsList = await bob.get('/environments');
    const seenByAliceLater = await aliceAgain.get('/environments/alice-sso');

    // assess
    expect(created.status).toBe(202);
    expect(created.json).toMatchObject({ name: 'alice-sso', owner: aliceOwner });
    expect(seenByBob.status).toBe(404);
    expect(bobsList.status).toBe(200);
    expect(JSON.stringify(bobsList.json)).not.toContain('alice-sso');
    expect(seenByAliceLater).toMatchObject({ status: 200, json: { name: 'alice-sso', owner: aliceOwner } });
  });

  it("lets every session of an admin role list and read the teammates' environments", async () => {
    // prepare: a role's environment and an Identity Center person's
    const analyst = await asSessionOf(dataScience.arn, 'analyst');
    const carol = await asSessionOf(identityCenter.arn, 'carol@example.com');
    expect((await analyst.post('/environments', { name: 'reports' })).status).toBe(202);
    expect((await carol.post('/environments', { name: 'carol-sso' })).status).toBe(202);
    const admin = await asSessionOf(ADMIN_ROLE_ARN, 'oncall');

    // act
    const listed = await admin.get('/environments');
    const reports = await admin.get('/environments/reports');
    const carols = await admin.get('/environments/carol-sso');

    // assess
    expect(listed.status).toBe(200);
    const environments = listed.json.environments as { name: string; owner: string }[];
    const owners = Object.fromEntries(environments.map((environment) => [environment.name, environment.owner]));
    expect(owners).toMatchObject({
      reports: `arn:aws:iam::${ACCOUNT}:role/DataScience`,
      'carol-sso': `arn:aws:sts::${ACCOUNT}:assumed-role/${SSO_ROLE}/carol@example.com`,
    });
    expect(reports).toMatchObject({ status: 200, json: { name: 'reports', owner: `arn:aws:iam::${ACCOUNT}:role/DataScience` } });
    expect(carols).toMatchObject({ status: 200, json: { name: 'carol-sso' } });
  });
});
