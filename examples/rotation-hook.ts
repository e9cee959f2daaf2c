/**
 * The pre-provisioning hook of `RotationTemplate`: RegisterThing may attach a new certificate to the thing
 * `ThingName` only when the caller is that thing, that is, when the certificate it connected with is
 * already attached to `ThingName` and its client id is that name. Without this check, any device allowed
 * to use the template could attach a certificate of its own to another device's thing.
 */

/** What AWS IoT sends a pre-provisioning hook (the fields this hook reads). */
export interface HookEvent {
  /** The certificate of the connection that sent RegisterThing: for a rotation, the device's current one. */
  claimCertificateId: string;
  /** The MQTT client id of that connection. */
  clientId?: string;
  /** The RegisterThing parameters. */
  parameters: Record<string, string>;
}

/** The ids of the certificates attached to a thing (none when there is no such thing). */
export type CertificatesOf = (thingName: string) => Promise<string[]>;

/** The hook, given a way to list a thing's certificates (on AWS: ListThingPrincipals). */
export function rotationHook(certificatesOf: CertificatesOf) {
  return async (event: HookEvent): Promise<{ allowProvisioning: boolean }> => {
    const thingName = event.parameters.ThingName;
    if (thingName === undefined || event.clientId !== thingName) return { allowProvisioning: false };
    const attached = await certificatesOf(thingName);
    return { allowProvisioning: attached.includes(event.claimCertificateId) };
  };
}
