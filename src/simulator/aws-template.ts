/**
 * AWS IoT provisioning templates as `aws iot create-provisioning-template --template-body` takes them:
 * `Parameters`, `Mappings`, `Conditions`, `Resources` (`AWS::IoT::Thing`, `AWS::IoT::Certificate`,
 * `AWS::IoT::Policy`, with `OverrideSettings`) and `DeviceConfiguration`, run as RegisterThing runs them.
 */
import * as x509 from '@peculiar/x509';
import { evaluate, NO_VALUE, TemplateProblem, unresolvedReferences } from './intrinsics.js';
import type { AwsProvisioningTemplate, ThingRecord } from './types.js';

/** AWS's rule for thing names. */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
const RESOURCE_TYPES = ['AWS::IoT::Thing', 'AWS::IoT::Certificate', 'AWS::IoT::Policy'];
const OVERRIDES = {
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

/** What running an AWS template gives. */
export interface AwsTemplateResult {
  thing?: PlannedThing;
  certificateStatus: 'ACTIVE' | 'INACTIVE';
  /** The policies to attach: by name (a policy of the account) or with their document. */
  policies: Array<{ name: string; document?: unknown }>;
  deviceConfiguration: Record<string, string>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `value` looks like an AWS template body (it has `Resources`). */
export function isAwsTemplate(value: unknown): value is AwsProvisioningTemplate {
  return isRecord(value) && isRecord(value.Resources);
}

function scopeOf(template: AwsProvisioningTemplate, values: Record<string, string>) {
  return {
    values,
    declared: new Set(Object.keys(template.Parameters ?? {})),
    resources: new Set(Object.keys(template.Resources)),
    mappings: template.Mappings ?? {},
    conditions: template.Conditions ?? {},
  };
}

/**
 * What `create-provisioning-template` would refuse: an unknown resource type, a reference that can never
 * resolve, a bad `OverrideSettings` value. Empty when the template is acceptable.
 */
export function checkAwsTemplate(template: AwsProvisioningTemplate): string[] {
  const problems: string[] = [];
  const scope = scopeOf(template, {});
  for (const [name, resource] of Object.entries(template.Resources)) {
    if (!isRecord(resource) || typeof resource.Type !== 'string') {
      problems.push(`Resource ${name} has no Type.`);
      continue;
    }
    if (!RESOURCE_TYPES.includes(resource.Type)) {
      problems.push(`Resource ${name} has the unsupported type ${resource.Type}.`);
    }
    const overrides = resource.OverrideSettings;
    if (overrides !== undefined && isRecord(overrides)) {
      for (const [property, setting] of Object.entries(overrides)) {
        const allowed: readonly string[] | undefined = OVERRIDES[property as keyof typeof OVERRIDES];
        if (allowed === undefined || typeof setting !== 'string' || !allowed.includes(setting)) {
          problems.push(
            `Resource ${name}: OverrideSettings.${property} = ${JSON.stringify(setting)} is not valid.`,
          );
        }
      }
    }
  }
  for (const reference of unresolvedReferences(
    [template.Resources, template.DeviceConfiguration ?? {}, template.Conditions ?? {}],
    scope,
  )) {
    problems.push(`Unresolved reference: ${reference}.`);
  }
  return problems;
}

/** The `AWS::IoT::Certificate::*` parameters, read from the certificate being provisioned. */
export function certificateParameters(certificateId: string, certificatePem: string): Record<string, string> {
  const out: Record<string, string> = { 'AWS::IoT::Certificate::Id': certificateId };
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(certificatePem);
  } catch {
    return out;
  }
  const fields: Array<[string, string]> = [
    ['CommonName', '2.5.4.3'],
    ['Country', '2.5.4.6'],
    ['Organization', '2.5.4.10'],
    ['OrganizationalUnit', '2.5.4.11'],
    ['DistinguishedNameQualifier', '2.5.4.46'],
    ['StateName', '2.5.4.8'],
    ['Locality', '2.5.4.7'],
    ['Title', '2.5.4.12'],
    ['SerialNumber', '2.5.4.5'],
    ['Surname', '2.5.4.4'],
    ['GivenName', '2.5.4.42'],
    ['Initials', '2.5.4.43'],
    ['Pseudonym', '2.5.4.65'],
    ['GenerationQualifier', '2.5.4.44'],
  ];
  for (const [name, oid] of fields) {
    const [value] = certificate.subjectName.getField(oid);
    if (value !== undefined) out[`AWS::IoT::Certificate::${name}`] = value;
  }
  const san = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  const [first] = san?.names.items ?? [];
  if (first !== undefined) out['AWS::IoT::Certificate::SubjectAlternativeName'] = first.value;
  return out;
}

/**
 * Parameter values for a run: declared defaults, then the device's parameters (with the hook's overrides),
 * then the certificate's built-in parameters, which nothing may override.
 */
export function templateValues(
  template: AwsProvisioningTemplate,
  parameters: Record<string, string>,
  builtIns: Record<string, string>,
): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, declaration] of Object.entries(template.Parameters ?? {})) {
    const fallback = isRecord(declaration) ? declaration.Default : undefined;
    if (fallback !== undefined) values[name] = String(fallback);
  }
  for (const [name, value] of Object.entries(parameters)) {
    if (!name.startsWith('AWS::')) values[name] = value;
  }
  return { ...values, ...builtIns };
}

