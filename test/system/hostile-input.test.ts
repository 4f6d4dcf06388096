/**
 * Names a caller chooses, spelled like the built-in properties of a JavaScript object (`__proto__`,
 * `constructor`, `toString`, ...), in query parameters, headers, JSON bodies and paths, through local mode's
 * signed HTTP API and the real handler. Each answer is a clean one: a 2xx, or a 4xx problem document that says
 * what is wrong; never a 5xx, never a name taken for an object's own machinery.
 */
import type { LocalUser } from '../../infra/local/runtime';
import { useLocalMode } from '../support/local-mode';
import { type RawRequest, type RawResponse, rawRequest } from '../support/raw-request';

process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';

const context = useLocalMode();
let caller: LocalUser;

beforeAll(async () => {
  caller = await context.local.createUser('mallory');
});

/** Names that are properties of every plain object (or of Object.prototype). */
const BUILT_IN_NAMES = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  '__lookupSetter__',
];

type Case = [string, RawRequest, number, string?];

const CASES: Case[] = [
  // Query parameters: not parameters of the route → 400 naming them.
  ...BUILT_IN_NAMES.map((name): Case => [`?${name}= on GET /environments`, { method: 'GET', path: '/environments', query: [[name, '1']] }, 400, 'validation']),
  ['?__proto__= on DELETE', { method: 'DELETE', path: '/environments/nobody-here', query: [['__proto__', 'x']] }, 400, 'validation'],
  ['?constructor= twice', { method: 'GET', path: '/environments', query: [['constructor', '1'], ['constructor', '2']] }, 400, 'validation'],
  ['?owner=constructor', { method: 'GET', path: '/environments', query: [['owner', 'constructor']] }, 400, 'validation'],
  ['?purge=__proto__', { method: 'DELETE', path: '/environments/nobody-here', query: [['purge', '__proto__']] }, 400, 'validation'],
  // Headers: passed on, ignored by routes that do not read them.
  ...['constructor', '__proto__', 'valueOf', 'toString', 'hasOwnProperty'].map(
    (name): Case => [`header ${name}: x on GET /environments`, { method: 'GET', path: '/environments', headers: [[name, 'x']] }, 200],
  ),
  ['Content-Type: constructor', { method: 'POST', path: '/environments', headers: [['content-type', 'constructor']], body: '{"name":"abc"}' }, 415, 'unsupported-media-type'],
  // JSON bodies (sent as application/json) whose members are named like built-ins: not fields of the request → 400.
  ['body member __proto__', { method: 'POST', path: '/environments', body: '{"name":"proto-body","__proto__":{"isAdmin":true}}' }, 400, 'validation'],
  ['body member constructor', { method: 'POST', path: '/environments', body: '{"constructor":{"name":"x"}}' }, 400, 'validation'],
  ['body member toString', { method: 'POST', path: '/environments', body: '{"name":"abc","toString":"x"}' }, 400, 'validation'],
  ['body that is __proto__ alone', { method: 'POST', path: '/environments', body: '{"__proto__":null}' }, 400, 'validation'],
  // Environment names in the path: a valid name that exists nowhere → 404; not a name → 400.
  ['GET /environments/constructor', { method: 'GET', path: '/environments/constructor' }, 404, 'environment-not-found'],
  ['GET /environments/__proto__', { method: 'GET', path: '/environments/__proto__' }, 400, 'validation'],
  ['GET /environments/%5F%5Fproto%5F%5F', { method: 'GET', path: '/environments/%5F%5Fproto%5F%5F' }, 400, 'validation'],
  ['GET /environments/hasownproperty/config', { method: 'GET', path: '/environments/hasownproperty/config' }, 404, 'environment-not-found'],
  ['DELETE /environments/valueof', { method: 'DELETE', path: '/environments/valueof' }, 404, 'environment-not-found'],
  // A create with hostile header names and an Idempotency-Key spelled like one, and its replay: the same answer.
  [
    'POST with header __proto__ and Idempotency-Key: constructor',
    { method: 'POST', path: '/environments', headers: [['__proto__', 'x'], ['idempotency-key', 'constructor']], body: '{"name":"tostring","maxVcpus":1,"gpu":false}' },
    202,
  ],
  [
    'the same POST again (a replay)',
    { method: 'POST', path: '/environments', headers: [['__proto__', 'x'], ['idempotency-key', 'constructor']], body: '{"name":"tostring","maxVcpus":1,"gpu":false}' },
    202,
  ],
];

describe('names spelled like built-in object properties', () => {
  const answers: [string, RawResponse][] = [];

  it(`sends ${CASES.length} such requests, signed`, async () => {
    // act
    for (const [label, request] of CASES) answers.push([label, await rawRequest(context.local.apiUrl, caller, request)]);

    // assess
    expect(answers).toHaveLength(CASES.length);
    expect(CASES.length).toBeGreaterThanOrEqual(21);
  });

  it.each(CASES.map(([label, , status, type], index) => [label, index, status, type] as const))(
    'answers %s cleanly',
    (_label, index, status, type) => {
      // act
      const [, response] = answers[index]!;

      // assess
      expect(response.status).toBe(status);
      if (status >= 400) {
        expect(response.headers['content-type']).toBe('application/problem+json');
        expect(response.json).toMatchObject({ type: `urn:mfenv:problem:${type}`, status, detail: expect.any(String) });
      } else {
        expect(response.headers['content-type']).toBe('application/json');
      }
    },
  );

  it('answers the replayed create with the stored answer', () => {
    // act
    const [first, replay] = answers.slice(-2).map(([, response]) => response);

    // assess
    expect(replay!.headers['idempotent-replayed']).toBe('true');
    expect(replay!.json).toEqual(first!.json);
    expect(first!.json).toMatchObject({ name: 'tostring', owner: caller.arn, spec: { maxVcpus: 1, gpu: false } });
  });

  it('names the offending query parameter and body member in errors[]', () => {
    // act
    const byLabel = new Map(answers);

    // assess
    expect(byLabel.get('?__proto__= on GET /environments')!.json.errors).toEqual([{ field: '__proto__', message: expect.stringContaining('not accepted') }]);
    expect(byLabel.get('body member __proto__')!.json.errors).toEqual([{ field: '__proto__', message: expect.stringContaining('not accepted') }]);
  });
});
