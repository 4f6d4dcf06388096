/**
 * Jest support for tests that run the whole system: local mode (emulator, workflows, API) started on free
 * ports before the file's tests and stopped after them.
 */
import type { LocalMode, LocalModeOptions } from '../../infra/local/runtime';

export function useLocalMode(options: LocalModeOptions = {}) {
  const context = {} as { local: LocalMode };
  beforeAll(async () => {
    // Loaded here, not at the top: the handlers' logger reads POWERTOOLS_LOG_LEVEL once, when first loaded,
    // and a test file sets it in its body, which runs after its imports.
    const { startLocalMode } = await import('../../infra/local/runtime');
    context.local = await startLocalMode({ quiet: true, waitMs: 50, retryMs: 50, ...options });
  }, 180_000);
  afterAll(async () => {
    await context.local?.stop();
  }, 60_000);
  return context;
}
