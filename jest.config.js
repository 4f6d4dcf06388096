/**
 * One jest configuration for every layer. TypeScript and the ESM-only middy packages are
 * transformed by swc; the layers are folders under test/ (unit, infra, integration, system, acceptance).
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2023' } }],
  },
  transformIgnorePatterns: ['node_modules/(?!(@middy)/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  // middy 7 publishes only an "import" export condition, which jest's CommonJS resolver skips: point at its
  // entry file directly, and let swc turn that ESM into CommonJS (transformIgnorePatterns below).
  moduleNameMapper: { '^@middy/([a-z-]+)$': '<rootDir>/node_modules/@middy/$1/index.js' },
  // The logger's level is read when it is built, at import: set before any module loads.
  setupFiles: ['<rootDir>/test/support/test-environment.ts'],
  // Each file's temporary folders (synthesized assemblies, bundles) are removed after its tests.
  setupFilesAfterEnv: ['<rootDir>/test/support/remove-scratch.ts'],
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  testTimeout: 60_000,
};
