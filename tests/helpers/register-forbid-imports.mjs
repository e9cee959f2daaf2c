import { register } from 'node:module';

register('./forbid-imports.mjs', import.meta.url);
