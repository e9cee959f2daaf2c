import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { FleetProvisioningError } from '../../src/protocol/errors.js';
import {
  allTopics,
  assertTemplateName,
  operationTopics,
  type PayloadFormat,
  parseTopic,
  TEMPLATE_NAME_PATTERN,
  topics,
} from '../../src/protocol/topics.js';

const formats: PayloadFormat[] = ['json', 'cbor'];

describe('topics', () => {
  it.each(formats)('builds the CreateKeysAndCertificate topics in %s', (f) => {
    expect(topics.createKeysAndCertificate(f)).toEqual({
      request: `$aws/certificates/create/${f}`,
      accepted: `$aws/certificates/create/${f}/accepted`,
      rejected: `$aws/certificates/create/${f}/rejected`,
    });
  });

  it.each(formats)('builds the CreateCertificateFromCsr topics in %s', (f) => {
    expect(topics.createCertificateFromCsr(f)).toEqual({
      request: `$aws/certificates/create-from-csr/${f}`,
      accepted: `$aws/certificates/create-from-csr/${f}/accepted`,
      rejected: `$aws/certificates/create-from-csr/${f}/rejected`,
    });
  });

  it.each(formats)('builds the RegisterThing topics in %s', (f) => {
    expect(topics.registerThing('Factory_T-1', f)).toEqual({
      request: `$aws/provisioning-templates/Factory_T-1/provision/${f}`,
      accepted: `$aws/provisioning-templates/Factory_T-1/provision/${f}/accepted`,
      rejected: `$aws/provisioning-templates/Factory_T-1/provision/${f}/rejected`,
    });
  });

  it('defaults to json', () => {
    expect(topics.createKeysAndCertificate().request).toBe('$aws/certificates/create/json');
    expect(topics.registerThing('T').request).toBe('$aws/provisioning-templates/T/provision/json');
  });

  it('lists 18 distinct topics for a template', () => {
    const all = allTopics('T');
    expect(all).toHaveLength(18);
    expect(new Set(all).size).toBe(18);
  });

  it('refuses an unknown format before building anything', () => {
    expect(() => operationTopics('CreateKeysAndCertificate', 'xml' as PayloadFormat)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('template names', () => {
  const bad = ['a/b', '+', '#', '', 'x'.repeat(37), 'caf\u00e9', 'a b', 'a+b', 'T\n', '$aws', '日本'];

  it.each(bad.map((name) => [JSON.stringify(name), name]))(
    'refuses %s with INVALID_ARGUMENT',
    (_label, name) => {
      let thrown: unknown;
      try {
        topics.registerThing(name);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(FleetProvisioningError);
      expect(thrown).toMatchObject({ code: 'INVALID_ARGUMENT' });
    },
  );

  it('refuses values that are not strings', () => {
    expect(() => assertTemplateName(42)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => assertTemplateName(undefined)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('accepts 1 and 36 characters', () => {
    expect(() => assertTemplateName('a')).not.toThrow();
    expect(() => assertTemplateName('a'.repeat(36))).not.toThrow();
  });

  const validName = fc.stringMatching(/^[0-9A-Za-z_-]{1,36}$/);

  it('accepts every name of the allowed alphabet and length (property)', () => {
    fc.assert(
      fc.property(validName, (name) => {
        expect(() => assertTemplateName(name)).not.toThrow();
        const parsed = parseTopic(topics.registerThing(name, 'cbor').rejected);
        expect(parsed).toEqual({
          operation: 'RegisterThing',
          format: 'cbor',
          kind: 'rejected',
          templateName: name,
        });
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('refuses every string outside the pattern (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => !TEMPLATE_NAME_PATTERN.test(s)),
        (name) => {
          expect(() => assertTemplateName(name)).toThrow(
            expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
          );
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });
});

describe('parseTopic', () => {
  it('round-trips all 18 topics', () => {
    for (const f of formats) {
      for (const [operation, set] of [
        ['CreateKeysAndCertificate', topics.createKeysAndCertificate(f)],
        ['CreateCertificateFromCsr', topics.createCertificateFromCsr(f)],
        ['RegisterThing', topics.registerThing('Tpl', f)],
      ] as const) {
        for (const kind of ['request', 'accepted', 'rejected'] as const) {
          const expected = operation === 'RegisterThing' ? { templateName: 'Tpl' } : {};
          expect(parseTopic(set[kind])).toEqual({ operation, format: f, kind, ...expected });
        }
      }
    }
  });

  it.each([
    'a/b',
    '$aws/certificates/create',
    '$aws/certificates/create/xml',
    '$aws/certificates/create/json/other',
    '$aws/certificates/create/json/accepted/extra',
    '$aws/certificates/create-from-csr/json/accepted/',
    '$aws/provisioning-templates/a/b/provision/json',
    '$aws/provisioning-templates/+/provision/json',
    '$aws/provisioning-templates//provision/json',
    '$aws/provisioning-templates/T/provision',
    '$aws/things/T/shadow/get/accepted',
    '',
  ])('returns undefined for %j', (topic) => {
    expect(parseTopic(topic)).toBeUndefined();
  });
});

describe('operationTopics is built once per format, operation and template', () => {
  it('hands back the same frozen topics, and checks a bad name every time', () => {
    const first = operationTopics('RegisterThing', 'cbor', 'Cached');
    expect(operationTopics('RegisterThing', 'cbor', 'Cached')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(operationTopics('RegisterThing', 'json', 'Cached')).not.toBe(first);
    for (let i = 0; i < 2; i++) {
      expect(() => operationTopics('RegisterThing', 'json', 'bad/name')).toThrow(FleetProvisioningError);
    }
  });
});
