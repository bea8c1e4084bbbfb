import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { BarSeries } from '../data/bars.js';
import { generateSyntheticBars, writeYahooCsv } from '../data/index.js';
import { ForecastError } from '../errors.js';
import { parseIntOption } from './common.js';

/** About ten years of business days: enough for a test set whose metrics mean something. */
const DEFAULT_BARS = 2520;
const DEFAULT_SEED = 1;
/** The million-bar histories the service is measured with; more is a typo, and would fill the memory first. */
const MAX_BARS = 1_000_000;

export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description("write the project's seeded synthetic daily bars as a Yahoo CSV, to try the other commands without data")
    .option('--bars <n>', 'number of bars, business days (Monday to Friday)', parseIntOption('--bars'), DEFAULT_BARS)
    .option('--seed <s>', 'any whole number; equal seeds give equal bars on every machine', parseIntOption('--seed'), DEFAULT_SEED)
    .option('--start-date <date>', 'first date, YYYY-MM-DD (a weekend moves to the Monday after)', '2000-01-03')
    .option('--out <file>', 'CSV file to write (default: standard output)')
    .addHelpText('after', '\nExample:\n  forecast synth --bars 2520 --seed 7 --out bars.csv && forecast train --csv bars.csv --out models/synthetic/1')
    .action(async (opts: { bars: number; seed: number; startDate: string; out?: string }) => {
      if (opts.bars < 1 || opts.bars > MAX_BARS) throw new ForecastError(`--bars must be between 1 and ${MAX_BARS}, got ${opts.bars}`, 400, 'invalid_option');
      if (!Number.isSafeInteger(opts.seed)) throw new ForecastError(`--seed must be a whole number below 2^53 in size, got ${opts.seed}`, 400, 'invalid_option');
      let series: BarSeries;
      try {
        series = generateSyntheticBars({ seed: opts.seed, bars: opts.bars, startDate: opts.startDate });
      } catch (err) {
        // --bars and --seed are checked above: the generator's one refusal left is the start date.
        if (err instanceof RangeError) throw new ForecastError(`--start-date must be a YYYY-MM-DD date, got ${JSON.stringify(opts.startDate)}`, 400, 'invalid_option');
        throw err;
      }
      const csv = writeYahooCsv(series);
      if (opts.out === undefined) {
        process.stdout.write(csv);
        return;
      }
      await writeFile(opts.out, csv);
      console.log(`${opts.bars} synthetic bars (seed ${opts.seed}, ${series.date[0]} .. ${series.date.at(-1)}) written to ${opts.out}`);
    });
}
