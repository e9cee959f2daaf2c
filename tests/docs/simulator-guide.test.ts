/**
 * Runs the jest suite of docs/guides/testing-with-the-simulator.md (examples/onboarding.test.ts) as
 * part of ours, so the guide's example cannot rot.
 */
import '../../examples/onboarding.test.js';
