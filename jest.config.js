// ESM project (@kubernetes/client-node 1.x is ESM-only): ts-jest in ESM mode,
// transpile-only (type checking is `npm run build`'s job, once, not per test file).
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // A directory per run (guest backend choice, kernel report records) and, after jest's own
  // summary, the table of which kernel each kernel-dependent suite ran on (docs/testing.md).
  globalSetup: '<rootDir>/test/support/jest-global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/jest-global-teardown.mjs',
  reporters: ['default', '<rootDir>/test/support/kernel-report-reporter.mjs'],
  testTimeout: 120000,
  // Namespace and FRR tests are heavy; two cores.
  maxWorkers: 2,
  verbose: false,
};
