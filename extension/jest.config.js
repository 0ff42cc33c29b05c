// Unit tests cover the pure modules in node, and the panel's widgets in jsdom
// (panel.spec.ts). None imports a JupyterLab package (those ship ES modules):
// the widgets depend on Lumino only, which ships CommonJS.
module.exports = {
  testEnvironment: 'node',
  setupFiles: ['<rootDir>/jest.setup.js'],
  testMatch: ['<rootDir>/src/__tests__/**/*.spec.ts'],
  modulePathIgnorePatterns: ['<rootDir>/dandilab/', '<rootDir>/lib/'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  },
  collectCoverageFrom: ['src/**/*.ts', '!src/index.ts', '!src/actions.ts', '!src/__tests__/**']
};
