/**
 * What mqtt.js and its packet codec may print under `DEBUG`: never a payload. Provisioning payloads
 * carry private keys, certificates and ownership tokens, and `DEBUG=*` is what people set first when a
 * connection misbehaves.
 *
 * - mqtt.js logs through the client's `log` option; the connections this library opens pass
 *   {@link mqttLogger}, which prints packet types, ids, topics and sizes, never payload bytes, and
 *   forwards to the usual `mqttjs:client` namespace.
 * - mqtt-packet (the codec under mqtt.js and the simulator's broker) logs whole packets under
 *   `mqtt-packet:*` through a module-level `debug` instance no option reaches. {@link muteWireDebug}
 *   drops those lines in this process, for every connection, once the library opens one.
 */
import { createRequire } from 'node:module';
import { redact } from '../protocol/redact.js';

/** The part of the `debug` package used here. */
interface DebugFunction {
  (format: unknown, ...args: unknown[]): void;
  readonly enabled: boolean;
}
interface DebugModule {
  (namespace: string): DebugFunction;
  log: (...args: unknown[]) => void;
}

function isDebugModule(value: unknown): value is DebugModule {
  return typeof value === 'function' && 'log' in value && typeof value.log === 'function';
}

const muted = new WeakSet<object>();
const mutedVia = new Set<string>();

/** The `debug` module that the module at `modulePath` loads, or undefined. */
function debugModuleFrom(modulePath: string): DebugModule | undefined {
  try {
    const loaded: unknown = createRequire(modulePath)('debug');
    return isDebugModule(loaded) ? loaded : undefined;
  } catch {
    return undefined;
  }
}

/** The path of `name` as `from` resolves it, or undefined. */
function resolveFrom(from: string, name: string): string | undefined {
  try {
    return createRequire(from).resolve(name);
  } catch {
    return undefined;
  }
}

function namespaceOf(self: unknown): string {
  return typeof self === 'function' && 'namespace' in self && typeof self.namespace === 'string'
    ? self.namespace
    : '';
}

/**
 * Drop every `mqtt-packet:*` debug line in this process (they print whole packets, payloads
 * included), for the codec that mqtt.js uses and, with `via: 'aedes'`, the one the simulator's broker
 * uses. Other namespaces are untouched. Idempotent.
 * @internal
 */
export function muteWireDebug(via: 'mqtt' | 'aedes' = 'mqtt'): void {
  if (mutedVia.has(via)) return;
  mutedVia.add(via);
  const owner = resolveFrom(import.meta.url, via);
  const codec = owner === undefined ? undefined : resolveFrom(owner, 'mqtt-packet');
  const debug = codec === undefined ? undefined : debugModuleFrom(codec);
  if (debug === undefined || muted.has(debug)) return;
  muted.add(debug);
  const write = debug.log;
  debug.log = function filtered(this: unknown, ...args: unknown[]): void {
    if (namespaceOf(this).startsWith('mqtt-packet')) return;
    write.apply(this, args);
  };
}

/** Packet fields that are safe to print: no payload, no password, no properties. */
const SAFE_FIELDS = [
  'cmd',
  'messageId',
  'qos',
  'dup',
  'retain',
  'topic',
  'returnCode',
  'reasonCode',
  'granted',
  'sessionPresent',
  'protocolVersion',
  'keepalive',
  'clean',
  'length',
] as const;

/** A log argument as it may be printed: sizes instead of payloads, redacted text. */
function safeArgument(value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    // Payloads reach the log as strings too ("publish :: message `%s`"): show their size only.
    return value.length > 64 ? `<${value.length} characters>` : redact(value).replace(CONTROL, '?');
  }
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (typeof value !== 'object') return typeof value;
  const out: Record<string, unknown> = {};
  for (const field of SAFE_FIELDS) {
    if (!(field in value)) continue;
    const item: unknown = Reflect.get(value, field);
    out[field] = Array.isArray(item) ? item.filter((x) => typeof x === 'number') : safeArgument(item);
  }
  if ('payload' in value) {
    const payload: unknown = value.payload;
    out.payload =
      payload instanceof Uint8Array
        ? `<${payload.byteLength} bytes>`
        : typeof payload === 'string'
          ? `<${payload.length} characters>`
          : '<payload>';
  }
  return out;
}

const CONTROL = new RegExp(`[${String.fromCharCode(0)}-${String.fromCharCode(31)}\u007f-\u009f]`, 'g');

let clientDebug: DebugFunction | undefined;

/**
 * The `log` function the library's own mqtt.js clients get: the same lines as mqtt.js's own
 * `mqttjs:client` namespace, with every payload replaced by its size and every other argument
 * reduced to fields that cannot hold a secret.
 * @internal
 */
export function mqttLogger(format: unknown, ...args: unknown[]): void {
  if (clientDebug === undefined) {
    const owner = resolveFrom(import.meta.url, 'mqtt');
    const debug = owner === undefined ? undefined : debugModuleFrom(owner);
    if (debug === undefined) return;
    clientDebug = debug('mqttjs:client');
  }
  if (!clientDebug.enabled) return;
  clientDebug(typeof format === 'string' ? redact(format) : safeArgument(format), ...args.map(safeArgument));
}
