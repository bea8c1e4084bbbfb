/**
 * `forecast`: the command-line entry point. One file per command; every command has `--help`.
 * Errors that carry a ForecastError are reported as one clear line, not a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { ForecastError } from '../errors.js';
import { packageVersion } from '../version.js';
import { registerAuditCausality } from './audit-causality.js';
import { registerEvaluate } from './evaluate.js';
import { registerFeatures } from './features.js';
import { registerImportSklearn } from './import-sklearn.js';
import { registerMonitor } from './monitor.js';
import { registerPredict } from './predict.js';
import { registerServe } from './serve.js';
import { registerSynth } from './synth.js';
import { registerTrain } from './train.js';
import { registerVerify } from './verify.js';

/**
 * The package's version: package.json is two folders up from both src/cli/ and dist/cli/. Read as
 * src/serve/app.ts reads it, which the CLI does not import (it would load fastify for every command).
 * A copy without package.json still runs every command; only `--version` cannot say.
 */
export function buildProgram(): Command {
  const program = new Command('forecast')
    .description('Train, import, evaluate, serve and verify stock-return forecasting models with bit-for-bit parity to the offline evaluation.')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();
  registerTrain(program);
  registerImportSklearn(program);
  registerEvaluate(program);
  registerPredict(program);
  registerFeatures(program);
  registerServe(program);
  registerVerify(program);
  registerMonitor(program);
  registerAuditCausality(program);
  registerSynth(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof ForecastError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    console.error(err);
    return 1;
  }
}

