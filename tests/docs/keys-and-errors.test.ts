/**
 * docs/guides/keys-on-the-device.md and docs/guides/handling-errors.md: both key flows of the example,
 * and the error example's advice for every code, with the failures made by the simulator.
 */
import { createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { adviceFor, main as handleErrors, type Outcome } from '../../examples/handle-errors.js';
import { main as keysOnDevice } from '../../examples/keys-on-device.js';
import {
  AbortedError,
  ClientClosedError,
  ConnectionLostError,
  ERROR_CODES,
  type ErrorCode,
  type FleetProvisioningError,
  InvalidArgumentError,
  InvalidResponseError,
  PersistFailedError,
  PublishFailedError,
  RejectedError,
  SubscribeFailedError,
  TimeoutError,
} from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { awsTemplate, policyFrom, readJson } from '../helpers/docs/aws-files.js';

let sim: Simulator;
let dir: string;
const claim = () => ({
  endpoint: sim.url,
  claimCertificate: sim.claimCertificate,
  claimPrivateKey: sim.claimPrivateKey,
  caCertificate: sim.caCertificate,
});

beforeAll(async () => {
  const template = awsTemplate(readJson('examples/aws/provisioning-template.json'));
  sim = await startSimulator({ serverKeyType: 'ec-p256', templates: { FactoryTemplate: template } });
  dir = await mkdtemp(join(tmpdir(), 'guide-keys-'));
});
afterAll(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  jest.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  sim.faults.clear();
  jest.restoreAllMocks();
});

describe('examples/keys-on-device.ts', () => {
  it('makes an EC P-384 key on the device, or uses the secure element’s CSR and writes no key', async () => {
    const dirs = { made: join(dir, 'made'), secureElement: join(dir, 'secure-element') };
    const { made, secureElement } = await keysOnDevice(claim(), dirs);

    const key = createPrivateKey(made.privateKey ?? '');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(made.files?.privateKey).toBeDefined();
    expect((await stat(made.files?.privateKey ?? '')).mode & 0o777).toBe(0o600);

    expect(secureElement.privateKey).toBeUndefined();
    expect(secureElement.files?.privateKey).toBeUndefined();
    expect(existsSync(join(dirs.secureElement, 'private.pem.key'))).toBe(false);
    expect(existsSync(join(dirs.secureElement, 'certificate.pem.crt'))).toBe(true);

    const issued = sim.certificates();
    for (const device of [made, secureElement]) {
      expect(issued.find((c) => c.certificateId === device.certificateId)).toMatchObject({
        issuedBy: 'CreateCertificateFromCsr',
        status: 'ACTIVE',
      });
    }
  });

  it('needs create-from-csr in the claim policy', () => {
    const may = policyFrom(readJson('examples/aws/claim-policy.json'));
    expect(
      may('iot:Publish', 'arn:aws:iot:eu-west-1:123456789012:topic/$aws/certificates/create-from-csr/json'),
    ).toBe(true);
  });
});

describe('examples/handle-errors.ts: adviceFor', () => {
  const examples: Record<ErrorCode, FleetProvisioningError> = {
    INVALID_ARGUMENT: new InvalidArgumentError('bad'),
    REJECTED: new RejectedError({
      operation: 'RegisterThing',
      statusCode: 404,
      errorCode: 'ResourceNotFound',
      errorMessage: 'no such template',
    }),
    TIMEOUT: new TimeoutError({ operation: 'RegisterThing', phase: 'response', timeoutMs: 1 }),
    INVALID_RESPONSE: new InvalidResponseError({ issues: [{ path: 'certificateId', problem: 'missing' }] }),
    SUBSCRIBE_FAILED: new SubscribeFailedError({
      topic: '$aws/certificates/create/json/accepted',
      reasonCode: 0x80,
    }),
    PUBLISH_FAILED: new PublishFailedError('could not publish'),
    CONNECTION_LOST: new ConnectionLostError('dropped'),
    CLIENT_CLOSED: new ClientClosedError(),
    ABORTED: new AbortedError(new Error('stop')),
    PERSIST_FAILED: new PersistFailedError('disk full'),
  };

  it.each(ERROR_CODES)('has advice for %s', (code) => {
    expect(['retry-later', 'fix-configuration', 'fix-device', 'investigate', 'stop']).toContain(
      adviceFor(examples[code]),
    );
  });

  it('retries 429 and 5xx later, and treats anything that is not ours as a bug', () => {
    const rejected = (statusCode: number, errorCode: string) =>
      adviceFor(new RejectedError({ operation: 'RegisterThing', statusCode, errorCode, errorMessage: '' }));
    expect(rejected(429, 'ThrottlingException')).toBe('retry-later');
    expect(rejected(503, 'ServiceUnavailable')).toBe('retry-later');
    expect(rejected(400, 'InvalidCSR')).toBe('fix-device');
    expect(rejected(403, 'AccessDenied')).toBe('fix-configuration');
    expect(adviceFor(new TypeError('oops'))).toBe('investigate');
  });
});

