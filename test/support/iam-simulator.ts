/**
 * Offline IAM policy evaluation for tests, on @cloud-copilot/iam-simulate.
 *
 * That package is AGPL: it is a devDependency and is only ever imported from test/, never from lambdas/ or
 * infra/, so nothing that ships links it.
 *
 * The simulator evaluates what it is given and nothing more: it does not derive the request context from
 * the principal. Real AWS requests carry `aws:PrincipalArn`, `aws:userid`, `aws:PrincipalAccount` and
 * friends, and the trust policies under test condition on exactly those keys, so the caller helpers below
 * (asUser, asRoleSession, asIdentityCenterSession, asRoot) build them the way AWS does. A test that left
 * them out would see every conditional statement fail to match and mistake that for a working deny.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/** Any IAM policy document (the simulator validates it and reports what is wrong). */
export type Policy = object;

/** Who makes a request: the principal ARN AWS authenticates, and the context keys AWS attaches for it. */
export interface Caller {
  principal: string;
  context: Record<string, string>;
}

export interface SimulationRequest {
  /** Identity policies of the principal (one document, or several attached together). */
  identity?: Policy | readonly Policy[];
  /** The principal's permissions boundary; undefined means it has none. */
  boundary?: Policy;
  /** The resource's policy: a role trust policy for sts:AssumeRole, a bucket policy, an API policy... */
  resourcePolicy?: Policy;
  action: string;
  principal: string;
  /** One concrete resource ARN, or `*` for actions that take no resource. */
  resource: string;
  /**
   * The account that owns the resource. Defaults to the account in the resource ARN; S3 ARNs have none,
   * so S3 requests must say it.
   */
  resourceAccount?: string;
  /** Request context keys (the caller's, plus any the action adds, like iam:PassedToService). */
  context: Record<string, string | string[]>;
}

/** Raised when the simulator could not evaluate the request: a broken test, never a deny. */
export class SimulationError extends Error {
  constructor(
    message: string,
    readonly details: unknown,
  ) {
    super(message);
    this.name = 'SimulationError';
  }
}

const accountOfArn = (arn: string): string | undefined => arn.split(':')[4] || undefined;

/**
 * Evaluates one request the way IAM would and returns the decision.
 *
 * Throws (rather than returning a deny) when the simulator reports errors, when it ran more than one
 * evaluation (a wildcard in the resource), or when it discarded context keys the test supplied: in each of
 * those cases the answer would not be about the request the test describes.
 */
export async function simulate(request: SimulationRequest): Promise<Decision> {
  const resourceAccount = request.resourceAccount ?? accountOfArn(request.resource) ?? accountOfArn(request.principal);
  if (!resourceAccount) throw new SimulationError(`No account is known for the resource ${request.resource}; pass resourceAccount.`, request);
  const identity = request.identity === undefined ? [] : Array.isArray(request.identity) ? request.identity : [request.identity];
  const simulation: Simulation = {
    identityPolicies: identity.map((policy, index) => ({ name: `identity-${index + 1}`, policy })),
    permissionBoundaryPolicies: request.boundary ? [{ name: 'boundary', policy: request.boundary }] : undefined,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: request.resourcePolicy,
    request: {
      action: request.action,
      principal: request.principal,
      resource: { accountId: resourceAccount, resource: request.resource },
      contextVariables: request.context,
    },
  };
  const outcome = await runSimulation(simulation, {});
  const describe = `${request.principal} → ${request.action} on ${request.resource}`;
  if (outcome.resultType === 'error') {
    throw new SimulationError(`The simulator rejected ${describe}: ${JSON.stringify(outcome.errors)}`, outcome.errors);
  }
  if (outcome.resultType !== 'single') {
    throw new SimulationError(`${describe} ran as a ${outcome.resultType} simulation: name one concrete resource.`, outcome);
  }
  const ignored = outcome.result.ignoredContextKeys ?? [];
  if (ignored.length > 0) {
    throw new SimulationError(`The simulator ignored the context keys ${ignored.join(', ')} for ${describe}.`, outcome);
  }
  return outcome.result.analysis.result;
}

