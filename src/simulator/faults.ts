/**
 * The fault script: per operation, a queue of "do this instead for the next N requests". SUBSCRIBE
 * refusals are counted per SUBSCRIBE packet, everything else per request, so the two keep separate queues.
 */
import { InvalidArgumentError, type OperationName } from '../protocol/errors.js';
import { OPERATION_NAMES } from '../protocol/operations.js';
import type { Fault, FaultScript } from './types.js';

interface Entry {
  readonly fault: Fault;
  remaining: number;
}

/** Every fault type the simulator knows, once; the compiler checks it against the {@link Fault} union. */
const FAULT_TYPES = [
  'normal',
  'reject',
  'silent',
  'delay',
  'duplicate',
  'acceptThenReject',
  'malformed',
  'wrongShape',
  'oversized',
  'refuseSubscribe',
  'disconnect',
  'runThenDisconnect',
] as const satisfies readonly Fault['type'][];
/** Fails to compile when a member of the {@link Fault} union is missing from {@link FAULT_TYPES}. */
const everyFaultListed: Exclude<Fault['type'], (typeof FAULT_TYPES)[number]> extends never ? true : never =
  true;
const KNOWN_FAULTS: ReadonlySet<string> = everyFaultListed && new Set(FAULT_TYPES);

/** The simulator's {@link FaultScript}, with the two lookups the service and the broker use. */
export class Faults implements FaultScript {
  readonly #requests = new Map<OperationName, Entry[]>();
  readonly #subscribes = new Map<OperationName, Entry[]>();

  script(operation: OperationName, fault: Fault, options: { times?: number } = {}): void {
    if (!OPERATION_NAMES.includes(operation)) {
      throw new InvalidArgumentError(`Unknown operation ${JSON.stringify(operation)}.`);
    }
    if (typeof fault !== 'object' || fault === null || !KNOWN_FAULTS.has(fault.type)) {
      throw new InvalidArgumentError('Unknown fault: see the Fault type for the ones the simulator knows.');
    }
    const times = options.times ?? 1;
    if (!(times === Number.POSITIVE_INFINITY || (Number.isInteger(times) && times > 0))) {
      throw new InvalidArgumentError(`times must be a positive integer or Infinity, not ${String(times)}.`);
    }
    if (fault.type === 'delay' && !(Number.isFinite(fault.ms) && fault.ms >= 0)) {
      throw new InvalidArgumentError('A delay fault needs ms >= 0.');
    }
    const queues = fault.type === 'refuseSubscribe' ? this.#subscribes : this.#requests;
    const queue = queues.get(operation) ?? [];
    queue.push({ fault, remaining: times });
    queues.set(operation, queue);
  }

  clear(): void {
    this.#requests.clear();
    this.#subscribes.clear();
  }

  /** The fault for the request of `operation` now arriving (used up), or undefined to answer normally. */
  takeForRequest(operation: OperationName): Fault | undefined {
    return take(this.#requests.get(operation));
  }

  /** True when the SUBSCRIBE packet now arriving must be refused for `operation`'s answer topics. */
  takeForSubscribe(operation: OperationName): boolean {
    return take(this.#subscribes.get(operation)) !== undefined;
  }
}

function take(queue: Entry[] | undefined): Fault | undefined {
  const head = queue?.[0];
  if (queue === undefined || head === undefined) return undefined;
  head.remaining -= 1;
  if (head.remaining <= 0) queue.shift();
  return head.fault.type === 'normal' ? undefined : head.fault;
}