describe('examples/handle-errors.ts: main against the simulator', () => {
  const fast = { retry: { attempts: 2, baseDelayMs: 1 } } as const;
  const failure = (outcome: Outcome) =>
    outcome.ok ? { ok: true } : { code: outcome.code, advice: outcome.advice };

  it('provisions when nothing goes wrong', async () => {
    const outcome = await handleErrors(claim(), { parameters: { SerialNumber: 'SN-E1' } });
    expect(outcome.ok && outcome.device.thingName).toBe('sensor-SN-E1');
  });

  it.each([
    ['INVALID_ARGUMENT', 'fix-configuration', { templateName: 'Factory/Template' }, undefined],
    ['REJECTED', 'fix-configuration', { parameters: {} }, undefined],
    ['TIMEOUT', 'retry-later', { timeoutMs: 300, retry: false }, { type: 'silent' }],
    ['INVALID_RESPONSE', 'investigate', {}, { type: 'malformed' }],
    ['SUBSCRIBE_FAILED', 'fix-configuration', {}, { type: 'refuseSubscribe' }],
    ['CONNECTION_LOST', 'retry-later', { retry: false }, { type: 'disconnect' }],
  ] as const)('%s → %s', async (code, advice, options, fault) => {
    if (fault !== undefined) sim.faults.script('CreateKeysAndCertificate', fault);
    const outcome = await handleErrors(claim(), { ...options });
    expect(failure(outcome)).toEqual({ code, advice });
    expect(outcome.ok || outcome.message).not.toMatch(/-----BEGIN|PRIVATE KEY/);
  });

  it('REJECTED 429 after the retries → retry-later', async () => {
    sim.faults.script('RegisterThing', { type: 'reject', statusCode: 429 }, { times: 2 });
    expect(failure(await handleErrors(claim(), fast))).toEqual({ code: 'REJECTED', advice: 'retry-later' });
  });

  it('REJECTED InvalidCSR → fix-device', async () => {
    // A CSR that does not parse is refused before any traffic (INVALID_ARGUMENT); this is the service's no.
    sim.faults.script('CreateCertificateFromCsr', {
      type: 'reject',
      statusCode: 400,
      errorCode: 'InvalidCSR',
    });
    const outcome = await handleErrors(claim(), { keys: 'generate', ...fast });
    expect(failure(outcome)).toEqual({ code: 'REJECTED', advice: 'fix-device' });
  });

  it('ABORTED → stop', async () => {
    const controller = new AbortController();
    const outcome = await handleErrors(claim(), {
      signal: controller.signal,
      onProgress: (event) => {
        if (event.step === 'subscribed') controller.abort(new Error('shutting down'));
      },
    });
    expect(failure(outcome)).toEqual({ code: 'ABORTED', advice: 'stop' });
  });

  it('PERSIST_FAILED → fix-device', async () => {
    const file = join(dir, 'not-a-directory');
    await writeFile(file, 'x');
    const outcome = await handleErrors(claim(), { outDir: join(file, 'credentials') });
    expect(failure(outcome)).toEqual({ code: 'PERSIST_FAILED', advice: 'fix-device' });
  });
});
