/**
 * Who is calling, and whom an environment belongs to. API Gateway (AWS_IAM auth) reports the caller's
 * principal ARN; this module turns any principal ARN into the one string an owner is recorded and compared
 * as, and decides who is an admin.
 *
 * The rules (what a teammate "is"):
 * - IAM user `arn:aws:iam::ACCT:user/[path/]alice` → `arn:aws:iam::ACCT:user/alice`. User names are unique
 *   in an account whatever their path, so the path is dropped (an admin may write the owner without it).
 * - A role session `arn:aws:sts::ACCT:assumed-role/Name/session` and the role `arn:aws:iam::ACCT:role/[path/]Name`
 *   → `arn:aws:iam::ACCT:role/Name`. The principal is the role, not the session: session names change with
 *   every login or job (SageMaker, CI, `aws sts assume-role --role-session-name $RANDOM`), and an environment
 *   must not be lost with a session. Everyone who may assume the role shares its environments.
 * - Except IAM Identity Center (SSO) roles, `AWSReservedSSO_<PermissionSet>_<id>`: every member of a
 *   permission set assumes the same role and the session name is the person (their user name), so there the
 *   session IS the principal: `arn:aws:sts::ACCT:assumed-role/AWSReservedSSO_.../alice@example.com`.
 *   Without this exception the whole team would be one owner.
 * - Root `arn:aws:iam::ACCT:root` and federated users `arn:aws:sts::ACCT:federated-user/name` are kept as they are.
 *
 * Admins are listed at deploy time (settings.admins()). An admin entry matches a caller with the same
 * principal; an admin given as a role (`arn:aws:iam::ACCT:role/Path/Name`) also matches every session of that
 * role, SSO sessions included (an "admin" permission set makes all its holders admins).
 */
import * as z from 'zod';
import { UnauthenticatedError } from './errors';

export type PrincipalKind = 'user' | 'role' | 'role-session' | 'root' | 'federated-user' | 'other';

export interface Principal {
  /** The ARN as given. */
  arn: string;
  /** The one string this principal is recorded and compared as (see the rules above). */
  id: string;
  kind: PrincipalKind;
  partition: string;
  accountId: string;
  /** User, role or federated-user name; for a role session, the role's name. */
  name: string;
  /** Role sessions only. */
  session?: string;
}

/** The caller of one API request. */
export interface Caller extends Principal {
  isAdmin: boolean;
  /**
   * The unique id of the user or role behind the request (AIDA…, AROA…), as API Gateway reports it in
   * `requestContext.identity.user` (`AROA…:<session>` for a role session: the part before the colon).
   * A user or role deleted and re-created under the same name gets a new one.
   */
  uniqueId: string | null;
}

/** IAM Identity Center's roles: one per permission set and account, shared by all its members. */
export const IDENTITY_CENTER_ROLE_PREFIX = 'AWSReservedSSO_';

/**
 * An IAM or STS principal ARN: a user, role, role session (assumed-role), federated user or root, in any
 * partition. The one definition of the shape: the `owner` of a create request, the `?owner=` filter, the
 * deploy-time admin list and parsePrincipal below all check it. The resource part takes the characters IAM
 * allows in paths, user, role and session names (`[\w+=,.@-]` and `/`), so it never holds a `:`.
 */
export const PrincipalArn = z.string().regex(/^arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/-]+$/, 'must be an IAM user or role ARN');

/**
 * An admin entry (context mfenv:admins): a user, a role, the account root, or one person's IAM Identity
 * Center session. A session of any other role is refused: its session name is chosen by whoever assumes
 * the role, so naming one would make the whole role admin.
 */
export const AdminArn = PrincipalArn.refine(
  (arn) => {
    const principal = parsePrincipal(arn);
    return principal !== undefined && (principal.kind !== 'role-session' || principal.name.startsWith(IDENTITY_CENTER_ROLE_PREFIX));
  },
  'must be an IAM user or role ARN (a role session only for IAM Identity Center roles, AWSReservedSSO_*: name the role instead)',
);