/**
 * Run `template` with `values` (see {@link templateValues}) for the certificate `certificateId`.
 * `existingThing` looks a thing up in the registry, for `OverrideSettings`.
 * @throws {TemplateProblem} with the AWS error code the run fails with.
 */
export function runAwsTemplate(
  template: AwsProvisioningTemplate,
  values: Record<string, string>,
  certificate: { certificateId: string; certificatePem: string },
  existingThing: (name: string) => ThingRecord | undefined,
): AwsTemplateResult {
  const scope = scopeOf(template, values);
  const result: AwsTemplateResult = { certificateStatus: 'ACTIVE', policies: [], deviceConfiguration: {} };
  for (const [logical, resource] of Object.entries(template.Resources)) {
    if (!isRecord(resource)) continue;
    if (typeof resource.Condition === 'string') {
      const keep = evaluate({ Condition: resource.Condition }, scope);
      if (keep !== true) continue;
    }
    const evaluated = evaluate(resource.Properties ?? {}, scope);
    const properties = isRecord(evaluated) ? evaluated : {};
    switch (resource.Type) {
      case 'AWS::IoT::Thing':
        result.thing = planThing(logical, properties, resource.OverrideSettings, existingThing);
        break;
      case 'AWS::IoT::Certificate':
        result.certificateStatus = certificateStatus(logical, properties, certificate);
        break;
      case 'AWS::IoT::Policy':
        result.policies.push(policy(logical, properties));
        break;
      default:
        throw new TemplateProblem(
          'InvalidRequestException',
          `Resource ${logical} has the unsupported type ${String(resource.Type)}.`,
        );
    }
  }
  for (const [key, raw] of Object.entries(template.DeviceConfiguration ?? {})) {
    const value = evaluate(raw, scope);
    if (value === NO_VALUE) continue;
    if (typeof value !== 'string') {
      throw new TemplateProblem(
        'InvalidRequestException',
        `DeviceConfiguration.${key} must be a string.`,
        key,
      );
    }
    result.deviceConfiguration[key] = value;
  }
  return result;
}

function planThing(
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
    ...(mergedType === undefined ? {} : { thingTypeName: mergedType }),
  };
}

function sorted(record: Record<string, string>): Array<[string, string]> {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
}

function certificateStatus(
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

function policy(logical: string, properties: Record<string, unknown>): { name: string; document?: unknown } {
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
