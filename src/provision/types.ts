/**
 * What provision() takes and gives: its options, the key source, the progress events and the device it
 * made. plan.ts checks the options; provision.ts runs the flow.
 */
import type { CredentialFiles } from '../device/credentials.js';
import type { KeyType } from '../device/keys.js';
import type { MqttTransport } from '../mqtt/transport.js';
import type { PayloadFormat } from '../protocol/topics.js';
import type { RetryOptions } from './retry.js';

/**
 * Where the device's key comes from:
 * - `'server'` (default): CreateKeysAndCertificate; AWS makes the key and sends it over the connection.
 * - `'generate'` or `{ generate: type }`: the key is made here (EC P-256 by default), a CSR goes to
 *   CreateCertificateFromCsr, and the key never leaves the device.
 * - `{ csr }`: your own CSR (PEM), for a key kept in a secure element or HSM; no key is returned.
 */
export type KeySource =
  | 'server'
  | 'generate'
  | {
      /** The key type to make on the device. */
      generate: KeyType;
    }
  | {
      /** Your CSR, PEM (`-----BEGIN CERTIFICATE REQUEST-----`). */
      csr: string;
    };

/** A step of provision(), reported to `onProgress`. Never carries a secret. */
export type ProgressEvent =
  | {
      /** A key pair was made on the device. */
      step: 'key';
      /** Its type. */
      keyType: KeyType;
    }
  | {
      /** Connecting with the claim certificate (with rotate(): the device's current certificate). */
      step: 'connecting';
      /** The endpoint as a URL. */
      endpoint: string;
      /** 1 for the first connection, more after a retry. */
      attempt: number;
    }
  | {
      /** Both answer-topic pairs are subscribed (SUBACK received). */
      step: 'subscribed';
      /** The connection attempt this happened on. */
      attempt: number;
    }
  | {
      /** The device has its certificate, checked against its key or CSR. */
      step: 'certificate';
      /** The new certificate's id. */
      certificateId: string;
    }
  | {
      /** Key and certificate are on disk, not yet at the final paths. */
      step: 'staged';
      /** The credentials directory. */
      directory: string;
    }
  | {
      /**
       * A certificate that may be ACTIVE will not be used (RegisterThing's outcome was unknown and its
       * token was then refused, or an unfinished set could not be resumed). Also listed in the result's
       * `abandonedCertificateIds`; deactivate it in AWS (see docs/credentials.md).
       */
      step: 'abandoned';
      /** The certificate's id. */
      certificateId: string;
      /** Why, in a few words (never a secret). */
      reason: string;
    }
  | {
      /** An unfinished set left by an earlier run in `outDir` is being finished. */
      step: 'resuming';
      /** Its certificate's id. */
      certificateId: string;
      /** How far it had got: `issued` (RegisterThing is retried) or `registered` (only the commit is left). */
      state: 'issued' | 'registered';
    }
  | {
      /** RegisterThing accepted. */
      step: 'registered';
      /** The thing made, or undefined when the template makes none. */
      thingName: string | undefined;
    }
  | {
      /** The credentials are at their final paths. */
      step: 'saved';
      /** Their paths. */
      files: CredentialFiles;
    }
  | {
      /** Reconnected with the new certificate (`verify: true`). */
      step: 'verified';
      /** Whether the broker accepted it. */
      accepted: boolean;
    }
  | {
      /** A retryable failure: trying again after a backoff. */
      step: 'retrying';
      /** What failed: `certificate`, `RegisterThing` or `save`. */
      operation: string;
      /** The number of the try about to start (2 for the first retry). */
      attempt: number;
      /** The backoff before it, in ms. */
      delayMs: number;
      /** The error code that caused the retry (`REJECTED`, `TIMEOUT`, `CONNECTION_LOST`, `PERSIST_FAILED`). */
      code: string;
    };

