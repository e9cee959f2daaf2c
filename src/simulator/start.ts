/**
 * `startSimulator`: check the options, make or load the identity, start the broker, and wire the parts
 * of the simulator together.
 */
import { InvalidArgumentError } from '../protocol/errors.js';
import { startBroker } from './broker.js';
import { AccountPolicies } from './connection-policy.js';
import { Faults } from './faults.js';
import { loadOrCreateIdentity } from './identity.js';
import { RateLimiter } from './rate-limit.js';
import { Registry } from './registry.js';
import { RequestLog } from './request-log.js';
import { ProvisioningService } from './service.js';
import { FleetProvisioningSimulator } from './simulator.js';
import { DEFAULT_TEMPLATES, validateTemplates } from './templates.js';
import type { Simulator, SimulatorOptions } from './types.js';
import { optional } from '../internal/optional.js';

/**
 * Start a local AWS IoT Fleet Provisioning simulator.
 * @throws {InvalidArgumentError} on a bad template name or option.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
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
  let simulator: FleetProvisioningSimulator | undefined;
  const log = new RequestLog({
    limit: options.requestLogLimit ?? 100_000,
    maxBytes: requestLogMaxBytes,
    now,
    onEntry: (entry) => simulator?.emit('request', entry),
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
    hooks: {
      connect: (attempt) => simulator?.onConnect(attempt, tls),
      handshakeFailed: () => simulator?.onHandshakeFailed(),
      subscribe: (connection, filter, packet) => simulator?.onSubscribe(connection, filter, packet) ?? false,
      unsubscribe: (connection, filter) => simulator?.onUnsubscribe(connection, filter),
      publish: (connection, topic, payload) => simulator?.onPublish(connection, topic, payload) ?? false,
    },
  });
  simulator = new FleetProvisioningSimulator({
    identity,
    registry,
    faults,
    service,
    log,
    abort,
    broker,
    tls,
    policies,
    perClient: { perSecond: perClient, now },
  });
  return simulator;
}

/** `value` if it is a positive number, `fallback` when absent. */
function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0))
    throw new InvalidArgumentError(`${name} must be a positive number.`);
  return value;
}
