// Module resolve hook: fails any import of the simulator's broker, of mqtt.js or of the X.509 library,
// so a test can prove that importing the client package loads none of them.
const FORBIDDEN = /^(aedes|mqtt|@peculiar\/x509|reflect-metadata)(\/|$)/;

export async function resolve(specifier, context, next) {
  if (FORBIDDEN.test(specifier)) throw new Error(`forbidden import: ${specifier}`);
  return next(specifier, context);
}
