/**
 * What the simulator puts on an answer topic: the rejections of docs/simulator.md, and the deliberately
 * broken payloads the fault script asks for (malformed, wrong-shaped, oversized).
 */

import type { OperationName } from '../protocol/errors.js';
import { encodePayload, MAX_PAYLOAD_BYTES } from '../protocol/payload.js';
import type { ErrorResponse } from '../protocol/schemas.js';
import type { PayloadFormat } from '../protocol/topics.js';

/** The error codes the simulator answers with, and their status codes (the table in docs/simulator.md). */
export const REJECTIONS = {
  /** The request does not parse, or fields have the wrong type. */
  InvalidPayload: 400,
  /** The CSR does not parse, its signature is wrong, or its key is not allowed. */
  InvalidCSR: 400,
  /** The ownership token is missing, unknown, expired or already used. */
  InvalidCertificateOwnershipToken: 400,
  /** A parameter the template requires is missing. */
  InvalidParameters: 400,
  /** The pre-provisioning hook denied, failed or took too long. */
  AccessDenied: 403,
  /** No such template. */
  ResourceNotFound: 404,
  /** Over the configured request rate. */
  ThrottlingException: 429,
  /** The simulator was told to fail. */
  InternalFailure: 500,
} as const;

/** One of the simulator's error codes. */
export type SimulatorErrorCode = keyof typeof REJECTIONS;

/** An answer before encoding. */
export type Answer =
  | {
      /** Sent on the accepted topic. */
      kind: 'accepted';
      /** The accepted payload. */
      value: Record<string, unknown>;
    }
  | {
      /** Sent on the rejected topic. */
      kind: 'rejected';
      /** The rejection payload. */
      value: Required<ErrorResponse>;
    };

/** A rejection from the table. */
export function rejection(errorCode: SimulatorErrorCode, errorMessage: string): Answer {
  return { kind: 'rejected', value: { statusCode: REJECTIONS[errorCode], errorCode, errorMessage } };
}

/** A scripted rejection: the error code defaults to the table's code for the status. */
export function scriptedRejection(statusCode: number, errorCode?: string, errorMessage?: string): Answer {
  return {
    kind: 'rejected',
    value: {
      statusCode,
      errorCode: errorCode ?? defaultErrorCode(statusCode),
      errorMessage: errorMessage ?? `Rejected by the simulator's fault script (${statusCode}).`,
    },
  };
}

function defaultErrorCode(statusCode: number): string {
  if (statusCode >= 500) return 'InternalFailure';
  const match = Object.entries(REJECTIONS).find(([, status]) => status === statusCode);
  return match?.[0] ?? 'InvalidRequest';
}

/** Bytes that do not decode in `format`: JSON cut off mid-object, CBOR announcing more than it holds. */
export function malformedPayload(format: PayloadFormat): Buffer {
  return format === 'json' ? Buffer.from('{"certificateId": "', 'utf8') : Buffer.from([0xa2, 0x61, 0x61]);
}

/** A payload that decodes but breaks the operation's accepted schema (missing fields, wrong types). */
export function wrongShapePayload(operation: OperationName, format: PayloadFormat): Buffer {
  const value =
    operation === 'RegisterThing'
      ? { deviceConfiguration: { nested: { not: 'a string' } }, thingName: 7 }
      : { certificateId: 42, certificatePem: '' };
  return encodePayload(value, format);
}

/** A payload larger than AWS's 128 KiB message limit, otherwise shaped like an accepted answer. */
export function oversizedPayload(operation: OperationName, format: PayloadFormat): Buffer {
  const filler = 'A'.repeat(MAX_PAYLOAD_BYTES + 1024);
  const value =
    operation === 'RegisterThing'
      ? { deviceConfiguration: { filler }, thingName: 'oversized' }
      : {
          certificateId: 'oversized',
          certificatePem: filler,
          privateKey: 'x',
          certificateOwnershipToken: 'x',
        };
  return encodePayload(value, format);
}
