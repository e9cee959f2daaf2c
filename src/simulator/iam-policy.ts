/**
 * AWS IoT Core policies: IAM-style documents (`Allow`/`Deny`, `iot:Connect`, `iot:Publish`, `iot:Subscribe`,
 * `iot:Receive`, resource ARNs with `*` and `?` wildcards and policy variables such as
 * `${iot:Connection.Thing.ThingName}`), evaluated as IoT Core evaluates them: an explicit Deny wins, then
 * an Allow, and anything else is denied.
 */
import { InvalidArgumentError } from '../protocol/errors.js';

/** The MQTT actions the simulator checks. */
export type IotAction = 'iot:Connect' | 'iot:Publish' | 'iot:Subscribe' | 'iot:Receive';

/** Who is asking: what the policy variables resolve to. */
export interface PolicyContext {
  /** The MQTT client id of the connection (`${iot:ClientId}`). */
  clientId: string;
  /**
   * The thing of the connection: a thing attached to its certificate whose name is the client id
   * (`${iot:Connection.Thing.*}`), as IoT Core finds it.
   */
  thing?: {
    /** `${iot:Connection.Thing.ThingName}`. */
    thingName: string;
    /** `${iot:Connection.Thing.ThingTypeName}`. */
    thingTypeName?: string;
    /** `${iot:Connection.Thing.Attributes[name]}`. */
    attributes?: Record<string, string>;
  };
}

interface Statement {
  effect: 'Allow' | 'Deny';
  actions: string[];
  notActions: string[] | undefined;
  resources: string[];
  notResources: string[] | undefined;
  /** Statements with a `Condition` block are not evaluated by the simulator (they never match). */
  conditional: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function strings(value: unknown, where: string): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw new InvalidArgumentError(`The policy's ${where} must be a string or a list of strings.`);
}

/** A parsed IoT policy document. */
export class IotPolicy {
  readonly #statements: Statement[];

  private constructor(statements: Statement[]) {
    this.#statements = statements;
  }

  /**
   * Parse a policy document (object or JSON text).
   * @throws {InvalidArgumentError} when it is not a policy document.
   */
  static parse(document: unknown): IotPolicy {
    let value = document;
    if (typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch {
        throw new InvalidArgumentError('The policy document is not valid JSON.');
      }
    }
    if (!isRecord(value)) throw new InvalidArgumentError('The policy document must be a JSON object.');
    const raw = value.Statement;
    const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    if (list.length === 0) throw new InvalidArgumentError('The policy document has no Statement.');
    const statements = list.map((item, index): Statement => {
      if (!isRecord(item))
        throw new InvalidArgumentError(`Statement ${index} of the policy is not an object.`);
      if (item.Effect !== 'Allow' && item.Effect !== 'Deny') {
        throw new InvalidArgumentError(`Statement ${index} of the policy needs Effect Allow or Deny.`);
      }
      const notActions = item.NotAction === undefined ? undefined : strings(item.NotAction, 'NotAction');
      const notResources =
        item.NotResource === undefined ? undefined : strings(item.NotResource, 'NotResource');
      return {
        effect: item.Effect,
        actions: item.Action === undefined ? [] : strings(item.Action, 'Action'),
        notActions,
        resources: item.Resource === undefined ? [] : strings(item.Resource, 'Resource'),
        notResources,
        conditional: item.Condition !== undefined,
      };
    });
    return new IotPolicy(statements);
  }

  /** `'allow'`, `'deny'` (an explicit Deny) or `'none'` (no statement applies) for one request. */
  decide(action: IotAction, resource: string, context: PolicyContext): 'allow' | 'deny' | 'none' {
    let allowed = false;
    for (const statement of this.#statements) {
      if (statement.conditional || !actionMatches(statement, action)) continue;
      if (!resourceMatches(statement, resource, context)) continue;
      if (statement.effect === 'Deny') return 'deny';
      allowed = true;
    }
    return allowed ? 'allow' : 'none';
  }
}

/** True when the policies together allow `action` on `resource` (no explicit Deny, at least one Allow). */
export function isAllowed(
  policies: readonly IotPolicy[],
  action: IotAction,
  resource: string,
  context: PolicyContext,
): boolean {
  let allowed = false;
  for (const policy of policies) {
    const decision = policy.decide(action, resource, context);
    if (decision === 'deny') return false;
    if (decision === 'allow') allowed = true;
  }
  return allowed;
}

/** The resource part of an IoT ARN: `client/<id>`, `topic/<topic>` or `topicfilter/<filter>`. */
export function iotResource(kind: 'client' | 'topic' | 'topicfilter', name: string): string {
  return `${kind}/${name}`;
}

function wildcard(pattern: string, caseInsensitive = false): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, caseInsensitive ? 'is' : 's');
}

function actionMatches(statement: Statement, action: IotAction): boolean {
  if (statement.notActions !== undefined) {
    return !statement.notActions.some((pattern) => wildcard(pattern, true).test(action));
  }
  return statement.actions.some((pattern) => wildcard(pattern, true).test(action));
}

function resourceMatches(statement: Statement, resource: string, context: PolicyContext): boolean {
  const matches = (pattern: string): boolean => {
    const resolved = resolveVariables(pattern, context);
    if (resolved === undefined) return false;
    if (resolved === '*') return true;
    // Region and account are not checked: the simulator stands in for whichever account the policy names.
    const arn = /^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$/s.exec(resolved);
    if (arn === null) return false;
    if (!wildcard(arn[2] ?? '').test('iot')) return false;
    return wildcard(arn[5] ?? '').test(resource);
  };
  if (statement.notResources !== undefined) return !statement.notResources.some(matches);
  return statement.resources.some(matches);
}

/**
 * Replace the policy variables of `pattern`. Undefined when one cannot be resolved (the statement then
 * does not apply to the request, as on IoT Core).
 */
export function resolveVariables(pattern: string, context: PolicyContext): string | undefined {
  let unresolved = false;
  const out = pattern.replace(/\$\{([^}]*)\}/g, (_match, name: string) => {
    const value = variable(name, context);
    if (value === undefined) unresolved = true;
    return value ?? '';
  });
  return unresolved ? undefined : out;
}

function variable(name: string, context: PolicyContext): string | undefined {
  switch (name) {
    case 'iot:ClientId':
      return context.clientId;
    case 'iot:Connection.Thing.ThingName':
      return context.thing?.thingName;
    case 'iot:Connection.Thing.ThingTypeName':
      return context.thing?.thingTypeName;
    case 'iot:Connection.Thing.IsAttached':
      return context.thing === undefined ? 'false' : 'true';
    case '*':
    case '?':
    case '$':
      // IoT's escapes for literal `*`, `?` and `$`.
      return name;
    default: {
      const attribute = /^iot:Connection\.Thing\.Attributes\[(.+)\]$/.exec(name)?.[1];
      return attribute === undefined ? undefined : context.thing?.attributes?.[attribute];
    }
  }
}
