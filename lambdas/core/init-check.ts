/**
 * Injected at the top of every Lambda bundle (esbuild `inject`, infra/functions.ts), so it runs while
 * Lambda initializes the function, before the handler module: every setting the function's code reads is
 * read and checked once, and a missing or malformed one fails the init with a ConfigurationError naming its
 * variable, instead of a 500 in the middle of a request. `MFENV_REQUIRED_SETTINGS` (setting names, comma
 * separated) is written into the bundle at build time (esbuild `define`), from what the function's own code
 * reads. Local mode and the tests
 * load the handlers from source, without this file: they set the settings themselves, when they need them.
 */
import { type SettingName, assertSettings } from './settings';

declare const MFENV_REQUIRED_SETTINGS: string;

assertSettings(MFENV_REQUIRED_SETTINGS.split(',').filter((name) => name !== '') as SettingName[]);
