/**
 * `fleet-provision doctor` without a network: runs an AWS provisioning template and the claim and device
 * policies in in-process simulators, the way a factory run would meet them, and reports what would fail
 * with the AWS error a device would get.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { optional } from '../../internal/optional.js';
import type { OperationName } from '../../protocol/errors.js';
import { decodePayload, encodePayload } from '../../protocol/payload.js';
import { operationTopics } from '../../protocol/topics.js';
import type { Simulator } from '../../simulator/index.js';

/** One check and its outcome. */
export interface DoctorCheck {
  /** What was checked, e.g. `claim policy: SUBSCRIBE $aws/certificates/create/json/accepted`. */
  check: string;
  ok: boolean;
  /** What was seen, or what is wrong and how it would show. */
  detail: string;
  /** The AWS error a device (or create-provisioning-template) would get, when there is one. */
  awsError?: string;
}

/** What the offline doctor is given. */
export interface OfflineInput {
  template: unknown;
  claimPolicy: unknown;
  devicePolicy?: unknown;
  parameters: Record<string, string>;
  templateName: string;
  clientId: string;
}

const DEADLINE_MS = 5_000;

/** The template name a claim policy allows, when it names exactly one. */
export function templateNameFromPolicy(policy: unknown): string | undefined {
  const names = new Set(
    [...JSON.stringify(policy).matchAll(/provisioning-templates\/([0-9A-Za-z_-]{1,36})\//g)].map((m) => m[1]),
  );
  return names.size === 1 ? [...names][0] : undefined;
}

/** Run every offline check. */
export async function offlineChecks(input: OfflineInput): Promise<DoctorCheck[]> {
  const { startSimulator, IotPolicy } = await import('../../simulator/index.js');
  const checks: DoctorCheck[] = [];
  let claimPolicyOk = true;
  try {
    IotPolicy.parse(input.claimPolicy);
  } catch (error) {
    claimPolicyOk = false;
    checks.push(fail('claim policy: document', message(error), 'MalformedPolicyException'));
  }
  let devicePolicy = false;
  if (input.devicePolicy !== undefined) {
    try {
      IotPolicy.parse(input.devicePolicy);
      devicePolicy = true;
    } catch (error) {
      checks.push(fail('device policy: document', message(error), 'MalformedPolicyException'));
    }
  }
  let templateSim: Simulator | undefined;
  if (asBody(input.template) === undefined) {
    checks.push(
      fail(
        'template: create-provisioning-template',
        'the template has no Resources',
        'InvalidRequestException',
      ),
    );
  } else
    try {
      templateSim = await startSimulator({
        tls: false,
        serverKeyType: 'ec-p256',
        templates: { [input.templateName]: { templateBody: asBody(input.template) ?? { Resources: {} } } },
      });
      checks.push(ok('template: create-provisioning-template', 'the template is valid'));
    } catch (error) {
      checks.push(fail('template: create-provisioning-template', message(error), 'InvalidRequestException'));
    }
  if (templateSim !== undefined) {
    try {
      checks.push(...(await templateRun(templateSim, input, devicePolicy)));
    } finally {
      await templateSim.close();
    }
  }
  if (claimPolicyOk) checks.push(...(await claimPolicyChecks(input)));
  return checks;
}

/** RegisterThing on a plain simulator: what the template does with these parameters. */
async function templateRun(
  sim: Simulator,
  input: OfflineInput,
  devicePolicy: boolean,
): Promise<DoctorCheck[]> {
  const { isAllowed, IotPolicy } = await import('../../simulator/index.js');
  const client = await mqtt.connectAsync(sim.url, { reconnectPeriod: 0, connectTimeout: DEADLINE_MS });
  try {
    const created = await ask(client, 'CreateKeysAndCertificate', input.templateName, {});
    const token = created.value.certificateOwnershipToken;
    if (created.kind !== 'accepted' || typeof token !== 'string') {
      return [fail('template: RegisterThing', 'the simulator issued no certificate')];
    }
    const answer = await ask(client, 'RegisterThing', input.templateName, {
      certificateOwnershipToken: token,
      parameters: input.parameters,
    });
    if (answer.kind === 'rejected') {
      const { statusCode, errorCode, errorMessage } = answer.value;
      return [
        fail('template: RegisterThing', String(errorMessage), `${String(statusCode)} ${String(errorCode)}`),
      ];
    }
    const thingName = answer.value.thingName;
    const out = [
      ok(
        'template: RegisterThing',
        typeof thingName === 'string' ? `accepted: thing ${thingName}` : 'accepted (no thing)',
      ),
    ];
    if (devicePolicy && typeof thingName === 'string') {
      const thing = sim.things().find((t) => t.thingName === thingName);
      const context = {
        clientId: thingName,
        thing: {
          thingName,
          ...optional('attributes', thing?.attributes),
          ...optional('thingTypeName', thing?.thingTypeName),
        },
      };
      const policy = IotPolicy.parse(input.devicePolicy);
      const allowed = isAllowed([policy], 'iot:Connect', `client/${thingName}`, context);
      out.push(
        allowed
          ? ok('device policy: CONNECT as the thing', `iot:Connect allowed for client id ${thingName}`)
          : fail(
              'device policy: CONNECT as the thing',
              `the device policy does not allow iot:Connect for client id ${thingName} (the thing name the template makes): the device's first CONNECT with its new certificate is refused`,
              'CONNACK 5 (not authorized)',
            ),
      );
    }
    return out;
  } finally {
    await client.endAsync(true);
  }
}

/** The claim policy over mutual TLS: CONNECT, SUBSCRIBE to each answer topic, PUBLISH and Receive. */
async function claimPolicyChecks(input: OfflineInput): Promise<DoctorCheck[]> {
  const { startSimulator } = await import('../../simulator/index.js');
  const sim = await startSimulator({
    serverKeyType: 'ec-p256',
    claimPolicy: input.claimPolicy,
    templates: { [input.templateName]: { thingName: 'doctor-thing' } },
  });
  const checks: DoctorCheck[] = [];
  let client: MqttClient | undefined;
  try {
    try {
      client = await mqtt.connectAsync(sim.url, {
        ca: sim.caCertificate,
        cert: sim.claimCertificate,
        key: sim.claimPrivateKey,
        clientId: input.clientId,
        reconnectPeriod: 0,
        connectTimeout: DEADLINE_MS,
      });
      checks.push(ok('claim policy: CONNECT', `iot:Connect allowed for client id ${input.clientId}`));
    } catch {
      checks.push(
        fail(
          'claim policy: CONNECT',
          `the claim policy does not allow iot:Connect for client id ${input.clientId}`,
          'CONNACK 5 (not authorized)',
        ),
      );
      return checks;
    }
    const operations: OperationName[] = [
      'CreateKeysAndCertificate',
      'CreateCertificateFromCsr',
      'RegisterThing',
    ];
    for (const operation of operations) {
      const t = operationTopics(operation, 'json', input.templateName);
      for (const topic of [t.accepted, t.rejected]) {
        const granted = await client.subscribeAsync(topic, { qos: 1 }).then(
          () => true,
          () => false,
        );
        checks.push(
          granted
            ? ok(`claim policy: SUBSCRIBE ${topic}`, 'granted')
            : fail(
                `claim policy: SUBSCRIBE ${topic}`,
                `the claim policy does not allow iot:Subscribe on topicfilter/${topic}`,
                'SUBACK 0x80 (failure)',
              ),
        );
      }
    }
    checks.push(await publishCheck(client, sim, input.templateName));
  } finally {
    await client?.endAsync(true);
    await sim.close();
  }
  return checks;
}

async function publishCheck(client: MqttClient, sim: Simulator, templateName: string): Promise<DoctorCheck> {
  const t = operationTopics('CreateKeysAndCertificate', 'json', templateName);
  const name = `claim policy: PUBLISH ${t.request}`;
  const answered = new Promise<'answer' | 'closed' | 'silent'>((resolve) => {
    const timer = setTimeout(() => resolve('silent'), DEADLINE_MS);
    client.once('message', () => {
      clearTimeout(timer);
      resolve('answer');
    });
    client.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
  client.publish(t.request, '{}', { qos: 1 }, () => {});
  const outcome = await answered;
  if (outcome === 'closed') {
    return fail(
      name,
      `the claim policy does not allow iot:Publish on topic/${t.request}`,
      'connection closed',
    );
  }
  const refused = sim.requests().some((e) => e.type === 'answer' && e.allowed === false);
  if (outcome === 'silent' || refused) {
    return fail(
      name,
      'the claim policy does not allow iot:Receive on the answer topics: the device never gets an answer',
      'no answer (timeout)',
    );
  }
  return ok(name, 'published, and the answer was received');
}

async function ask(
  client: MqttClient,
  operation: OperationName,
  templateName: string,
  payload: unknown,
): Promise<{ kind: 'accepted' | 'rejected'; value: Record<string, unknown> }> {
  const t = operationTopics(operation, 'json', templateName);
  await client.subscribeAsync([t.accepted, t.rejected], { qos: 1 });
  const answer = new Promise<{ topic: string; payload: Buffer }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${operation}`)), DEADLINE_MS);
    const onMessage = (topic: string, bytes: Buffer) => {
      if (topic !== t.accepted && topic !== t.rejected) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve({ topic, payload: bytes });
    };
    client.on('message', onMessage);
  });
  await client.publishAsync(t.request, encodePayload(payload, 'json'), { qos: 1 });
  const { topic, payload: bytes } = await answer;
  const decoded = decodePayload(bytes, 'json');
  const value =
    decoded.ok && typeof decoded.value === 'object' && decoded.value !== null ? decoded.value : {};
  return { kind: topic === t.accepted ? 'accepted' : 'rejected', value: { ...value } };
}

function asBody(template: unknown): { Resources: Record<string, unknown> } | undefined {
  if (typeof template === 'object' && template !== null && 'Resources' in template) {
    const resources = template.Resources;
    if (typeof resources === 'object' && resources !== null && !Array.isArray(resources)) {
      return { ...template, Resources: { ...resources } };
    }
  }
  return undefined;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A passed check. */
export function ok(check: string, detail: string): DoctorCheck {
  return { check, ok: true, detail };
}

/** A failed check. */
export function fail(check: string, detail: string, awsError?: string): DoctorCheck {
  return { check, ok: false, detail, ...optional('awsError', awsError) };
}