/** Parses a principal ARN; undefined when it is not an IAM or STS principal ARN at all. */
export function parsePrincipal(arn: string): Principal | undefined {
  const trimmed = arn.trim();
  if (!PrincipalArn.safeParse(trimmed).success) return undefined;
  // arn:<partition>:<service>::<account>:<resource>; the schema leaves no `:` in the resource.
  const [, partition, service, , accountId, resource] = trimmed.split(':') as [string, string, string, string, string, string];
  const parts = resource.split('/');
  const type = parts[0];
  const last = parts.at(-1) ?? '';
  const base = { arn, partition, accountId };

  if (service === 'iam' && resource === 'root') {
    return { ...base, id: `arn:${partition}:iam::${accountId}:root`, kind: 'root', name: 'root' };
  }
  if (service === 'iam' && (type === 'user' || type === 'role') && parts.length >= 2 && last !== '') {
    return { ...base, id: `arn:${partition}:iam::${accountId}:${type}/${last}`, kind: type, name: last };
  }
  if (service === 'sts' && type === 'assumed-role' && parts.length === 3 && parts[1] && parts[2]) {
    const [, roleName, session] = parts as [string, string, string];
    const id = roleName.startsWith(IDENTITY_CENTER_ROLE_PREFIX)
      ? `arn:${partition}:sts::${accountId}:assumed-role/${roleName}/${session}`
      : `arn:${partition}:iam::${accountId}:role/${roleName}`;
    return { ...base, id, kind: 'role-session', name: roleName, session };
  }
  if (service === 'sts' && type === 'federated-user' && parts.length === 2 && parts[1]) {
    return { ...base, id: `arn:${partition}:sts::${accountId}:federated-user/${parts[1]}`, kind: 'federated-user', name: parts[1] };
  }
  return { ...base, id: arn.trim(), kind: 'other', name: last };
}

/** The recorded form of an owner ARN (see the rules above); a string that is no ARN stays as it is. */
export function ownerIdOf(arn: string): string {
  return parsePrincipal(arn)?.id ?? arn;
}

/** Whether the admin entry `admin` (from settings.admins()) covers `principal`. */
export function adminEntryMatches(admin: string, principal: Principal): boolean {
  const entry = parsePrincipal(admin);
  if (!entry) return false;
  if (entry.id === principal.id) return true;
  // An admin role covers every session of it, including Identity Center sessions (whose id is per person).
  return (
    entry.kind === 'role' &&
    principal.kind === 'role-session' &&
    entry.partition === principal.partition &&
    entry.accountId === principal.accountId &&
    entry.name === principal.name
  );
}

export function isAdminPrincipal(principal: Principal, admins: readonly string[]): boolean {
  return admins.some((admin) => adminEntryMatches(admin, principal));
}

/** The principal's own unique id from API Gateway's `identity.user` (`AIDA…`, or `AROA…:<session>` → `AROA…`). */
export function uniqueIdOf(identityUser: string | null | undefined): string | null {
  const id = identityUser?.split(':')[0]?.trim();
  // IAM unique ids are 16 or more letters and digits (the root user reports its 12-digit account id: not one).
  return id && /^[A-Za-z0-9]{16,128}$/.test(id) ? id : null;
}

/**
 * The caller of a request from the principal ARN (and unique id) API Gateway reports; 401 when there is none.
 * `identityUser` is `requestContext.identity.user`.
 */
export function callerFrom(userArn: string | null | undefined, admins: readonly string[], identityUser?: string | null): Caller {
  if (!userArn) {
    throw new UnauthenticatedError(
      'The request carries no caller identity: sign it with AWS Signature Version 4 for the service execute-api ' +
        '(e.g. curl --aws-sigv4 "aws:amz:<region>:execute-api" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY").',
    );
  }
  const principal = parsePrincipal(userArn);
  if (!principal) {
    throw new UnauthenticatedError(
      `The request's caller "${userArn}" is not an IAM principal: call this API with IAM credentials (a user or a role).`,
    );
  }
  return { ...principal, isAdmin: isAdminPrincipal(principal, admins), uniqueId: uniqueIdOf(identityUser) };
}

/** How an environment records its owner: the principal's id (see the rules above) and, when known, its unique id. */
export interface OwnerRef {
  owner: string;
  ownerUniqueId?: string | null;
}

/**
 * Whether `caller` owns an environment recorded with `owner`. When the record holds the owner's unique id,
 * the caller's must match too: a user or role re-created under the same name does not inherit environments.
 * (IAM Identity Center sessions record none: the role is Identity Center's and is re-created at will; the
 * session name, which is the person, is part of the owner id.)
 */
export function owns(caller: Pick<Caller, 'id' | 'uniqueId'>, record: OwnerRef): boolean {
  if (ownerIdOf(record.owner) !== caller.id) return false;
  return !record.ownerUniqueId || record.ownerUniqueId === caller.uniqueId;
}

/** Whether `caller` may see and manage an environment recorded with `owner`. */
export function maySee(caller: Caller, record: OwnerRef): boolean {
  return caller.isAdmin || owns(caller, record);
}

/** The unique id to record for a new environment owned by the caller (none for Identity Center sessions). */
export function ownerUniqueIdOf(caller: Caller): string | null {
  const identityCenter = caller.kind === 'role-session' && caller.name.startsWith(IDENTITY_CENTER_ROLE_PREFIX);
  return identityCenter ? null : caller.uniqueId;
}
