/**
 * planProvision(): every option of provision() checked once, before any traffic, with the defaults
 * filled in. Plain MQTT to this machine needs no claim credentials, so these plans open nothing.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { DEFAULT_PROVISION_TIMEOUT_MS, planProvision } from '../../src/provision/plan.js';
import { DEFAULT_RETRY } from '../../src/provision/retry.js';

const BASE = { endpoint: 'mqtt://127.0.0.1:1883', templateName: 'Factory' };

/** A plan of BASE plus `extra`, which may hold values the option types would refuse. */
function plan(extra: object = {}) {
  return planProvision({ ...BASE, ...extra });
}

function refusal(extra: object): string {
  try {
    plan(extra);
  } catch (error) {
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    return error instanceof Error ? error.message : '';
  }
  throw new Error(`plan(${JSON.stringify(extra)}) was accepted`);
}

describe('planProvision', () => {
  it('fills in every default', () => {
    const p = plan();
    expect(p).toMatchObject({
      endpoint: { protocol: 'mqtt', host: '127.0.0.1', port: 1883, alpnProtocols: [] },
      client: undefined,
      templateName: 'Factory',
      protocolVersion: 4,
      format: 'json',
      timeoutMs: DEFAULT_PROVISION_TIMEOUT_MS,
      keys: { kind: 'server' },
      existing: 'reuse',
      retry: DEFAULT_RETRY,
      verify: false,
      parameters: undefined,
      outDir: undefined,
    });
  });

  it('reads the key source in each of its forms', () => {
    expect(plan({ keys: 'generate' }).keys).toEqual({ kind: 'generate', type: 'ec-p256' });
    expect(plan({ keys: { generate: 'rsa-2048' } }).keys).toEqual({ kind: 'generate', type: 'rsa-2048' });
    expect(refusal({ keys: { generate: 'rsa-1024' } })).toMatch(/keys.generate must be one of/);
    expect(refusal({ keys: { csr: 'not a pem' } })).toMatch(/keys.csr must be a PEM/);
    expect(refusal({ keys: 'sometimes' })).toMatch(/keys must be/);
  });

  it('turns retries off with retry: false, and checks a retry policy', () => {
    expect(plan({ retry: false }).retry.attempts).toBe(1);
    expect(refusal({ retry: { attempts: 0 } })).toMatch(/retry.attempts/);
  });

  it('refuses a misspelt option, naming the one meant', () => {
    expect(refusal({ outdir: '/tmp/x' })).toMatch(/Unknown option "outdir".*did you mean "outDir"\?/);
  });

  it('needs an endpoint or a client', () => {
    expect(() => planProvision({ templateName: 'Factory' })).toThrow(
      /either an endpoint .* or a connected client/,
    );
  });

  it('refuses plain MQTT to another machine unless insecure is set, and then warns once', () => {
    expect(refusal({ endpoint: 'mqtt://192.0.2.1:1883' })).toMatch(/plain MQTT to another machine/);
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      expect(plan({ endpoint: 'mqtt://192.0.2.7:1883', insecure: true }).endpoint?.host).toBe('192.0.2.7');
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('needs claim credentials for mutual TLS, before any connection', () => {
    expect(refusal({ endpoint: 'mqtts://example.com:8883' })).toMatch(/claim/i);
  });

  it.each([
    [{ templateName: 'has space' }, /template/i],
    [{ format: 'xml' }, /format/i],
    [{ timeoutMs: 0 }, /timeoutMs/],
    [{ signal: 'stop' }, /signal/],
    [{ protocolVersion: 3 }, /protocolVersion/],
    [{ outDir: '' }, /outDir/],
    [{ existing: 'keep' }, /existing/],
    [{ onProgress: 'log' }, /onProgress/],
    [{ parameters: { SerialNumber: 42 } }, /SerialNumber/],
    [{ verify: true, endpoint: undefined, client: undefined }, /endpoint/],
  ])('refuses %j, saying which option is wrong', (extra, message) => {
    expect(refusal(extra)).toMatch(message);
  });

  it('keeps a throwing onProgress from failing the run: it becomes a process warning', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const p = plan({
        onProgress: () => {
          throw new Error('listener bug');
        },
      });
      expect(() => p.onProgress({ step: 'subscribed', attempt: 1 })).not.toThrow();
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('listener bug'), expect.anything());
    } finally {
      warn.mockRestore();
    }
  });
});
