import { FleetProvisioningError } from '../../src/protocol/errors.js';

/** The coded error `promise` rejects with; fails the test if it resolves or rejects with anything else. */
export async function failure(promise: Promise<unknown>): Promise<FleetProvisioningError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FleetProvisioningError) return error;
    throw error;
  }
  throw new Error('expected the promise to reject');
}
