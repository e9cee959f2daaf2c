/**
 * Deactivate a thing's previous certificates once it connects with a new one: the function behind an
 * AWS IoT rule on the lifecycle event `$aws/events/presence/connected/+`, whose `clientId` is the thing
 * name (the device policy allows no other) and whose `principalIdentifier` is the certificate id.
 */

/** The fields of a `connected` lifecycle event this function reads. */
export interface ConnectedEvent {
  clientId: string;
  principalIdentifier: string;
}

/** What the function may do in the account (on AWS: ListThingPrincipals and UpdateCertificate). */
export interface Account {
  certificatesOf(thingName: string): Promise<string[]>;
  deactivate(certificateId: string): Promise<void>;
}

/** Deactivate every other certificate attached to the thing; returns their ids. */
export async function deactivatePrevious(event: ConnectedEvent, account: Account): Promise<string[]> {
  const attached = await account.certificatesOf(event.clientId);
  // A connection made with a certificate that is not the thing's (or no thing) changes nothing.
  if (!attached.includes(event.principalIdentifier)) return [];
  const previous = attached.filter((id) => id !== event.principalIdentifier);
  for (const id of previous) await account.deactivate(id);
  return previous;
}
