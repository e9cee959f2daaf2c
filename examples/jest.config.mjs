// jest.config.mjs: jest for a TypeScript project whose tests import iot-fleet-provisioning, which is
// ESM only (as is the broker inside its simulator). Run jest with
//   node --experimental-vm-modules node_modules/jest/bin/jest.js
// and install: npm i -D jest @jest/globals ts-jest typescript
export default {
  testEnvironment: 'node',
  // Load test files as ES modules, compiled by ts-jest.
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      {
        useESM: true,
        tsconfig: {
          module: 'es2022',
          moduleResolution: 'bundler',
          target: 'es2022',
          isolatedModules: true,
          esModuleInterop: true,
        },
      },
    ],
  },
  // `import './x.js'` in TypeScript sources means ./x.ts.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // Starting the simulator makes its CA; provisioning with RSA keys takes a few seconds under load.
  testTimeout: 20_000,
};
