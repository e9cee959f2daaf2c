/**
 * Provisioning templates, reduced to what RegisterThing's answer depends on: required parameters, a thing
 * name and a device configuration rendered from `{{Parameter}}` placeholders, and the pre-provisioning hook
 * with AWS's input shape and time limit.
 */

import { REAL_TIMERS, withDeadline } from '../internal/deadline.js';
import { InvalidArgumentError } from '../protocol/errors.js';
import { StringMapSchema } from '../protocol/schemas.js';
import { assertTemplateName } from '../protocol/topics.js';
import {
  type AwsTemplateResult,
  certificateParameters,
  checkAwsTemplate,
  isAwsTemplate,
  type PlannedThing,
  runAwsTemplate,
  templateValues,
} from './aws-template.js';
import { commandHook } from './hooks.js';
import { TemplateProblem } from './intrinsics.js';
import type {
  AwsProvisioningTemplate,
  PreProvisioningHookInput,
  TemplateDefinition,
  ThingRecord,
} from './types.js';

/** The template every simulator has unless told otherwise. */
export const DEFAULT_TEMPLATES: Readonly<Record<string, TemplateDefinition>> = {
  DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] },
};

/** The account the simulated ARNs name. */
export const SIMULATED_ACCOUNT = 'arn:aws:iot:us-east-1:123456789012';

/** AWS's thing-name rule. */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;

/** What running a template gives: the answer's fields, or a rejection (status 400 or 403). */
export type TemplateOutcome =
  | {
      ok: true;
      thingName?: string;
      deviceConfiguration: Record<string, string>;
      parameters: Record<string, string>;
      /** AWS templates: the thing with its attributes, groups and type. */
      thing?: PlannedThing;
      /** AWS templates: the certificate's status and the policies to attach. */
      certificateStatus?: 'ACTIVE' | 'INACTIVE';
      policies?: AwsTemplateResult['policies'];
    }
  | {
      ok: false;
      statusCode: 400 | 403 | 409;
      errorCode: 'InvalidParameters' | 'AccessDenied' | 'InvalidRequestException' | 'ResourceConflict';
      errorMessage: string;
    };

/**
 * Check template names and definitions once, at start, and turn AWS template bodies (objects with
 * `Resources`, or `templateBody` as JSON text) into definitions with a parsed `templateBody`.
 * @throws {InvalidArgumentError} on a bad name, or an AWS template that create-provisioning-template refuses.
 */
export function validateTemplates(
  templates: Record<string, TemplateDefinition | AwsProvisioningTemplate>,
): Record<string, TemplateDefinition> {
  const out: Record<string, TemplateDefinition> = {};
  for (const [name, template] of Object.entries(templates)) {
    assertTemplateName(name);
    const definition: TemplateDefinition = isAwsTemplate(template) ? { templateBody: template } : template;
    let body: unknown = definition.templateBody;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        throw new InvalidArgumentError(`The template ${name} is not valid JSON.`);
      }
    }
    if (body !== undefined) {
      if (!isAwsTemplate(body)) throw new InvalidArgumentError(`The template ${name} has no Resources.`);
      const problems = checkAwsTemplate(body);
      if (problems.length > 0) {
        throw new InvalidArgumentError(`The template ${name} is not valid: ${problems.join(' ')}`);
      }
      out[name] = { ...definition, templateBody: body };
    } else {
      out[name] = definition;
    }
  }
  return out;
}

/** The ARN of a template, as the hook receives it. */
export function templateArn(name: string): string {
  return `${SIMULATED_ACCOUNT}:provisioningtemplate/${name}`;
}

/**
 * Run `template`: the hook first (it may override parameters), then the required parameters, then the
 * rendering. `signal` aborts the wait for the hook when the simulator closes.
 */
