/**
 * `startSimulator`: check the options, make or load the identity, then build the parts in order, each
 * from the ones before it: registry, policies, faults, log, service, dispatch (the broker's hooks), the
 * broker, and last the simulator facade.
 */
import { loadCodec } from '../protocol/payload.js';
import { EventEmitter } from 'node:events';
import { optional } from '../internal/optional.js';
import { InvalidArgumentError } from '../protocol/errors.js';
import { startBroker } from './broker.js';
import { AccountPolicies } from './connection-policy.js';
import { Dispatch } from './dispatch.js';
import { Faults } from './faults.js';
import { loadOrCreateIdentity } from './identity.js';
import { RateLimiter } from './rate-limit.js';
import { Registry } from './registry.js';
import { RequestLog } from './request-log.js';
import { ProvisioningService } from './service.js';
import { FleetProvisioningSimulator } from './simulator.js';
import { DEFAULT_TEMPLATES, validateTemplates } from './templates.js';
import type { Simulator, SimulatorOptions } from './types.js';

/**
 * Start a local AWS IoT Fleet Provisioning simulator.
 * @throws {InvalidArgumentError} on a bad template name or option.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  // The simulator answers in both formats.
  await loadCodec('cbor');
  const templates = validateTemplates(options.templates ?? DEFAULT_TEMPLATES);
  const rate = options.requestsPerSecond;
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) {
    throw new InvalidArgumentError('requestsPerSecond must be a positive number.');
  }
  const perClient = positive('requestsPerSecondPerClient', options.requestsPerSecondPerClient, 100);
  const maxPacketBytes = positive('maxPacketBytes', options.maxPacketBytes, 133_120);
  const requestLogMaxBytes = positive('requestLogMaxBytes', options.requestLogMaxBytes, 64 * 1024 * 1024);
  const serverKeyType = options.serverKeyType ?? 'rsa-2048';
  if (serverKeyType !== 'rsa-2048' && serverKeyType !== 'ec-p256') {
    throw new InvalidArgumentError('serverKeyType must be "rsa-2048" or "ec-p256".');
  }
  const validityDays = options.certificateValidityDays;
  if (validityDays !== undefined && !(Number.isFinite(validityDays) && validityDays > 0)) {
    throw new InvalidArgumentError('certificateValidityDays must be a positive number of days.');
  }
  const now = options.now ?? Date.now;
  const tls = options.tls ?? true;
  const identity = await loadOrCreateIdentity(options.identityDir);
  const registry = new Registry(now);
  const policies = new AccountPolicies(registry, options);
  const faults = new Faults();
  const abort = new AbortController();
  const events = new EventEmitter();
  const log = new RequestLog({
    limit: options.requestLogLimit ?? 100_000,
    maxBytes: requestLogMaxBytes,
    now,
    onEntry: (entry) => events.emit('request', entry),
  });
  const service = new ProvisioningService({
    identity,
    registry,
    templates,
    policies,
    serverKeyType,
    ...optional('certificateValidityDays', validityDays),
    hookTimeoutMs: options.hookTimeoutMs ?? 5_000,
    signal: abort.signal,
    ...(rate === undefined ? {} : { rateLimiter: new RateLimiter(rate, now) }),
  });
  const dispatch = new Dispatch({
    registry,
    faults,
    service,
    log,
    signal: abort.signal,
    tls,
    claimCertificateId: identity.claimCertificateId,
    events,
    policies,
    perClient: { perSecond: perClient, now },
  });
  const broker = await startBroker({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    maxPacketBytes,
    ...(tls
      ? {
          tls: {
            key: identity.server.privateKeyPem,
            cert: identity.server.certificatePem,
            ca: identity.ca.certificatePem,
          },
        }
      : {}),
    hooks: dispatch,
  });
  dispatch.answerThrough(broker);
  return new FleetProvisioningSimulator({
    identity,
    registry,
    faults,
    log,
    dispatch,
    events,
    abort,
    broker,
    tls,
  });
}

/** `value` if it is a positive number, `fallback` when absent. */
function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0))
    throw new InvalidArgumentError(`${name} must be a positive number.`);
  return value;
}