/** What provision() takes. */
export interface ProvisionOptions {
  /** AWS IoT data endpoint: `abc123-ats.iot.eu-west-1.amazonaws.com`, `mqtts://host:443`, `mqtt://127.0.0.1:1883`. */
  endpoint?: string;
  /** The claim certificate, PEM. Required with `endpoint` over TLS. */
  claimCertificate?: string;
  /** The claim certificate's private key, PEM. */
  claimPrivateKey?: string;
  /** The CA that signs the server certificate (Amazon Root CA 1 for AWS), PEM. Default: Node's roots. */
  caCertificate?: string;
  /** An already connected mqtt.js client to use instead; provision() leaves it open. */
  client?: MqttTransport;
  /** MQTT client id of the claim connection. Default: unique per call. */
  clientId?: string;
  /** MQTT protocol version of the connections provision() opens: 4 (3.1.1, default) or 5. */
  protocolVersion?: 4 | 5;
  /** The provisioning template. */
  templateName: string;
  /** Template parameters (a flat map of strings). */
  parameters?: Record<string, string>;
  /** Where the key comes from. Default `'server'`. */
  keys?: KeySource;
  /** Subject of a generated CSR. Default `CN=AWS IoT Device`. */
  csrSubject?: string;
  /** Payload format. Default `'json'`. */
  format?: PayloadFormat;
  /** Deadline of each operation and of each connection attempt. Default 30 000 ms. */
  timeoutMs?: number;
  /** Cancels everything; provision() then rejects with `ABORTED`. */
  signal?: AbortSignal;
  /**
   * Write the credentials here (docs/credentials.md): a directory kept at mode 0700. An existing one
   * this user owns is tightened to 0700; one owned by another user is refused (`PERSIST_FAILED`) before
   * any traffic.
   */
  outDir?: string;
  /**
   * With `outDir`, what to do when it already holds credentials. `'reuse'` (default): a complete set made
   * for the same endpoint, template and parameters is returned as it is (`reused: true`) without any
   * traffic, so a device can call provision() on every boot; a set that is incomplete or made for
   * something else is an `INVALID_ARGUMENT` error naming what differs. `'replace'`: provision anew.
   */
  existing?: 'reuse' | 'replace';
  /** Called at each step. An exception it throws becomes a process warning; the run goes on. */
  onProgress?: (event: ProgressEvent) => void;
  /** Retries of 429, 5xx, timeouts and lost connections; `false` for none. */
  retry?: RetryOptions | false;
  /** Reconnect with the new certificate afterwards and report whether the broker accepted it. */
  verify?: boolean;
  /**
   * Allow plain `mqtt://` to a host that is not this machine. Without it, plaintext is refused unless
   * the host is a loopback address: the device's new private key and ownership token would cross the
   * network unencrypted. With it, a warning is emitted (`process.emitWarning`).
   */
  insecure?: boolean;
}

/** The device provision() made. */
export interface ProvisionedDevice {
  /** Absent when the template creates no thing. */
  thingName?: string;
  /** RegisterThing's `deviceConfiguration` (the template's `DeviceConfiguration`). */
  deviceConfiguration: Record<string, string>;
  /** The device certificate's id. */
  certificateId: string;
  /** The device certificate, PEM, now ACTIVE (or as the template says). */
  certificatePem: string;
  /** Present when the key came from the service or was made here; absent with `{ csr }`. */
  privateKey?: string;
  /** Present with `outDir`. */
  files?: CredentialFiles;
  /** Present with `verify: true`: whether the broker accepted the new certificate. */
  verified?: boolean;
  /**
   * Certificates that may be ACTIVE in AWS but were not kept: RegisterThing's outcome was unknown and
   * its token was then refused, so provisioning started over with a new certificate (or an unfinished
   * set from an earlier run could not be resumed). Always present, usually empty. Deactivate them (see
   * docs/credentials.md).
   */
  abandonedCertificateIds: string[];
  /** True when `outDir` already held a complete matching set, returned without any traffic. */
  reused?: true;
}
