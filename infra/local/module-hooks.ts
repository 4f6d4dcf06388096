/**
 * Lets this CommonJS project `require` packages published for `import` only (middy 7 is one): on AWS the
 * handlers are esbuild bundles and never resolve packages at run time, but local mode loads the same
 * handler sources directly into Node. A package whose exports map offers no entry for `require` is
 * resolved again with the `import` condition; Node 24 can then require the ES module it points to.
 * jest resolves modules itself (moduleNameMapper in jest.config.js does the same there) and refuses hooks
 * on Node's loader, so where registering is refused, the host's own resolver is left to do it.
 */
import { registerHooks } from 'node:module';

let registered = false;

export function allowRequireOfImportOnlyPackages(): void {
  if (registered) return;
  registered = true;
  try {
    registerHooks({
      resolve(specifier, context, nextResolve) {
        try {
          return nextResolve(specifier, context);
        } catch (error) {
          if ((error as { code?: string }).code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw error;
          return nextResolve(specifier, { ...context, conditions: [...(context.conditions ?? []), 'import'] });
        }
      },
    });
  } catch {
    // A sandboxed loader (jest) that resolves modules its own way.
  }
}
