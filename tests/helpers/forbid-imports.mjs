// Module resolve hook: fails any import of the simulator's broker, of mqtt.js, of the X.509 library or of
// the CBOR codec, so a test can prove that importing the client package loads none of them.
const FORBIDDEN = /^(aedes|mqtt|@peculiar\/x509|reflect-metadata|cborg)(\/|$)/;

export async function resolve(specifier, context, next) {
  if (FORBIDDEN.test(specifier)) throw new Error(`forbidden import: ${specifier}`);
  return next(specifier, context);
}
