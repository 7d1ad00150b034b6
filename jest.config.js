/** Jest runs the TypeScript sources as native ESM (p-limit and p-retry are ESM-only). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  testTimeout: 60000,
  // One test file at a time: the end-to-end tests measure rates and timings over loopback,
  // which a second worker competing for this machine's two cores would distort.
  maxWorkers: 1,
};
