#!/usr/bin/env node
// The `forecast` executable: everything lives in program.ts so tests can drive the same commands.
import { main } from './program.js';

main(process.argv).then((code) => {
  if (code !== 0) process.exitCode = code;
});
