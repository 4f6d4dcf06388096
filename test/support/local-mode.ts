/**
 * Jest support for tests that run the whole system: local mode (emulator, workflows, API) started on free
 * ports before the file's tests and stopped after them.
 */
import { type LocalMode, type LocalModeOptions, startLocalMode } from '../../infra/local/runtime';

export function useLocalMode(options: LocalModeOptions = {}) {
  const context = {} as { local: LocalMode };
  beforeAll(async () => {
    context.local = await startLocalMode({ quiet: true, waitMs: 50, retryMs: 50, ...options });
  }, 180_000);
  afterAll(async () => {
    await context.local?.stop();
  }, 60_000);
  return context;
}
