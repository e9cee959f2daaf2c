/**
 * The simulator as its user holds it: where it listens, its claim identity, what it issued and made, the
 * fault script, the log, and close(). The broker's packet hooks live in dispatch.ts; start.ts builds the
 * parts in order.
 */
import { EventEmitter } from 'node:events';
import { InvalidArgumentError } from '../protocol/errors.js';
// The one place an endpoint becomes a URL (IPv6 in brackets); it loads nothing but the error classes.
import { endpointUrl } from '../provision/endpoint.js';
import type { RunningBroker } from './broker.js';
import type { Dispatch } from './dispatch.js';
import type { Faults } from './faults.js';
import type { SimulatorIdentity } from './identity.js';
import type { Registry } from './registry.js';
import type { RequestLog } from './request-log.js';
import type { CertificateRecord, RequestLogEntry, Simulator, ThingRecord } from './types.js';

/** The running simulator behind {@link Simulator}. Made by `startSimulator`, never directly. */
export class FleetProvisioningSimulator extends EventEmitter implements Simulator {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly caCertificate: string;
  readonly claimCertificate: string;
  readonly claimPrivateKey: string;
  readonly claimCertificateId: string;
  readonly faults: Faults;
  readonly #registry: Registry;
  readonly #log: RequestLog;
  readonly #dispatch: Dispatch;
  readonly #abort: AbortController;
  #broker: RunningBroker | undefined;
  #closing: Promise<void> | undefined;

  constructor(parts: {
    identity: SimulatorIdentity;
    registry: Registry;
    faults: Faults;
    log: RequestLog;
    dispatch: Dispatch;
    /** The events of the log and of the dispatch, re-emitted by the simulator. */
    events: EventEmitter;
    abort: AbortController;
    broker: RunningBroker;
    tls: boolean;
  }) {
    super();
    this.#registry = parts.registry;
    this.#log = parts.log;
    this.#dispatch = parts.dispatch;
    this.#abort = parts.abort;
    this.#broker = parts.broker;
    this.faults = parts.faults;
    this.host = parts.broker.host;
    this.port = parts.broker.port;
    this.url = endpointUrl({ protocol: parts.tls ? 'mqtts' : 'mqtt', host: this.host, port: this.port });
    this.caCertificate = parts.identity.ca.certificatePem;
    this.claimCertificate = parts.identity.claim.certificatePem;
    this.claimPrivateKey = parts.identity.claim.privateKeyPem;
    this.claimCertificateId = parts.identity.claimCertificateId;
    for (const event of ['request', 'answer'] as const) {
      parts.events.on(event, (entry: RequestLogEntry) => this.emit(event, entry));
    }
  }

  things(): ThingRecord[] {
    return this.#registry.things();
  }

  certificates(): CertificateRecord[] {
    return this.#registry.certificates();
  }

  deactivateCertificate(certificateId: string): void {
    if (!this.#registry.deactivate(certificateId)) {
      throw new InvalidArgumentError(`The simulator never issued certificate ${certificateId}.`);
    }
    // AWS closes the connections of a certificate set INACTIVE, not only refuses new ones.
    this.#broker?.dropCertificate(certificateId);
  }

  requests(clientId?: string): RequestLogEntry[] {
    return this.#log.list(clientId);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort();
      const broker = this.#broker;
      this.#broker = undefined;
      this.#dispatch.answerThrough(undefined);
      await broker?.close();
      await this.#dispatch.settled();
    })();
    return this.#closing;
  }
}
