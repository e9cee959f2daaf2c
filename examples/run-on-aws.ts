/**
 * Run the provisioning example against your AWS account. The test suite type-checks this file but does
 * not run it (it would need your account); it runs `main` against the simulator instead.
 */
import { readClaim } from './claim.js';
import { main } from './provision-on-aws.js';

const claim = await readClaim('./claim', 'abc123-ats.iot.eu-west-1.amazonaws.com');
await main(claim, { serialNumber: 'SN-0042', outDir: './credentials' });
