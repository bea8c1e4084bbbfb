/**
 * How much the fuzz suite runs, and from which seed. CI runs the fixed seed and the default counts;
 * `npm run test:fuzz` scales the counts with FUZZ_RUNS and draws a fresh seed unless FUZZ_SEED is
 * given, so a failure found there can be replayed exactly with the seed it prints (and FUZZ_PATH,
 * fast-check's path to the shrunk counterexample, to skip straight to it).
 */

/** The CI seed: fixed so that a CI failure is a change in the service, not in the inputs. */
export const CI_SEED = 20240509;

function intEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  return n;
}

export interface FuzzSettings {
  seed: number;
  /** Cases for a target that runs `base` cases in CI. */
  runs(base: number): number;
  /** fast-check's replay path, when replaying one counterexample. */
  path: string | undefined;
  /** Whether the counts were scaled (a `test:fuzz` run). */
  scaled: boolean;
}

/**
 * FUZZ_RUNS is the number of generated requests of the inject run; every other target is scaled by
 * the same factor. FUZZ_SEED=random draws a seed.
 */
export function fuzzSettings(ciInjectRuns: number): FuzzSettings {
  const runsEnv = intEnv('FUZZ_RUNS');
  const seedRaw = process.env.FUZZ_SEED;
  const seed =
    seedRaw === undefined || seedRaw === ''
      ? runsEnv === undefined
        ? CI_SEED
        : Math.floor(Math.random() * 2 ** 31)
      : seedRaw === 'random'
        ? Math.floor(Math.random() * 2 ** 31)
        : (intEnv('FUZZ_SEED') as number);
  const factor = runsEnv === undefined ? 1 : runsEnv / ciInjectRuns;
  return {
    seed,
    runs: (base) => Math.max(1, Math.round(base * factor)),
    path: process.env.FUZZ_PATH || undefined,
    scaled: runsEnv !== undefined,
  };
}
