/**
 * AWS IoT provisioning templates as `aws iot create-provisioning-template --template-body` takes them:
 * `Parameters`, `Mappings`, `Conditions`, `Resources` (`AWS::IoT::Thing`, `AWS::IoT::Certificate`,
 * `AWS::IoT::Policy`, with `OverrideSettings`) and `DeviceConfiguration`, run as RegisterThing runs them.
 */
import * as x509 from '../device/x509.js';
import { type EvaluationScope, evaluate, NO_VALUE, TemplateProblem } from './intrinsics.js';
import {
  certificateStatus,
  OVERRIDES,
  type PlannedThing,
  planThing,
  policyResource,
} from './template-resources.js';
import type { AwsProvisioningTemplate, ThingRecord } from './types.js';

export type { PlannedThing } from './template-resources.js';

const RESOURCE_TYPES = ['AWS::IoT::Thing', 'AWS::IoT::Certificate', 'AWS::IoT::Policy'];

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
        result.policies.push(policyResource(logical, properties));
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

/**
 * The references a template makes that can never resolve (a `Ref`, `Fn::Sub` variable, condition or
 * mapping that is not defined): what AWS refuses when the template is created.
 */
function unresolvedReferences(
  value: unknown,
  scope: Omit<EvaluationScope, 'values'>,
  found: string[] = [],
): string[] {
  if (Array.isArray(value)) {
    for (const item of value) unresolvedReferences(item, scope, found);
    return found;
  }
  if (!isRecord(value)) return found;
  const known = (name: string) =>
    name === 'AWS::NoValue' ||
    name.startsWith('AWS::IoT::') ||
    scope.declared.has(name) ||
    scope.resources.has(name);
  for (const [key, item] of Object.entries(value)) {
    if (key === 'Ref' && typeof item === 'string' && !known(item)) found.push(`Ref ${item}`);
    if (key === 'Fn::Sub') {
      const text = Array.isArray(item) ? item[0] : item;
      const own = Array.isArray(item) && isRecord(item[1]) ? Object.keys(item[1]) : [];
      if (typeof text === 'string') {
        for (const [, name = ''] of text.matchAll(/\$\{([^!}][^}]*)\}/g)) {
          if (!known(name) && !own.includes(name)) found.push(`Fn::Sub \${${name}}`);
        }
      }
    }
    if ((key === 'Condition' || key === 'Fn::If') && !Array.isArray(item) && typeof item === 'string') {
      if (!Object.hasOwn(scope.conditions, item)) found.push(`Condition ${item}`);
    }
    if (key === 'Fn::If' && Array.isArray(item) && typeof item[0] === 'string') {
      if (!Object.hasOwn(scope.conditions, item[0])) found.push(`Condition ${item[0]}`);
    }
    if (key === 'Fn::FindInMap' && Array.isArray(item) && typeof item[0] === 'string') {
      if (!Object.hasOwn(scope.mappings, item[0])) found.push(`Mapping ${item[0]}`);
    }
    unresolvedReferences(item, scope, found);
  }
  return found;
}
