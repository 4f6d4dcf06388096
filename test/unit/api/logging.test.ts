/**
 * The middleware's log keys: every line logged while a request is served names the request, the caller and
 * the route, and none of them stays on the shared logger afterwards (a warm Lambda serves the next caller).
 */
import { handler } from '../../../lambdas/api/handler';
import { logger } from '../../../lambdas/core/logger';
import { apiCaller, userArn } from '../../support/api-events';

/** The JSON lines the logger writes while `act` runs (Powertools writes them to stdout). */
async function logLinesOf(act: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    await act();
  } finally {
    write.mockRestore();
  }
  return lines
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('request log keys', () => {
  beforeAll(() => logger.setLogLevel('INFO'));
  afterAll(() => logger.setLogLevel('SILENT'));

  it('puts requestId, caller and route on the lines of a request, and takes them off afterwards', async () => {
    // prepare
    const alice = apiCaller(handler, userArn('alice'));

    // act
    const during = await logLinesOf(() => alice.send('PUT', '/environments/alice'));
    const after = await logLinesOf(async () => logger.info('unrelated line'));

    // assess
    expect(during).toContainEqual(
      expect.objectContaining({
        message: 'request refused',
        status: 405,
        requestId: expect.stringMatching(/^test-request-/),
        caller: userArn('alice'),
        route: 'PUT /environments/{name}',
      }),
    );
    expect(after).toHaveLength(1);
    expect(after[0]).not.toHaveProperty('requestId');
    expect(after[0]).not.toHaveProperty('caller');
    expect(after[0]).not.toHaveProperty('route');
  });
});
