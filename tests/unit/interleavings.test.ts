/**
 * 10,000 random interleavings (fast-check, fixed seed) of calls, answers, duplicates, late answers,
 * aborts, drops and reconnects on one connection (the fake transport, for speed). The service in this
 * model answers each published request at most once, in order, and tags every answer with the call it
 * belongs to; the client must never hand a call someone else's answer.
 *
 * Every call settles exactly once, with its own answer or a coded error; there is no unhandled
 * rejection, and no listener is left on the client after close().
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { ERROR_CODES, FleetProvisioningError, RejectedError } from '../../src/protocol/errors.js';
import type { RegisterThingResponse } from '../../src/protocol/schemas.js';
import { answer, FakeServiceTransport, serviceTopics } from '../helpers/fake-service-transport.js';
import type { WireEvent } from '../helpers/fake-transport.js';

const TEMPLATES = ['Alpha', 'Beta'] as const;
const TOPICS = {
  Alpha: serviceTopics('json', 'Alpha').register,
  Beta: serviceTopics('json', 'Beta').register,
};

type Command =
  | { type: 'call'; template: 0 | 1 }
  | { type: 'answer'; how: 'accepted' | 'rejected' | 'twice' | 'accepted-then-rejected' | 'malformed' }
  | { type: 'abort'; pick: number }
  | { type: 'drop' }
  | { type: 'reconnect' };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant('call'), template: fc.constantFrom(0, 1) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      type: fc.constant('answer'),
      how: fc.constantFrom('accepted', 'rejected', 'twice', 'accepted-then-rejected', 'malformed'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('abort'), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('drop') }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('reconnect') }) },
) as fc.Arbitrary<Command>;

interface Call {
  id: number;
  template: (typeof TEMPLATES)[number];
  controller: AbortController;
  outcome: { value: RegisterThingResponse } | { error: unknown } | undefined;
  settlements: number;
}

/** Let the client run: a few turns of the event loop (its holds are immediates when the fake is fast). */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.removeListener('unhandledRejection', onUnhandled);
});

async function run(commands: Command[]): Promise<void> {
  const fake = new FakeServiceTransport();
  const before = fake.listenerTotals();
  // Large windows: a quarantine ends only when its late answer arrives (or the connection drops), so
  // the run stays within what the docs guarantee exactly.
  const client = new FleetProvisioningClient(fake, { lateAnswerWindowMs: 600_000, qos: 0 });
  const calls: Call[] = [];
  /** Requests the "service" received and has not answered yet, oldest first: [call id, template]. */
  const owed: Array<{ id: number; template: (typeof TEMPLATES)[number] }> = [];
  const onWire = (event: WireEvent) => {
    if (event.type !== 'publish') return;
    const token: unknown = JSON.parse(event.payload.toString()).certificateOwnershipToken;
    const template = event.topic === TOPICS.Alpha.request ? 'Alpha' : 'Beta';
    owed.push({ id: Number(String(token).replace('token-', '')), template });
  };
  fake.on('wire', onWire);

  for (const step of commands) {
    switch (step.type) {
      case 'call': {
        const template = TEMPLATES[step.template];
        const call: Call = {
          id: calls.length + 1,
          template,
          controller: new AbortController(),
          outcome: undefined,
          settlements: 0,
        };
        calls.push(call);
        client
          .registerThing(
            { templateName: template, certificateOwnershipToken: `token-${call.id}` },
            { signal: call.controller.signal, timeoutMs: 600_000 },
          )
          .then(
            (value) => {
              call.settlements++;
              call.outcome = { value };
            },
            (error: unknown) => {
              call.settlements++;
              call.outcome = { error };
            },
          );
        break;
      }
      case 'answer': {
        const request = owed.shift();
        if (request === undefined || !fake.connected) break;
        const topics = TOPICS[request.template];
        const accepted = answer(topics.accepted, {
          thingName: `thing-${request.id}`,
          deviceConfiguration: {},
        });
        const rejected = answer(topics.rejected, {
          statusCode: 400,
          errorCode: 'InvalidParameters',
          errorMessage: `for call ${request.id}`,
        });
        if (step.how === 'accepted') fake.deliver(accepted.topic, accepted.payload);
        if (step.how === 'rejected') fake.deliver(rejected.topic, rejected.payload);
        if (step.how === 'twice') {
          fake.deliver(accepted.topic, accepted.payload);
          fake.deliver(accepted.topic, accepted.payload);
        }
        if (step.how === 'accepted-then-rejected') {
          fake.deliver(accepted.topic, accepted.payload);
          fake.deliver(rejected.topic, rejected.payload);
        }
        if (step.how === 'malformed') fake.deliver(topics.accepted, '{"thingName": 42');
        break;
      }
      case 'abort': {
        const pending = calls.filter((c) => c.outcome === undefined);
        pending[step.pick % Math.max(1, pending.length)]?.controller.abort(new Error('test abort'));
        break;
      }
      case 'drop':
        if (fake.connected) fake.drop();
        // A clean session: whatever the service still owed is lost with the connection.
        owed.length = 0;
        break;
      case 'reconnect':
        if (!fake.connected) fake.reconnect();
        break;
    }
    await settle();
  }
  await client.close();
  await settle();
  fake.removeListener('wire', onWire);

  for (const call of calls) {
    expect(call.settlements).toBe(1);
    const outcome = call.outcome;
    if (outcome === undefined) throw new Error(`call ${call.id} never settled`);
    if ('value' in outcome) {
      // Its own answer, never another call's.
      expect(outcome.value.thingName).toBe(`thing-${call.id}`);
    } else {
      expect(outcome.error).toBeInstanceOf(FleetProvisioningError);
      if (outcome.error instanceof FleetProvisioningError) {
        expect(ERROR_CODES).toContain(outcome.error.code);
      }
      if (outcome.error instanceof RejectedError)
        expect(outcome.error.errorMessage).toBe(`for call ${call.id}`);
    }
  }
  expect(fake.listenerTotals()).toEqual(before);
  expect(unhandled).toEqual([]);
}

describe('random interleavings on one connection', () => {
  it('10,000 runs: every call settles once, with its own answer or a coded error; nothing left behind', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 14 }), (commands) => run(commands)),
      { numRuns: 10_000, seed: 20_261_130, endOnFailure: true },
    );
  }, 600_000);
});
