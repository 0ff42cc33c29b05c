// Unit tests cover the pure modules (api.ts, model.ts). They import no
// JupyterLab package (those ship ES modules), so plain ts-jest in node suffices.
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/src/__tests__/**/*.spec.ts'],
  modulePathIgnorePatterns: ['<rootDir>/dandilab/', '<rootDir>/lib/'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  },
  collectCoverageFrom: ['src/api.ts', 'src/model.ts']
};
