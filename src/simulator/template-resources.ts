/**
 * The three resources of a provisioning template (`AWS::IoT::Thing` with `OverrideSettings`,
 * `AWS::IoT::Certificate`, `AWS::IoT::Policy`), each from its evaluated properties, with AWS's checks.
 */

import { optional } from '../internal/optional.js';
import { TemplateProblem } from './intrinsics.js';
import type { ThingRecord } from './types.js';

/** AWS's rule for thing names. */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
/** The `OverrideSettings` each thing property accepts. */
export const OVERRIDES = {
  AttributePayload: ['MERGE', 'REPLACE', 'FAIL', 'DO_NOTHING'],
  ThingTypeName: ['REPLACE', 'FAIL', 'DO_NOTHING'],
  ThingGroups: ['MERGE', 'REPLACE', 'FAIL', 'DO_NOTHING'],
} as const;

/** What `OverrideSettings` says to do when the thing already exists. */
type Override = 'MERGE' | 'REPLACE' | 'FAIL' | 'DO_NOTHING';

/** The thing a template run makes (or updates), after `OverrideSettings` are applied. */
export interface PlannedThing {
  thingName: string;
  attributes: Record<string, string>;
  thingGroups: string[];
  thingTypeName?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The thing of an `AWS::IoT::Thing` resource, after `OverrideSettings` for an existing thing. */
export function planThing(
  logical: string,
  properties: Record<string, unknown>,
  settings: unknown,
  existingThing: (name: string) => ThingRecord | undefined,
): PlannedThing {
  const thingName = properties.ThingName;
  if (typeof thingName !== 'string') {
    throw new TemplateProblem(
      'InvalidRequestException',
      `Resource ${logical} needs a ThingName.`,
      'ThingName',
    );
  }
  if (!THING_NAME.test(thingName)) {
    throw new TemplateProblem(
      'InvalidParameters',
      `The thing name ${JSON.stringify(thingName)} is not valid: use 1 to 128 of [a-zA-Z0-9:_-].`,
      'ThingName',
    );
  }
  const attributes: Record<string, string> = {};
  const payload = properties.AttributePayload;
  if (isRecord(payload)) {
    for (const [name, value] of Object.entries(payload)) {
      if (typeof value !== 'string' || !ATTRIBUTE_NAME.test(name) || !ATTRIBUTE_VALUE.test(value)) {
        throw new TemplateProblem(
          'InvalidParameters',
          `The thing attribute ${name} has a name or value AWS does not accept.`,
          name,
        );
      }
      attributes[name] = value;
    }
  }
  const groups = properties.ThingGroups;
  const thingGroups = Array.isArray(groups) ? groups.filter((g) => typeof g === 'string') : [];
  const type = properties.ThingTypeName;
  const planned: PlannedThing = {
    thingName,
    attributes,
    thingGroups,
    ...(typeof type === 'string' ? { thingTypeName: type } : {}),
  };
  const existing = existingThing(thingName);
  if (existing === undefined) return planned;
  const setting = (property: keyof typeof OVERRIDES): Override => {
    const value = isRecord(settings) ? settings[property] : undefined;
    return typeof value === 'string' && (OVERRIDES[property] as readonly string[]).includes(value)
      ? (value as Override)
      : 'DO_NOTHING';
  };
  const conflict = (property: string) =>
    new TemplateProblem(
      'ResourceConflict',
      `The thing ${thingName} exists with a different ${property}, and OverrideSettings.${property} is FAIL.`,
      property,
    );
  const before = existing.attributes ?? {};
  let merged = { ...before };
  switch (setting('AttributePayload')) {
    case 'MERGE':
      merged = { ...before, ...attributes };
      break;
    case 'REPLACE':
      merged = { ...attributes };
      break;
    case 'FAIL':
      if (JSON.stringify(sorted(before)) !== JSON.stringify(sorted(attributes)))
        throw conflict('AttributePayload');
      break;
    case 'DO_NOTHING':
      break;
  }
  const oldGroups = existing.thingGroups ?? [];
  let mergedGroups = [...oldGroups];
  switch (setting('ThingGroups')) {
    case 'MERGE':
      mergedGroups = [...new Set([...oldGroups, ...thingGroups])];
      break;
    case 'REPLACE':
      mergedGroups = [...thingGroups];
      break;
    case 'FAIL':
      if ([...oldGroups].sort().join('\n') !== [...thingGroups].sort().join('\n'))
        throw conflict('ThingGroups');
      break;
    case 'DO_NOTHING':
      break;
  }
  let mergedType = existing.thingTypeName;
  switch (setting('ThingTypeName')) {
    case 'REPLACE':
      mergedType = planned.thingTypeName;
      break;
    case 'FAIL':
      if (existing.thingTypeName !== planned.thingTypeName) throw conflict('ThingTypeName');
      break;
    default:
      break;
  }
  return {
    thingName,
    attributes: merged,
    thingGroups: mergedGroups,
    ...optional('thingTypeName', mergedType),
  };
}

function sorted(record: Record<string, string>): Array<[string, string]> {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
}

/** The status an `AWS::IoT::Certificate` resource gives the certificate being provisioned. */
export function certificateStatus(
  logical: string,
  properties: Record<string, unknown>,
  certificate: { certificateId: string; certificatePem: string },
): 'ACTIVE' | 'INACTIVE' {
  const { CertificateId: id, CertificatePem: pem, Status: status } = properties;
  if (id !== undefined && id !== certificate.certificateId) {
    throw new TemplateProblem(
      'InvalidParameters',
      `Resource ${logical}: CertificateId is not the certificate being provisioned.`,
      'CertificateId',
    );
  }
  const squash = (text: string) => text.replace(/\s+/g, '');
  if (pem !== undefined && (typeof pem !== 'string' || squash(pem) !== squash(certificate.certificatePem))) {
    throw new TemplateProblem(
      'InvalidParameters',
      `Resource ${logical}: CertificatePem is not the certificate being provisioned.`,
      'CertificatePem',
    );
  }
  if (status === undefined) return 'ACTIVE';
  const upper = typeof status === 'string' ? status.toUpperCase() : '';
  if (upper !== 'ACTIVE' && upper !== 'INACTIVE') {
    throw new TemplateProblem(
      'InvalidRequestException',
      `Resource ${logical}: Status must be ACTIVE or INACTIVE.`,
      'Status',
    );
  }
  return upper;
}

/** The policy of an `AWS::IoT::Policy` resource: by name, or with its document. */
export function policyResource(
  logical: string,
  properties: Record<string, unknown>,
): { name: string; document?: unknown } {
  const { PolicyName: name, PolicyDocument: document } = properties;
  if (document !== undefined) {
    let parsed: unknown = document;
    if (typeof document === 'string') {
      try {
        parsed = JSON.parse(document);
      } catch {
        throw new TemplateProblem(
          'InvalidRequestException',
          `Resource ${logical}: PolicyDocument is not valid JSON.`,
          'PolicyDocument',
        );
      }
    }
    return { name: typeof name === 'string' ? name : logical, document: parsed };
  }
  if (typeof name !== 'string') {
    throw new TemplateProblem(
      'InvalidRequestException',
      `Resource ${logical} needs a PolicyName or a PolicyDocument.`,
      'PolicyName',
    );
  }
  return { name };
}
