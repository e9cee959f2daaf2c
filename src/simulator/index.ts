/**
 * The local AWS IoT Fleet Provisioning simulator (`iot-fleet-provisioning/simulator`): an in-process MQTT
 * broker with mutual TLS that answers the service's 18 topics as AWS IoT Core does, issues real X.509
 * certificates from its own CA, keeps a registry of things and certificates, and misbehaves on request.
 *
 * @example
 * const sim = await startSimulator({ serverKeyType: 'ec-p256' });
 * const client = await mqtt.connectAsync(sim.url, {
 *   ca: sim.caCertificate, cert: sim.claimCertificate, key: sim.claimPrivateKey,
 * });
 * // … provision …
 * await sim.close();
 * @packageDocumentation
 */

export type { Answer, SimulatorErrorCode } from './answers.js';
export { REJECTIONS } from './answers.js';
export { commandHook } from './hooks.js';
export type { IotAction, PolicyContext } from './iam-policy.js';
export { IotPolicy, isAllowed } from './iam-policy.js';
export { IDENTITY_FILES } from './identity.js';
export { TOKEN_LIFETIME_MS } from './registry.js';
export { startSimulator } from './start.js';
export { DEFAULT_TEMPLATES } from './templates.js';
export type {
  AnswerEvent,
  AwsProvisioningTemplate,
  CertificateRecord,
  CertificateStatus,
  CommandHook,
  Fault,
  FaultScript,
  PreProvisioningHook,
  PreProvisioningHookInput,
  PreProvisioningHookResult,
  RequestLogEntry,
  RequestLogType,
  Simulator,
  SimulatorOptions,
  TemplateDefinition,
  ThingRecord,
} from './types.js';
