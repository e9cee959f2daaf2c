/**
 * The template language and the policy language on their own: the intrinsic functions with the edge
 * cases AWS documents (Fn::Sub's two forms and `${!Literal}`, Fn::Select's bounds, AWS::NoValue), and
 * IoT policies (Deny wins, wildcards, NotAction, policy variables that do not resolve).
 */
import { describe, expect, it } from '@jest/globals';
import { IotPolicy, isAllowed } from '../../src/simulator/index.js';
import { type EvaluationScope, evaluate, TemplateProblem } from '../../src/simulator/intrinsics.js';

const scope = (values: Record<string, string>, extra: Partial<EvaluationScope> = {}): EvaluationScope => ({
  values,
  declared: new Set([...Object.keys(values), 'Missing']),
  resources: new Set(['thing']),
  mappings: {},
  conditions: {},
  ...extra,
});

function problem(run: () => unknown): TemplateProblem {
  try {
    run();
  } catch (error) {
    if (error instanceof TemplateProblem) return error;
    throw error;
  }
  throw new Error('no TemplateProblem');
}

describe('intrinsic functions', () => {
  it('Fn::Sub substitutes parameters, its own variables, and keeps a !-escaped reference literal', () => {
    const s = scope({ Serial: 'SN1', Site: 'lyon' });
    // AWS's `${Name}` syntax, written with a `$` of its own so that it is not a JavaScript template.
    const v = (name: string) => `$\{${name}}`;
    expect(evaluate({ 'Fn::Sub': `${v('Site')}-${v('Serial')}-${v('!Serial')}` }, s)).toBe(
      `lyon-SN1-${v('Serial')}`,
    );
    const withVariables = [`${v('Prefix')}${v('Serial')}`, { Prefix: { 'Fn::Join': ['', ['a', 'b']] } }];
    expect(evaluate({ 'Fn::Sub': withVariables }, s)).toBe('abSN1');
  });

  it('Fn::Select picks by index (a string index too) and refuses one out of range', () => {
    const s = scope({ Csv: 'a,b,c' });
    expect(evaluate({ 'Fn::Select': ['2', { 'Fn::Split': [',', { Ref: 'Csv' }] }] }, s)).toBe('c');
    expect(problem(() => evaluate({ 'Fn::Select': [3, ['a']] }, s)).errorCode).toBe('InvalidParameters');
  });

  it('AWS::NoValue removes a property or a list item', () => {
    expect(evaluate({ a: { Ref: 'AWS::NoValue' }, b: ['x', { Ref: 'AWS::NoValue' }] }, scope({}))).toEqual({
      b: ['x'],
    });
  });

  it('a declared parameter without a value is InvalidParameters naming it; an undeclared name is a template error', () => {
    const missing = problem(() => evaluate({ Ref: 'Missing' }, scope({})));
    expect([missing.errorCode, missing.subject]).toEqual(['InvalidParameters', 'Missing']);
    expect(problem(() => evaluate({ Ref: 'Nope' }, scope({}))).errorCode).toBe('InvalidRequestException');
    expect(evaluate({ Ref: 'thing' }, scope({}))).toBe('thing');
  });

  it('conditions compose, and a condition that refers to itself is refused', () => {
    const conditions = {
      A: { 'Fn::Equals': [{ Ref: 'X' }, '1'] },
      B: { 'Fn::Or': [{ Condition: 'A' }, { 'Fn::Equals': ['a', 'b'] }] },
      C: { 'Fn::And': [{ Condition: 'B' }, { 'Fn::Not': [{ Condition: 'A' }] }] },
      Loop: { 'Fn::Not': [{ Condition: 'Loop' }] },
    };
    const s = scope({ X: '1' }, { conditions });
    expect(evaluate({ 'Fn::If': ['B', 'yes', 'no'] }, s)).toBe('yes');
    expect(evaluate({ 'Fn::If': ['C', 'yes', 'no'] }, s)).toBe('no');
    expect(problem(() => evaluate({ 'Fn::If': ['Loop', 'a', 'b'] }, s)).message).toMatch(/refers to itself/);
  });

  it('refuses a function provisioning templates do not support', () => {
    expect(problem(() => evaluate({ 'Fn::GetAtt': ['thing', 'Arn'] }, scope({}))).errorCode).toBe(
      'InvalidRequestException',
    );
  });
});

describe('IoT policies', () => {
  const ARN = 'arn:aws:iot:eu-west-1:123456789012';
  // biome-ignore lint/suspicious/noTemplateCurlyInString: IoT policy variable, not JavaScript
  const THING = '${iot:Connection.Thing.ThingName}';

  it('an explicit Deny wins over an Allow; nothing allowed is denied', () => {
    const policy = IotPolicy.parse({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'iot:*', Resource: `${ARN}:topic/devices/*` },
        { Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/devices/locked` },
      ],
    });
    const ctx = { clientId: 'c' };
    expect(isAllowed([policy], 'iot:Publish', 'topic/devices/a', ctx)).toBe(true);
    expect(isAllowed([policy], 'iot:Publish', 'topic/devices/locked', ctx)).toBe(false);
    expect(isAllowed([policy], 'iot:Subscribe', 'topicfilter/devices/a', ctx)).toBe(false);
  });

  it('? matches one character, MQTT wildcards are literal, NotAction inverts', () => {
    const policy = IotPolicy.parse({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/line-?/+` },
        { Effect: 'Allow', NotAction: ['iot:Publish', 'iot:Subscribe', 'iot:Receive'], Resource: '*' },
      ],
    });
    const ctx = { clientId: 'c' };
    expect(isAllowed([policy], 'iot:Subscribe', 'topicfilter/line-7/+', ctx)).toBe(true);
    expect(isAllowed([policy], 'iot:Subscribe', 'topicfilter/line-7/x', ctx)).toBe(false);
    expect(isAllowed([policy], 'iot:Subscribe', 'topicfilter/line-17/+', ctx)).toBe(false);
    expect(isAllowed([policy], 'iot:Connect', 'client/anything', ctx)).toBe(true);
  });

  it('resolves thing variables only for an attached thing; otherwise the statement does not apply', () => {
    const policy = IotPolicy.parse({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/${THING}` }],
    });
    expect(
      isAllowed([policy], 'iot:Connect', 'client/t1', { clientId: 't1', thing: { thingName: 't1' } }),
    ).toBe(true);
    expect(isAllowed([policy], 'iot:Connect', 'client/t1', { clientId: 't1' })).toBe(false);
  });

  it('refuses a document that is not a policy', () => {
    expect(() => IotPolicy.parse('{')).toThrow(/not valid JSON/);
    expect(() => IotPolicy.parse({ Statement: [{ Effect: 'Maybe' }] })).toThrow(/Effect Allow or Deny/);
  });
});
