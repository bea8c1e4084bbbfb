/**
 * The module Lambda loads (`npm run package:lambda` bundles it as dist/lambda/handler.mjs; handler
 * setting `dist/lambda/handler.handler`).
 *
 * Lambda runs a module's top-level code in the init phase, which has its own 10 s limit, runs at full
 * CPU, and is not counted against the function's time-out (3 s by default): building the app here
 * (loading and self-checking the bundles, opening and seeding the store) keeps that work out of the
 * first event. A failure is logged and the first event tries again.
 */
import { handler } from './handler.js';

await handler.prepare();

export { handler };
