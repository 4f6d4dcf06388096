/**
 * Routing: which route a request is (method + path pattern), or the 404 / 405 that says why none is.
 * API Gateway already routes by its declared resources and reports the one it chose as `event.resource`;
 * that is trusted first. The path is matched too, so an event from elsewhere (a test, another front door)
 * routes the same way. Local mode's stand-in for API Gateway (infra/local/http-adapter.ts) finds the
 * resource with matchResource below, so both sides map paths to resources by one rule.
 */
import { MethodNotAllowedError, RouteNotFoundError } from '../core/errors';
import type { ApiRequest, ApiResult } from './http';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface Route {
  method: Method;
  /** e.g. /environments/{name}: literal segments and `{parameter}` segments. */
  pattern: string;
  /** The route reads a JSON body (Content-Type checked, body parsed) before its handler runs. */
  jsonBody?: boolean;
  handle(request: ApiRequest): Promise<ApiResult>;
}

export interface RouteMatch {
  route: Route;
  pathParameters: Record<string, string>;
}

function segmentsOf(path: string): string[] {
  const segments = path.split('/').slice(1);
  // A trailing slash names the same resource.
  if (segments.length > 1 && segments.at(-1) === '') segments.pop();
  return segments;
}

/**
 * The `{...}` values when `path` fits `pattern`, else undefined. Values are URL-decoded. The map has no
 * prototype, so no parameter name can collide with an object's built-in properties.
 */
export function matchPattern(pattern: string, path: string): Record<string, string> | undefined {
  const parts = segmentsOf(pattern);
  const segments = segmentsOf(path);
  if (parts.length !== segments.length) return undefined;
  const parameters: Record<string, string> = Object.create(null);
  for (const [index, part] of parts.entries()) {
    const segment = segments[index]!;
    const parameter = /^\{(\w+)\}$/.exec(part);
    if (!parameter) {
      if (part !== segment) return undefined;
      continue;
    }
    if (segment === '') return undefined;
    try {
      parameters[parameter[1]!] = decodeURIComponent(segment);
    } catch {
      // Not valid percent-encoding: keep it as sent, the name check will refuse it with a sentence.
      parameters[parameter[1]!] = segment;
    }
  }
  return parameters;
}

/** Patterns of the table in the order they are declared, without repeats. */
function patternsOf(routes: readonly Pick<Route, 'pattern'>[]): string[] {
  return [...new Set(routes.map((route) => route.pattern))];
}

/** The resource a path names: the first pattern of the table it fits, and its `{...}` values. */
export interface ResourceMatch {
  pattern: string;
  pathParameters: Record<string, string>;
}

/** Which of the routes' patterns `path` fits, in the order they are declared; undefined when none does. */
export function matchResource(routes: readonly Pick<Route, 'pattern'>[], path: string): ResourceMatch | undefined {
  for (const pattern of patternsOf(routes)) {
    const pathParameters = matchPattern(pattern, path);
    if (pathParameters) return { pattern, pathParameters };
  }
  return undefined;
}

/** Where a request went: API Gateway's resource (when it has one) and parameters, and the path called. */
export interface RequestTarget {
  method: string;
  path: string;
  resource?: string | null;
  pathParameters?: Record<string, string | undefined> | null;
}

function definedValues(values: Record<string, string | undefined>): Record<string, string> {
  const defined: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(values)) if (value !== undefined) defined[name] = value;
  return defined;
}

/**
 * The route for this method and resource/path; RouteNotFoundError (404) when no pattern fits,
 * MethodNotAllowedError (405, with the methods to put in Allow) when the pattern fits but not the method.
 */
export function matchRoute(routes: readonly Route[], target: RequestTarget): RouteMatch {
  const patterns = patternsOf(routes);
  let pattern: string | undefined;
  let pathParameters: Record<string, string> | undefined;
  if (target.resource && patterns.includes(target.resource)) {
    // API Gateway chose the resource; its parameters hold even when a custom domain prefixes the path.
    pattern = target.resource;
    pathParameters = definedValues(target.pathParameters ?? matchPattern(target.resource, target.path) ?? {});
  } else {
    const match = matchResource(routes, target.path);
    pattern = match?.pattern;
    pathParameters = match?.pathParameters;
  }
  if (!pattern || !pathParameters) {
    throw new RouteNotFoundError(
      `${target.path} is not a resource of this API: use /environments, /environments/{name} or /environments/{name}/config.`,
    );
  }
  const method = target.method.toUpperCase();
  const route = routes.find((candidate) => candidate.pattern === pattern && candidate.method === method);
  if (!route) {
    const allow = routes.filter((candidate) => candidate.pattern === pattern).map((candidate) => candidate.method);
    throw new MethodNotAllowedError(`${pattern} answers ${allow.join(' and ')}, not ${method}.`, allow);
  }
  return { route, pathParameters };
}