/** The STS/IAM partition and account a caller lives in. */
interface Where {
  accountId: string;
  partition?: string;
}

/** IAM paths are `/` or `/a/b/`; accept them with or without the slashes. */
const normalizedPath = (path = '/'): string => {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed ? `/${trimmed}/` : '/';
};

/**
 * An IAM user's request: the principal is the user's ARN (with its path), `aws:userid` is the user's
 * unique id (AIDA…).
 */
export function asUser(user: Where & { name: string; uniqueId: string; path?: string }): Caller {
  const partition = user.partition ?? 'aws';
  const arn = `arn:${partition}:iam::${user.accountId}:user${normalizedPath(user.path)}${user.name}`;
  return {
    principal: arn,
    context: {
      'aws:PrincipalArn': arn,
      'aws:userid': user.uniqueId,
      'aws:username': user.name,
      'aws:PrincipalAccount': user.accountId,
      'aws:PrincipalType': 'User',
    },
  };
}

/**
 * A request made with a role session's credentials. The principal is the session
 * (`assumed-role/<name>/<session>`, no path), but `aws:PrincipalArn` is the ROLE's ARN with its path,
 * and `aws:userid` is `<role unique id>:<session name>`.
 */
export function asRoleSession(role: Where & { name: string; uniqueId: string; session: string; path?: string }): Caller {
  const partition = role.partition ?? 'aws';
  return {
    principal: `arn:${partition}:sts::${role.accountId}:assumed-role/${role.name}/${role.session}`,
    context: {
      'aws:PrincipalArn': `arn:${partition}:iam::${role.accountId}:role${normalizedPath(role.path)}${role.name}`,
      'aws:userid': `${role.uniqueId}:${role.session}`,
      'aws:PrincipalAccount': role.accountId,
      'aws:PrincipalType': 'AssumedRole',
    },
  };
}

/**
 * A person signed in through IAM Identity Center: a session of the permission set's role
 * `/aws-reserved/sso.amazonaws.com/[region/]AWSReservedSSO_<set>_<suffix>`, named after the user.
 * Newer accounts put the Identity Center region in the path, older ones do not.
 */
export function asIdentityCenterSession(
  sso: Where & { permissionSet: string; suffix: string; userName: string; roleUniqueId: string; region?: string },
): Caller {
  return asRoleSession({
    accountId: sso.accountId,
    partition: sso.partition,
    name: `AWSReservedSSO_${sso.permissionSet}_${sso.suffix}`,
    path: `/aws-reserved/sso.amazonaws.com/${sso.region ? `${sso.region}/` : ''}`,
    uniqueId: sso.roleUniqueId,
    session: sso.userName,
  });
}

/** The account's root user: its ARN is `:root` and its `aws:userid` is the account id. */
export function asRoot(where: Where): Caller {
  const arn = `arn:${where.partition ?? 'aws'}:iam::${where.accountId}:root`;
  return {
    principal: arn,
    context: {
      'aws:PrincipalArn': arn,
      'aws:userid': where.accountId,
      'aws:PrincipalAccount': where.accountId,
      'aws:PrincipalType': 'Account',
    },
  };
}

/**
 * An AWS service acting on the account's behalf (ecs-tasks.amazonaws.com assuming a task role...). AWS sets
 * `aws:SourceAccount` (and `aws:SourceArn` when there is one) to the resource the service acts for.
 */
export function asService(service: { principal: string; sourceAccount: string; sourceArn?: string }): Caller {
  return {
    principal: service.principal,
    context: {
      'aws:SourceAccount': service.sourceAccount,
      ...(service.sourceArn ? { 'aws:SourceArn': service.sourceArn } : {}),
    },
  };
}
