/**
 * The local AWS IoT Fleet Provisioning simulator (`iot-fleet-provisioning/simulator`).
 * Not implemented yet: it lands with the simulator issue.
 */

/** Start the simulator. Not implemented yet. */
export async function startSimulator(): Promise<never> {
  throw new Error('The simulator is not implemented yet: it lands with the simulator issue (#3).');
}
