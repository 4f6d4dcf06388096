/**
 * Runs before every test file's modules load (jest setupFiles): the one logger is built at import, so its
 * level must be in the environment first. Tests see warnings and errors; a test about INFO lines sets the
 * level itself (test/unit/api/logging.test.ts). A file or a shell may still choose another level.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
