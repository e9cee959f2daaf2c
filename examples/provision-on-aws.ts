/**
 * Provision one device on AWS IoT: a certificate and key from the service, the thing from the template
 * `FactoryTemplate`, the credentials written to `outDir`; then connect as the device, with its own
 * certificate and its thing name as client id. In your project, import from 'iot-fleet-provisioning'.
 */
import { readFile } from 'node:fs/promises';
import mqtt from 'mqtt';
import { type ProvisionedDevice, parseEndpoint, provision } from '../src/index.js';
import type { Claim } from './claim.js';

/** What this device needs to know about itself. */
export interface DeviceOptions {
  /** Becomes the template parameter `SerialNumber`. */
  serialNumber: string;
  /** Where the credentials go. */
  outDir: string;
}

/** Provision this device, connect with its new certificate, and return what the service made. */
export async function main(claim: Claim, device: DeviceOptions): Promise<ProvisionedDevice> {
  const provisioned = await provision({
    ...claim,
    templateName: 'FactoryTemplate',
    parameters: { SerialNumber: device.serialNumber },
    outDir: device.outDir,
    onProgress: (event) => console.error(`provision: ${event.step}`),
  });
  const { thingName, files } = provisioned;
  if (thingName === undefined || files?.privateKey === undefined)
    throw new Error('expected a thing and a key');
  console.log(`thing ${thingName}, certificate ${provisioned.certificateId}, files in ${files.directory}`);

  // From now on the device is itself: its own certificate, and the policy FactoryTemplate attached.
  const { protocol, host, port, alpnProtocols } = parseEndpoint(claim.endpoint);
  const connection = await mqtt.connectAsync({
    protocol,
    host,
    port,
    ALPNProtocols: alpnProtocols, // x-amzn-mqtt-ca on port 443
    clientId: thingName,
    cert: await readFile(files.certificate, 'utf8'),
    key: await readFile(files.privateKey, 'utf8'),
    ca: claim.caCertificate,
    reconnectPeriod: 0,
  });
  await connection.publishAsync(
    `devices/${thingName}/hello`,
    JSON.stringify({ serialNumber: device.serialNumber }),
    { qos: 1 },
  );
  await connection.endAsync();
  return provisioned;
}
