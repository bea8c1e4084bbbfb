#!/usr/bin/env node
// The `forecast` executable: every command lives in program.ts so tests can drive the same commands;
// only what belongs to the process (its standard output) is wired here.
import { main } from './program.js';

// A reader that stops early (`forecast predict ... | head -3`) closes the pipe: the output is no longer
// wanted, which is no failure. Without this listener the write error is an uncaught 'error' event: a
// stack trace and exit 1.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(`error: cannot write to standard output: ${err.code ?? err.message}\n`);
  process.exit(1);
});

main(process.argv).then((code) => {
  if (code !== 0) process.exitCode = code;
});
