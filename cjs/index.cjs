'use strict';
/**
 * require('iot-fleet-provisioning') from CommonJS. The package is ESM; Node 20.19+ and 22.12+ load
 * an ES module from require(), and this hands it over. Where require() cannot (older Node, or
 * --no-experimental-require-module), it fails with what to do instead of a bare ERR_REQUIRE_ESM.
 */
try {
  module.exports = require('../dist/index.js');
} catch (error) {
  const code = error !== null && typeof error === 'object' ? error.code : undefined;
  if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw error;
  throw new Error(
    "iot-fleet-provisioning: this package is ESM: use import() from CommonJS, e.g. `const { provision } = await import('iot-fleet-provisioning')`. Node's own require() loads it from Node 20.19 and 22.12 on; jest needs node --experimental-vm-modules.",
    { cause: error },
  );
}
