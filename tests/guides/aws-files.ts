/**
 * Reading the AWS files the guides show (the provisioning template, the IoT policies) well enough to test
 * them: a template becomes a simulator template, and a policy answers "is this action on this resource
 * allowed?" with IoT's `*` and `?` wildcards.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod/mini';
import type { TemplateDefinition } from '../../src/simulator/index.js';
import { ROOT } from './embedded-examples.js';

const Ref = z.object({ Ref: z.string() });
const StringValue = z.union([
  z.string(),
  Ref,
  z.object({ 'Fn::Join': z.tuple([z.string(), z.array(z.union([z.string(), Ref]))]) }),
]);

const ProvisioningTemplate = z.object({
  Parameters: z.record(z.string(), z.object({ Type: z.string(), Default: z.optional(z.string()) })),
  Resources: z.record(
    z.string(),
    z.object({ Type: z.string(), Properties: z.optional(z.record(z.string(), z.unknown())) }),
  ),
  DeviceConfiguration: z.optional(z.record(z.string(), z.string())),
});

/** Read a JSON file under the root. */
export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(join(ROOT, path), 'utf8'));
}

/** `{ "Fn::Join": ["", ["sensor-", { "Ref": "SerialNumber" }]] }` → `sensor-{{SerialNumber}}`. */
function placeholders(value: z.infer<typeof StringValue>): string {
  if (typeof value === 'string') return value;
  if ('Ref' in value) return `{{${value.Ref}}}`;
  const [separator, parts] = value['Fn::Join'];
  return parts.map(placeholders).join(separator);
}

/** The simulator's version of an AWS provisioning template (thing name, configuration, required parameters). */
export function simulatorTemplate(json: unknown): TemplateDefinition {
  const template = ProvisioningTemplate.parse(json);
  const resources = Object.values(template.Resources);
  const thing = resources.find((r) => r.Type === 'AWS::IoT::Thing');
  const certificate = resources.find((r) => r.Type === 'AWS::IoT::Certificate');
  const status = z.optional(z.enum(['ACTIVE', 'INACTIVE'])).parse(certificate?.Properties?.Status);
  return {
    ...(thing === undefined
      ? {}
      : { thingName: placeholders(StringValue.parse(thing.Properties?.ThingName)) }),
    ...(template.DeviceConfiguration === undefined
      ? {}
      : { deviceConfiguration: template.DeviceConfiguration }),
    requiredParameters: Object.entries(template.Parameters)
      .filter(([name, p]) => p.Default === undefined && !name.startsWith('AWS::'))
      .map(([name]) => name),
    ...(status === undefined ? {} : { certificateStatus: status }),
  };
}

const OneOrMore = z.union([z.string(), z.array(z.string())]);
const Policy = z.object({
  Version: z.literal('2012-10-17'),
  Statement: z.array(z.object({ Effect: z.enum(['Allow', 'Deny']), Action: OneOrMore, Resource: OneOrMore })),
});

/** An IoT policy document, as "may `action` on `resource`?". Deny wins over Allow. */
export function policyFrom(json: unknown): (action: string, resource: string) => boolean {
  const policy = Policy.parse(json);
  const list = (value: string | string[]) => (typeof value === 'string' ? [value] : value);
  const matches = (pattern: string, resource: string) =>
    new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    ).test(resource);
  return (action, resource) => {
    const hits = policy.Statement.filter(
      (s) => list(s.Action).includes(action) && list(s.Resource).some((r) => matches(r, resource)),
    );
    return hits.some((s) => s.Effect === 'Allow') && !hits.some((s) => s.Effect === 'Deny');
  };
}
