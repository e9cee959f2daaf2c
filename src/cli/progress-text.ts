/**
 * provision()'s progress events in words, the same for `provision` and `demo`. Events never carry a
 * secret; the text names ids, paths and endpoints only.
 */
import type { KeyType } from '../device/keys.js';
import type { ProgressEvent } from '../provision/types.js';

const KEY_NAMES: Record<KeyType, string> = {
  'ec-p256': 'EC P-256',
  'ec-p384': 'EC P-384',
  'rsa-2048': 'RSA 2048',
  'rsa-3072': 'RSA 3072',
};

/** The step's name, padded, and what happened. */
export function describeProgress(event: ProgressEvent): { step: string; text: string } {
  switch (event.step) {
    case 'key':
      return {
        step: 'key',
        text: `made an ${KEY_NAMES[event.keyType]} key pair and a CSR here; the private key never leaves this machine`,
      };
    case 'connecting':
      return {
        step: 'connecting',
        text: `connecting to ${event.endpoint} ${
          event.endpoint.startsWith('mqtt://')
            ? 'over plain MQTT (no TLS: no certificate presented, nothing encrypted)'
            : 'with the claim certificate'
        }${event.attempt > 1 ? ` (connection ${event.attempt})` : ''}`,
      };
    case 'subscribed':
      return { step: 'subscribed', text: 'subscribed to the accepted/rejected topics' };
    case 'certificate':
      return { step: 'certificate', text: `certificate issued, id ${event.certificateId}` };
    case 'staged':
      return { step: 'staged', text: `key and certificate on disk in ${event.directory} (not live yet)` };
    case 'registered':
      return {
        step: 'registered',
        text:
          event.thingName === undefined
            ? 'RegisterThing accepted (the template makes no thing)'
            : `RegisterThing accepted: thing ${event.thingName}, certificate activated`,
      };
    case 'abandoned':
      return {
        step: 'abandoned',
        text: `certificate ${event.certificateId} may be ACTIVE but will not be used (${event.reason}): deactivate it in AWS`,
      };
    case 'resuming':
      return {
        step: 'resuming',
        text:
          event.state === 'registered'
            ? `finishing certificate ${event.certificateId}, registered by an earlier run: saving it`
            : `finishing certificate ${event.certificateId}, issued by an earlier run: retrying RegisterThing`,
      };
    case 'saved':
      return { step: 'saved', text: `credentials saved in ${event.files.directory}` };
    case 'verified':
      return {
        step: 'verified',
        text: event.accepted
          ? 'reconnected with the new certificate: the broker accepted it'
          : 'reconnected with the new certificate: the broker REFUSED it',
      };
    case 'retrying':
      return {
        step: 'retrying',
        text: `${event.operation === 'certificate' ? 'the certificate request' : event.operation} failed with ${event.code}; try ${event.attempt} in ${event.delayMs} ms`,
      };
  }
}

/** `  certificate  certificate issued, id …`: a step as one aligned line. */
export function progressLine(event: ProgressEvent): string {
  const { step, text } = describeProgress(event);
  return `${step.padEnd(12)}${text}`;
}
