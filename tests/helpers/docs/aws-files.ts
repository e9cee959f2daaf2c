/**
 * Reading the AWS files the guides show (the provisioning template, the IoT policies): the template goes
 * to the simulator as it is, and a policy answers "is this action on this resource allowed?" through the
 * simulator's own policy evaluator.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod/mini';
import {
  type AwsProvisioningTemplate,
  type IotAction,
  IotPolicy,
  isAllowed,
} from '../../../src/simulator/index.js';
import { ROOT } from './embedded-examples.js';

const ProvisioningTemplate = z.looseObject({ Resources: z.record(z.string(), z.unknown()) });

/** Read a JSON file under the root. */
export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(join(ROOT, path), 'utf8'));
}

/** An AWS template body, checked to have `Resources` (the simulator checks the rest). */
export function awsTemplate(json: unknown): AwsProvisioningTemplate {
  return ProvisioningTemplate.parse(json);
}

/** An IoT policy document, as "may `action` on `resource` (a full ARN)?". Deny wins over Allow. */
export function policyFrom(json: unknown): (action: IotAction, resource: string) => boolean {
  const policy = IotPolicy.parse(json);
  return (action, resource) => {
    const tail = /^arn:aws:iot:[^:]*:[^:]*:(.*)$/s.exec(resource)?.[1] ?? resource;
    return isAllowed([policy], action, tail, { clientId: 'guide-test' });
  };
}
