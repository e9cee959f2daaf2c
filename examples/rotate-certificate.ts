/**
 * Rotate this device's certificate: connect with the current one as the thing, get a new certificate for
 * a key made here, register it with `RotationTemplate` (which attaches it to the same thing), connect
 * with it, and only then switch the files in `outDir`. In your project, import from
 * 'iot-fleet-provisioning'.
 */
import { type RotatedDevice, readDeviceJson, rotate } from '../src/index.js';

/** Where the device keeps its credentials, and the CA of the endpoint (Amazon Root CA 1 on AWS). */
export interface RotationOptions {
  outDir: string;
  caCertificate: string;
}

/** Replace the certificate in `outDir`; the old one stays in use until the new one is proven. */
export async function main({ outDir, caCertificate }: RotationOptions): Promise<RotatedDevice> {
  const device = await readDeviceJson(outDir);
  if (device?.thingName === undefined) throw new Error(`${outDir} holds no provisioned thing`);
  const rotated = await rotate({
    outDir,
    caCertificate,
    templateName: 'RotationTemplate',
    parameters: { ThingName: device.thingName },
    onProgress: (event) => console.error(`rotate: ${event.step}`),
  });
  for (const id of rotated.abandonedCertificateIds) {
    console.error(`certificate ${id} may be ACTIVE but is not used: deactivate it`);
  }
  console.log(
    `thing ${rotated.thingName}: certificate ${rotated.certificateId} replaces ${rotated.previousCertificateId}`,
  );
  return rotated;
}
