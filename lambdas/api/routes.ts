/**
 * The route table of DESIGN §4: method + path pattern → a thin handler that reads the request, calls the
 * environments service (lambdas/core/environments.ts, where every rule lives) and shapes the answer.
 */
import * as z from 'zod';
import { PrincipalArn } from '../core/access';
import { type EnvironmentRecord, type EnvironmentResource, toEnvironmentResource } from '../core/environment';
import {
  createEnvironment,
  deleteEnvironment,
  getConfigFor,
  getEnvironmentFor,
  listEnvironmentsFor,
  progressOf,
  updateEnvironment,
} from '../core/environments';
import { parseOrThrow } from '../core/validation';
import { type ApiRequest, jsonResult } from './http';
import { idempotencyKeyOf, withIdempotency } from './idempotency';
import type { Route } from './router';

/** Seconds a client should wait before polling an environment that is being created or deleted. */
export const RETRY_AFTER_SECONDS = 10;

const locationOf = (name: string) => `/environments/${name}`;

const QUERY = {
  none: z.object({}).strict(),
  // An owner filter is a principal ARN, checked like the `owner` of a create request.
  list: z.object({ owner: PrincipalArn.optional() }).strict(),
  delete: z
    .object({ purge: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false').transform((value) => value === 'true') })
    .strict(),
};

function queryOf<S extends z.ZodType>(request: ApiRequest, schema: S, allowed: readonly string[]): z.output<S> {
  return parseOrThrow(schema, request.query, { what: 'The query', where: 'query', allowed });
}

/** The `{name}` of the path, as sent (the service checks it). */
const nameOf = (request: ApiRequest) => request.pathParameters.name ?? '';

/** The environment as answered, with the progress of its workflow while one runs. */
const resourceOf = async (record: EnvironmentRecord): Promise<EnvironmentResource> => toEnvironmentResource(record, await progressOf(record));

export const ROUTES: readonly Route[] = [
  {
    method: 'POST',
    pattern: '/environments',
    jsonBody: true,
    handle: async (request) => {
      queryOf(request, QUERY.none, []);
      return withIdempotency(request.caller, idempotencyKeyOf(request.headers), request.body, async () => {
        const record = await createEnvironment(request.caller, request.body);
        // No progress: the workflow has only just been started, and this answer is stored for replay to a
        // retried request, when it would be stale.
        return jsonResult(202, toEnvironmentResource(record), {
          Location: locationOf(record.name),
          'Retry-After': String(RETRY_AFTER_SECONDS),
        });
      });
    },
  },
  {
    method: 'GET',
    pattern: '/environments',
    handle: async (request) => {
      const { owner } = queryOf(request, QUERY.list, ['owner']);
      const records = await listEnvironmentsFor(request.caller, { owner });
      return jsonResult(200, { environments: await Promise.all(records.map(resourceOf)) });
    },
  },
  {
    method: 'GET',
    pattern: '/environments/{name}',
    handle: async (request) => {
      queryOf(request, QUERY.none, []);
      return jsonResult(200, await resourceOf(await getEnvironmentFor(request.caller, nameOf(request))));
    },
  },
  {
    method: 'DELETE',
    pattern: '/environments/{name}',
    handle: async (request) => {
      const { purge } = queryOf(request, QUERY.delete, ['purge']);
      const { record } = await deleteEnvironment(request.caller, nameOf(request), { purge });
      const pending = record.status === 'DELETING';
      return jsonResult(202, await resourceOf(record), {
        Location: locationOf(record.name),
        ...(pending ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {}),
      });
    },
  },
  {
    method: 'PATCH',
    pattern: '/environments/{name}',
    jsonBody: true,
    handle: async (request) => {
      queryOf(request, QUERY.none, []);
      const name = nameOf(request);
      // The key covers the environment too: the same body sent to two environments is two requests.
      return withIdempotency(request.caller, idempotencyKeyOf(request.headers), { patch: name, body: request.body }, async () => {
        const { record, started } = await updateEnvironment(request.caller, name, request.body);
        // Started: 202 like POST, and no progress (the answer may be stored for replay). Otherwise it is done: 200.
        if (!started) return jsonResult(200, await resourceOf(record));
        return jsonResult(202, toEnvironmentResource(record), {
          Location: locationOf(record.name),
          'Retry-After': String(RETRY_AFTER_SECONDS),
        });
      });
    },
  },
  {
    method: 'GET',
    pattern: '/environments/{name}/config',
    handle: async (request) => {
      queryOf(request, QUERY.none, []);
      const name = nameOf(request);
      // Exactly the file Metaflow reads; the name it is saved under is the profile it is selected with.
      return jsonResult(200, await getConfigFor(request.caller, name), {
        'Content-Disposition': `attachment; filename="config_${name}.json"`,
      });
    },
  },
];
