/**
 * `forecast`: the command-line entry point. One file per command; every command has `--help`.
 * Errors that carry a ForecastError are reported as one clear line, not a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { ForecastError } from '../errors.js';
import { registerAuditCausality } from './audit-causality.js';
import { registerEvaluate } from './evaluate.js';
import { registerFeatures } from './features.js';
import { registerImportSklearn } from './import-sklearn.js';
import { registerPredict } from './predict.js';
import { registerServe } from './serve.js';
import { registerTrain } from './train.js';
import { registerVerify } from './verify.js';

export function buildProgram(): Command {
  const program = new Command('forecast')
    .description('Train, import, evaluate, serve and verify stock-return forecasting models with bit-for-bit parity to the offline evaluation.')
    .showHelpAfterError()
    .exitOverride();
  registerTrain(program);
  registerImportSklearn(program);
  registerEvaluate(program);
  registerPredict(program);
  registerFeatures(program);
  registerServe(program);
  registerVerify(program);
  registerAuditCausality(program);
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

