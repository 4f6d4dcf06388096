/**
 * Jest support for every layer that talks to AWS: one moto server per test file, bootstrapped like the
 * CDK stack, with process.env holding the settings the handlers read. Tests call handlers in-process;
 * the handlers call the emulator over HTTP through the ordinary SDK.
 */
import { resetClients } from '../../lambdas/core/clients';
import { bootstrapEmulator, type LocalBootstrap, type LocalBootstrapOptions, emulatorClientConfig } from '../../infra/local/bootstrap';
import { type Emulator, startEmulator } from '../../infra/local/emulator';

export interface EmulatorContext {
  emulator: Emulator;
  bootstrap: LocalBootstrap;
  /** SDK client options for the emulator's root, for assertions and fault injection. */
  clientConfig: ReturnType<typeof emulatorClientConfig>;
}

/**
 * Starts the emulator before the file's tests and stops it after. `fresh()` (call it in beforeEach if
 * tests must not see each other) resets it and bootstraps again.
 */
export function useEmulator(options: LocalBootstrapOptions = {}) {
  const saved = { ...process.env };
  const context = {} as EmulatorContext;

  async function bootstrap() {
    context.bootstrap = await bootstrapEmulator(context.emulator.endpoint, options);
    context.clientConfig = emulatorClientConfig(context.emulator.endpoint);
    Object.assign(process.env, context.bootstrap.env);
    resetClients();
  }

  beforeAll(async () => {
    context.emulator = await startEmulator({ quiet: true });
    await bootstrap();
  }, 120_000);

  afterAll(async () => {
    await context.emulator?.stop();
    process.env = saved;
    resetClients();
  });

  return {
    context,
    /** Clears every resource in the emulator and bootstraps again. */
    async fresh() {
      await context.emulator.reset();
      await bootstrap();
    },
  };
}
