/**
 * The 18 topic strings of the service (3 operations × 2 formats × request/accepted/rejected), built from
 * the service model, and their inverse, {@link parseTopic}.
 */
import { InvalidArgumentError, type OperationName } from './errors.js';
import { OPERATION_NAMES, operations } from './operations.js';

/** The payload formats the service speaks. */
export type PayloadFormat = 'json' | 'cbor';
/** Which of an operation's three topics. */
export type TopicKind = 'request' | 'accepted' | 'rejected';

/** An operation's three topics for one format. */
export interface OperationTopics {
  /** Where the request is published. */
  readonly request: string;
  /** Where the accepted answer arrives. */
  readonly accepted: string;
  /** Where the rejected answer arrives. */
  readonly rejected: string;
}

/** What {@link parseTopic} recognises in a topic string. */
export interface ParsedTopic {
  /** The operation the topic belongs to. */
  operation: OperationName;
  /** `json` or `cbor`. */
  format: PayloadFormat;
  /** `request`, `accepted` or `rejected`. */
  kind: TopicKind;
  /** Present for RegisterThing. */
  templateName?: string;
}

/** 1 to 36 characters from `[0-9A-Za-z_-]`: one topic level, with nothing that changes its meaning. */
export const TEMPLATE_NAME_PATTERN = /^[0-9A-Za-z_-]{1,36}$/;

/** Throws {@link InvalidArgumentError} unless `name` is a valid provisioning template name. */
export function assertTemplateName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !TEMPLATE_NAME_PATTERN.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 40)) : typeof name;
    throw new InvalidArgumentError(
      `Invalid template name ${shown}: use 1 to 36 characters from A-Z, a-z, 0-9, "_" and "-".`,
    );
  }
}

/** Throws {@link InvalidArgumentError} unless `format` is `'json'` or `'cbor'`. */
export function assertFormat(format: unknown): asserts format is PayloadFormat {
  if (format !== 'json' && format !== 'cbor') {
    throw new InvalidArgumentError(`Invalid payload format ${JSON.stringify(format)}: use "json" or "cbor".`);
  }
}

/**
 * The three topics of `operation` in `format`. Validates the format and, for RegisterThing, the
 * template name.
 * @throws {InvalidArgumentError} on a bad format or template name.
 */
export function operationTopics(
  operation: OperationName,
  format: PayloadFormat = 'json',
  templateName = '',
): OperationTopics {
  const key = `${format}/${operation}/${templateName}`;
  const found = built.get(key);
  if (found !== undefined) return found;
  assertFormat(format);
  const spec = operations[operation];
  if (spec.templated) assertTemplateName(templateName);
  const request = `${spec.topicRoot(templateName)}/${format}`;
  const made = Object.freeze({ request, accepted: `${request}/accepted`, rejected: `${request}/rejected` });
  if (built.size < 1_000) built.set(key, made);
  return made;
}

/**
 * Topics already built and checked, by format, operation and template: every request asks for its
 * topics (and `provision()` makes a client per call). Bounded; a name that fails its check is not kept.
 */
const built = new Map<string, OperationTopics>();

/**
 * Builders for the service's topics.
 * @example
 * topics.registerThing('FactoryTemplate', 'cbor').accepted
 * // '$aws/provisioning-templates/FactoryTemplate/provision/cbor/accepted'
 */
export const topics = {
  /** `$aws/certificates/create/<format>` and its answers. */
  createKeysAndCertificate: (format: PayloadFormat = 'json'): OperationTopics =>
    operationTopics('CreateKeysAndCertificate', format),
  /** `$aws/certificates/create-from-csr/<format>` and its answers. */
  createCertificateFromCsr: (format: PayloadFormat = 'json'): OperationTopics =>
    operationTopics('CreateCertificateFromCsr', format),
  /** `$aws/provisioning-templates/<templateName>/provision/<format>` and its answers. */
  registerThing: (templateName: string, format: PayloadFormat = 'json'): OperationTopics =>
    operationTopics('RegisterThing', format, templateName),
} as const;

/**
 * Recognise one of the service's 18 topics (for any valid template name).
 * @returns what the topic is, or `undefined` when it is not a Fleet Provisioning topic.
 */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const levels = topic.split('/');
  const last = levels.at(-1);
  const kind: TopicKind = last === 'accepted' || last === 'rejected' ? last : 'request';
  const base = kind === 'request' ? levels : levels.slice(0, -1);
  const format = base.pop();
  if (format !== 'json' && format !== 'cbor') return undefined;
  const root = base.join('/');
  for (const name of OPERATION_NAMES) {
    const spec = operations[name];
    if (!spec.templated) {
      if (root === spec.topicRoot('')) return { operation: name, format, kind };
      continue;
    }
    // RegisterThing: $aws/provisioning-templates/<t>/provision
    const templateName = base[2];
    if (templateName !== undefined && TEMPLATE_NAME_PATTERN.test(templateName)) {
      if (base.length === 4 && root === spec.topicRoot(templateName)) {
        return { operation: name, format, kind, templateName };
      }
    }
  }
  return undefined;
}

/** Every topic of the service for one template: 18 strings. */
export function allTopics(templateName: string): string[] {
  const out: string[] = [];
  for (const format of ['json', 'cbor'] as const) {
    for (const name of OPERATION_NAMES) {
      const t = operationTopics(name, format, templateName);
      out.push(t.request, t.accepted, t.rejected);
    }
  }
  return out;
}
