/**
 * What every example needs to reach the service: the endpoint and the claim credentials, as PEM text.
 * On AWS they come from files (see docs/guides/provision-on-aws.md); in tests, from the simulator.
 * In your project, import from 'iot-fleet-provisioning' instead of '../src/index.js'.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The endpoint and the claim credentials. */
export interface Claim {
  /** `abc123-ats.iot.eu-west-1.amazonaws.com` (from `aws iot describe-endpoint --endpoint-type iot:Data-ATS`). */
  endpoint: string;
  /** The claim certificate, PEM. */
  claimCertificate: string;
  /** The claim certificate's private key, PEM. */
  claimPrivateKey: string;
  /** The CA that signs the endpoint's certificate: Amazon Root CA 1, PEM. */
  caCertificate: string;
}

/**
 * Read the claim credentials from `directory`, under the names AWS's console and CLI use in the guides:
 * `claim.pem.crt`, `claim.private.pem.key` and `AmazonRootCA1.pem`.
 */
export async function readClaim(directory: string, endpoint: string): Promise<Claim> {
  const read = (name: string) => readFile(join(directory, name), 'utf8');
  return {
    endpoint,
    claimCertificate: await read('claim.pem.crt'),
    claimPrivateKey: await read('claim.private.pem.key'),
    caCertificate: await read('AmazonRootCA1.pem'),
  };
}
