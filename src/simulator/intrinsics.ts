/**
 * The intrinsic functions of AWS IoT provisioning templates (`Ref`, `Fn::Join`, `Fn::Select`, `Fn::Split`,
 * `Fn::Sub`, `Fn::If`, `Fn::FindInMap`) and the condition functions (`Fn::Equals`, `Fn::And`, `Fn::Or`,
 * `Fn::Not`, `Condition`), evaluated as AWS evaluates them when RegisterThing runs a template.
 */

/** A template problem, with the AWS error it earns. */
export class TemplateProblem extends Error {
  override name = 'TemplateProblem';
  /** `InvalidParameters` (a device's request does not fit) or `InvalidRequestException` (the template is wrong). */
  readonly errorCode: 'InvalidParameters' | 'InvalidRequestException' | 'ResourceConflict';
  /** The parameter or reference the problem is about, when there is one. */
  readonly subject: string | undefined;

  constructor(
    errorCode: 'InvalidParameters' | 'InvalidRequestException' | 'ResourceConflict',
    message: string,
    subject?: string,
  ) {
    super(message);
    this.errorCode = errorCode;
    this.subject = subject;
  }
}

/** `{ "Ref": "AWS::NoValue" }`: the property it stands for is left out. */
export const NO_VALUE: unique symbol = Symbol('AWS::NoValue');

/** What a template expression evaluates to. */
export type Evaluated = string | boolean | Evaluated[] | { [key: string]: Evaluated } | typeof NO_VALUE;

/** What evaluation needs: parameter values, which names are declared, mappings and conditions. */
export interface EvaluationScope {
  /** Values by parameter name (defaults, device parameters, hook overrides and built-ins applied). */
  values: Readonly<Record<string, string>>;
  /** Every declared parameter name (a declared parameter without a value is a missing parameter). */
  declared: ReadonlySet<string>;
  /** Logical names of the template's resources (a `Ref` to one gives its logical name here). */
  resources: ReadonlySet<string>;
  mappings: Readonly<Record<string, unknown>>;
  /** Condition definitions by name. */
  conditions: Readonly<Record<string, unknown>>;
}