export async function runTemplate(
  template: TemplateDefinition,
  hookInput: PreProvisioningHookInput,
  options: {
    hookTimeoutMs: number;
    signal: AbortSignal;
    existingThing?: (name: string) => ThingRecord | undefined;
  },
): Promise<TemplateOutcome> {
  let parameters = { ...hookInput.parameters };
  if (template.preProvisioningHook !== undefined) {
    const verdict = await callHook(template, hookInput, options);
    if (!verdict.ok)
      return { ok: false, statusCode: 403, errorCode: 'AccessDenied', errorMessage: verdict.reason };
    parameters = { ...parameters, ...verdict.overrides };
  }
  // The service sets its own parameters: a device value for an `AWS::IoT::` name is ignored, so a device
  // cannot name its thing after another certificate's id.
  parameters = Object.fromEntries(Object.entries(parameters).filter(([name]) => !isBuiltIn(name)));
  const body = template.templateBody;
  if (body !== undefined && typeof body !== 'string') {
    return runAws(body, parameters, hookInput, options.existingThing ?? (() => undefined));
  }
  const builtIns = { 'AWS::IoT::Certificate::Id': hookInput.certificateId };
  const values: Record<string, string> = { ...parameters, ...builtIns };
  for (const required of template.requiredParameters ?? []) {
    if (values[required] === undefined) return invalid(`The template requires the parameter ${required}.`);
  }
  const render = (text: string): string | { missing: string } => {
    let missing: string | undefined;
    const out = text.replace(PLACEHOLDER, (_match, name: string) => {
      const value = values[name];
      if (value === undefined) missing ??= name;
      return value ?? '';
    });
    return missing === undefined ? out : { missing };
  };
  const deviceConfiguration: Record<string, string> = {};
  for (const [key, raw] of Object.entries(template.deviceConfiguration ?? {})) {
    const value = render(raw);
    if (typeof value !== 'string') return invalid(`The template requires the parameter ${value.missing}.`);
    deviceConfiguration[key] = value;
  }
  if (template.thingName === undefined) return { ok: true, deviceConfiguration, parameters };
  const thingName = render(template.thingName);
  if (typeof thingName !== 'string')
    return invalid(`The template requires the parameter ${thingName.missing}.`);
  if (!THING_NAME.test(thingName)) {
    return invalid('The thing name the template made is not valid: use 1 to 128 of [a-zA-Z0-9:_-].');
  }
  return { ok: true, thingName, deviceConfiguration, parameters };
}

function runAws(
  body: AwsProvisioningTemplate,
  parameters: Record<string, string>,
  input: PreProvisioningHookInput,
  existingThing: (name: string) => ThingRecord | undefined,
): TemplateOutcome {
  const builtIns = certificateParameters(input.certificateId, input.certificatePem);
  try {
    const result = runAwsTemplate(body, templateValues(body, parameters, builtIns), input, existingThing);
    return {
      ok: true,
      ...(result.thing === undefined ? {} : { thingName: result.thing.thingName, thing: result.thing }),
      deviceConfiguration: result.deviceConfiguration,
      parameters,
      certificateStatus: result.certificateStatus,
      policies: result.policies,
    };
  } catch (error) {
    if (!(error instanceof TemplateProblem)) throw error;
    const statusCode = error.errorCode === 'ResourceConflict' ? 409 : 400;
    return { ok: false, statusCode, errorCode: error.errorCode, errorMessage: error.message };
  }
}

/** True for the names AWS reserves for parameters the service sets (`AWS::IoT::Certificate::Id`, …). */
export function isBuiltIn(name: string): boolean {
  return name.startsWith('AWS::IoT::');
}

function invalid(errorMessage: string): TemplateOutcome {
  return { ok: false, statusCode: 400, errorCode: 'InvalidParameters', errorMessage };
}

type HookVerdict = { ok: true; overrides: Record<string, string> } | { ok: false; reason: string };

async function callHook(
  template: TemplateDefinition,
  input: PreProvisioningHookInput,
  options: { hookTimeoutMs: number; signal: AbortSignal },
): Promise<HookVerdict> {
  const configured = template.preProvisioningHook;
  if (configured === undefined) return { ok: true, overrides: {} };
  const hook =
    typeof configured === 'function'
      ? configured
      : commandHook(configured.command, { timeoutMs: options.hookTimeoutMs, signal: options.signal });
  const answered = (async (): Promise<HookVerdict> => {
    let result: unknown;
    try {
      result = await hook({ ...input, parameters: { ...input.parameters } });
    } catch {
      return { ok: false, reason: 'The pre-provisioning hook failed.' };
    }
    if (typeof result !== 'object' || result === null || !('allowProvisioning' in result)) {
      return { ok: false, reason: 'The pre-provisioning hook answered without allowProvisioning.' };
    }
    if (result.allowProvisioning !== true)
      return { ok: false, reason: 'The pre-provisioning hook denied provisioning.' };
    const overrides = 'parameterOverrides' in result ? result.parameterOverrides : undefined;
    if (overrides === undefined) return { ok: true, overrides: {} };
    const parsed = StringMapSchema.safeParse(overrides);
    if (!parsed.success)
      return { ok: false, reason: 'The pre-provisioning hook sent invalid parameterOverrides.' };
    return { ok: true, overrides: parsed.data };
  })();
  try {
    // `answered` never rejects: only the deadline or the simulator closing lands here.
    return await withDeadline(
      answered,
      options.hookTimeoutMs,
      () => new Error('hook timeout'),
      REAL_TIMERS,
      options.signal,
    );
  } catch {
    return {
      ok: false,
      reason: options.signal.aborted
        ? 'The simulator closed while the hook ran.'
        : `The pre-provisioning hook did not answer within ${options.hookTimeoutMs} ms.`,
    };
  }
}
