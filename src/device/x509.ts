/**
 * `@peculiar/x509`, loaded after the `reflect-metadata` polyfill that its dependency injection (tsyringe)
 * needs. Since 2.0 the library no longer loads a polyfill by itself, and importing it first throws
 * "tsyringe requires a reflect polyfill". Import X.509 from here, never from the package directly.
 * @internal
 */
import 'reflect-metadata';

export * from '@peculiar/x509';