const FUNCTIONS = new Set([
  'Ref',
  'Fn::Join',
  'Fn::Select',
  'Fn::Split',
  'Fn::Sub',
  'Fn::If',
  'Fn::FindInMap',
  'Fn::Equals',
  'Fn::And',
  'Fn::Or',
  'Fn::Not',
  'Condition',
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The name of the intrinsic function `value` calls, or undefined for a plain value. */
function functionOf(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const [key] = keys;
  if (key === undefined) return undefined;
  if (FUNCTIONS.has(key)) return key;
  if (key.startsWith('Fn::')) {
    throw new TemplateProblem('InvalidRequestException', `The function ${key} is not supported.`, key);
  }
  return undefined;
}

function args(value: unknown, name: string, count: number): unknown[] {
  if (!Array.isArray(value) || value.length !== count) {
    throw new TemplateProblem('InvalidRequestException', `${name} takes a list of ${count} arguments.`, name);
  }
  return value;
}

/** Evaluate `value` to a string, as a property that takes a string needs. */
export function evaluateString(value: unknown, scope: EvaluationScope, where: string): string {
  const out = evaluate(value, scope);
  if (typeof out !== 'string') {
    throw new TemplateProblem('InvalidRequestException', `${where} must be a string.`, where);
  }
  return out;
}

function list(value: unknown, scope: EvaluationScope, name: string): Evaluated[] {
  const out = evaluate(value, scope);
  if (!Array.isArray(out))
    throw new TemplateProblem('InvalidRequestException', `${name} needs a list.`, name);
  return out;
}

/** Evaluate a template expression. */
export function evaluate(value: unknown, scope: EvaluationScope): Evaluated {
  const fn = functionOf(value);
  if (fn === undefined || !isRecord(value)) {
    if (typeof value === 'string' || typeof value === 'boolean') return value;
    if (typeof value === 'number') return String(value);
    if (Array.isArray(value)) {
      return value.map((item) => evaluate(item, scope)).filter((item) => item !== NO_VALUE);
    }
    if (isRecord(value)) {
      const out: Record<string, Evaluated> = {};
      for (const [key, item] of Object.entries(value)) {
        const evaluated = evaluate(item, scope);
        if (evaluated !== NO_VALUE) out[key] = evaluated;
      }
      return out;
    }
    throw new TemplateProblem('InvalidRequestException', 'A template value is null.');
  }
  const arg = value[fn];
  switch (fn) {
    case 'Ref':
      return ref(arg, scope);
    case 'Fn::Join': {
      const [separator, items] = args(arg, fn, 2);
      if (typeof separator !== 'string') {
        throw new TemplateProblem('InvalidRequestException', 'Fn::Join needs a string separator.', fn);
      }
      return list(items, scope, fn)
        .map((item) => {
          if (typeof item !== 'string') {
            throw new TemplateProblem('InvalidRequestException', 'Fn::Join joins strings only.', fn);
          }
          return item;
        })
        .join(separator);
    }
    case 'Fn::Select': {
      const [index, items] = args(arg, fn, 2);
      const at = Number(evaluate(index, scope));
      const from = list(items, scope, fn);
      const picked = Number.isInteger(at) ? from[at] : undefined;
      if (picked === undefined) {
        throw new TemplateProblem(
          'InvalidParameters',
          `Fn::Select: index ${String(at)} is outside a list of ${from.length}.`,
          fn,
        );
      }
      return picked;
    }
    case 'Fn::Split': {
      const [delimiter, text] = args(arg, fn, 2);
      if (typeof delimiter !== 'string' || delimiter === '') {
        throw new TemplateProblem('InvalidRequestException', 'Fn::Split needs a delimiter.', fn);
      }
      return evaluateString(text, scope, fn).split(delimiter);
    }
    case 'Fn::Sub':
      return substitute(arg, scope);
    case 'Fn::If': {
      const [name, whenTrue, whenFalse] = args(arg, fn, 3);
      if (typeof name !== 'string') {
        throw new TemplateProblem('InvalidRequestException', 'Fn::If names a condition.', fn);
      }
      return evaluate(condition(name, scope) ? whenTrue : whenFalse, scope);
    }
    case 'Fn::FindInMap': {
      const [map, top, second] = args(arg, fn, 3).map((a) => evaluateString(a, scope, fn));
      const table = scope.mappings[map ?? ''];
      const row = isRecord(table) && top !== undefined ? table[top] : undefined;
      const found = isRecord(row) && second !== undefined ? row[second] : undefined;
      if (found === undefined) {
        throw new TemplateProblem(
          'InvalidParameters',
          `Fn::FindInMap: ${map}.${top}.${second} is not in the template's Mappings.`,
          `${map}.${top}.${second}`,
        );
      }
      return evaluate(found, scope);
    }
    default:
      return testCondition(value, scope);
  }
}

function ref(name: unknown, scope: EvaluationScope): Evaluated {
  if (typeof name !== 'string') throw new TemplateProblem('InvalidRequestException', 'Ref takes a name.');
  if (name === 'AWS::NoValue') return NO_VALUE;
  const value = scope.values[name];
  if (value !== undefined) return value;
  if (scope.resources.has(name)) return name;
  if (scope.declared.has(name) || name.startsWith('AWS::IoT::')) {
    throw new TemplateProblem('InvalidParameters', `Missing value for parameter ${name}.`, name);
  }
  throw new TemplateProblem(
    'InvalidRequestException',
    `Ref ${name} names no parameter or resource of the template.`,
    name,
  );
}

/** `Fn::Sub`: `${Name}` from parameters (or the variables of the two-argument form); `${!Text}` is literal. */
function substitute(arg: unknown, scope: EvaluationScope): string {
  let text: unknown = arg;
  let variables: Record<string, Evaluated> = {};
  if (Array.isArray(arg)) {
    const [template, vars] = args(arg, 'Fn::Sub', 2);
    text = template;
    const evaluated = evaluate(vars, scope);
    if (!isRecord(evaluated)) {
      throw new TemplateProblem('InvalidRequestException', 'Fn::Sub variables must be a map.', 'Fn::Sub');
    }
    variables = evaluated;
  }
  if (typeof text !== 'string') {
    throw new TemplateProblem('InvalidRequestException', 'Fn::Sub takes a string.', 'Fn::Sub');
  }
  return text.replace(/\$\{([^}]*)\}/g, (_match, name: string) => {
    if (name.startsWith('!')) return `\${${name.slice(1)}}`;
    const own = variables[name];
    if (own !== undefined) {
      if (typeof own !== 'string') {
        throw new TemplateProblem('InvalidRequestException', `Fn::Sub: ${name} is not a string.`, name);
      }
      return own;
    }
    const value = ref(name, scope);
    if (typeof value !== 'string') {
      throw new TemplateProblem('InvalidRequestException', `Fn::Sub: ${name} is not a string.`, name);
    }
    return value;
  });
}

/** The value of the named condition of the template. */
export function condition(name: string, scope: EvaluationScope, seen: string[] = []): boolean {
  if (!Object.hasOwn(scope.conditions, name)) {
    throw new TemplateProblem('InvalidRequestException', `The condition ${name} is not defined.`, name);
  }
  if (seen.includes(name)) {
    throw new TemplateProblem('InvalidRequestException', `The condition ${name} refers to itself.`, name);
  }
  return testCondition(scope.conditions[name], scope, [...seen, name]);
}

function testCondition(value: unknown, scope: EvaluationScope, seen: string[] = []): boolean {
  const fn = functionOf(value);
  if (fn === undefined || !isRecord(value)) {
    if (typeof value === 'boolean') return value;
    throw new TemplateProblem('InvalidRequestException', 'A condition must be a condition function.');
  }
  const arg = value[fn];
  switch (fn) {
    case 'Fn::Equals': {
      const [a, b] = args(arg, fn, 2).map((item) => evaluate(item, scope));
      return JSON.stringify(a) === JSON.stringify(b);
    }
    case 'Fn::And':
    case 'Fn::Or': {
      if (!Array.isArray(arg) || arg.length < 2 || arg.length > 10) {
        throw new TemplateProblem('InvalidRequestException', `${fn} takes 2 to 10 conditions.`, fn);
      }
      const results = arg.map((item) => testCondition(item, scope, seen));
      return fn === 'Fn::And' ? results.every(Boolean) : results.some(Boolean);
    }
    case 'Fn::Not': {
      const [inner] = args(arg, fn, 1);
      return !testCondition(inner, scope, seen);
    }
    case 'Condition':
      if (typeof arg !== 'string') {
        throw new TemplateProblem('InvalidRequestException', 'Condition takes a name.');
      }
      return condition(arg, scope, seen);
    default:
      throw new TemplateProblem('InvalidRequestException', `${fn} is not a condition.`, fn);
  }
}
