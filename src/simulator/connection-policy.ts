/**
 * Which IoT policies govern a connection: the claim policy (when the simulator was given one) for the
 * claim certificate, and the policies an AWS template attached for a device certificate. A connection
 * with none falls back to the simulator's built-in rules (see policy.ts).
 */

import { optional } from '../internal/optional.js';
import { InvalidArgumentError } from '../protocol/errors.js';
import { type IotAction, IotPolicy, isAllowed, type PolicyContext } from './iam-policy.js';
import type { Role } from './policy.js';
import type { Registry } from './registry.js';

/** The policies of the simulated account, by name, and the claim policy. */
export class AccountPolicies {
  readonly #byName = new Map<string, IotPolicy>();
  readonly #claim: IotPolicy | undefined;
  readonly #registry: Registry;
  /** True when the simulator was given named policies: a template naming another one then fails. */
  readonly strict: boolean;

  constructor(registry: Registry, options: { claimPolicy?: unknown; policies?: Record<string, unknown> }) {
    this.#registry = registry;
    this.#claim =
      options.claimPolicy === undefined ? undefined : parseNamed('claimPolicy', options.claimPolicy);
    for (const [name, document] of Object.entries(options.policies ?? {})) {
      this.#byName.set(name, parseNamed(`policies.${name}`, document));
    }
    this.strict = options.policies !== undefined;
  }

  /** True when a policy of this name exists. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Create (or replace) a policy from a template's `PolicyDocument`. */
  put(name: string, document: unknown): void {
    this.#byName.set(name, IotPolicy.parse(document));
  }

  /**
   * The decision for one request of a connection: true/false under its policies, or undefined when no
   * policy governs it (the built-in rules then decide).
   */
  check(
    connection: { role: Role; clientId: string; certificateId?: string },
    action: IotAction,
    resource: string,
  ): boolean | undefined {
    const governing = this.#governing(connection);
    if (governing === undefined) return undefined;
    return isAllowed(governing.policies, action, resource, governing.context);
  }

  #governing(connection: {
    role: Role;
    clientId: string;
    certificateId?: string;
  }): { policies: IotPolicy[]; context: PolicyContext } | undefined {
    if (connection.role === 'claim') {
      return this.#claim === undefined
        ? undefined
        : { policies: [this.#claim], context: { clientId: connection.clientId } };
    }
    if (connection.role !== 'device' || connection.certificateId === undefined) return undefined;
    const names = this.#registry.policyNamesOf(connection.certificateId);
    const policies = names.flatMap((name) => {
      const policy = this.#byName.get(name);
      return policy === undefined ? [] : [policy];
    });
    if (policies.length === 0) return undefined;
    const thing = this.#registry.thing(connection.clientId);
    const attached = thing?.certificateIds.includes(connection.certificateId) === true;
    const context: PolicyContext = { clientId: connection.clientId };
    if (thing !== undefined && attached) {
      context.thing = {
        thingName: thing.thingName,
        ...optional('thingTypeName', thing.thingTypeName),
        ...optional('attributes', thing.attributes),
      };
    }
    return { policies, context };
  }
}

function parseNamed(where: string, document: unknown): IotPolicy {
  try {
    return IotPolicy.parse(document);
  } catch (error) {
    throw new InvalidArgumentError(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
