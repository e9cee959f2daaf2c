// `node --import` this file to make any import of the simulator, its broker (aedes) or the X.509
// library fail, so a test can prove that `fleet-provision provision --keys server` loads none of them.
import { register } from 'node:module';

const hook = `
const FORBIDDEN = /^(aedes|@peculiar\\/x509|reflect-metadata)(\\/|$)|(^|\\/)simulator\\//;
export async function resolve(specifier, context, next) {
  if (FORBIDDEN.test(specifier)) throw new Error('forbidden import: ' + specifier);
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
