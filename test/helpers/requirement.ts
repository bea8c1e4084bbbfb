/**
 * Required or skip: the one place a test may skip (test/structure/skips.test.ts fails on any other).
 *
 * A developer without PostgreSQL or ../shared/reference gets the tests that need them skipped, with a
 * message saying what is missing. CI sets REQUIRE_POSTGRES=1 and REQUIRE_REFERENCE=1 (.ci/run): there
 * the same tests fail instead, naming what is missing, so a green CI run cannot be one that skipped.
 */
import { describe, it, type TestFunction } from 'vitest';

/** What a group of tests needs, probed once per test file. */
export interface Probe {
  /** For messages: "PostgreSQL at postgres://…", "the reference data in /…/shared/reference". */
  what: string;
  /** The environment variable that turns a skip into a failure, e.g. REQUIRE_POSTGRES. */
  variable: string;
  /** Why it is unusable (the connection error, the absent files); undefined when it is there. */
  missing: string | undefined;
}

export type Decision = { action: 'run' } | { action: 'skip'; message: string } | { action: 'fail'; message: string };

const ON = new Set(['1', 'true', 'yes']);
const OFF = new Set(['', '0', 'false', 'no']);

/** Pure, so it is tested with fake environments (test/structure/requirement.test.ts). */
export function decide(probe: Probe, env: Readonly<Record<string, string | undefined>>): Decision {
  const raw = env[probe.variable];
  const value = (raw ?? '').trim().toLowerCase();
  // A misspelt value must not quietly mean "optional": that is how CI would pass by skipping.
  if (!ON.has(value) && !OFF.has(value)) {
    return { action: 'fail', message: `${probe.variable}=${JSON.stringify(raw)} is not understood: set it to 1 (require ${probe.what}) or 0 (skip without it)` };
  }
  if (probe.missing === undefined) return { action: 'run' };
  if (ON.has(value)) return { action: 'fail', message: `${probe.variable}=${raw} and ${probe.what} is missing: ${probe.missing}` };
  return { action: 'skip', message: `${probe.what} is missing (${probe.missing}); set ${probe.variable}=1 to fail instead of skipping` };
}

export interface Gate {
  /** True when the tests run with it; false when they skip (or fail, when it is required). */
  readonly present: boolean;
  /** describe() when present; skipped with a message when optional and missing; one failing test when required and missing. */
  describe(name: string, body: () => void): void;
  /** it() likewise. */
  it(name: string, fn: TestFunction, timeout?: number): void;
  /**
   * For a test that runs either way and does more when it is present (the container test serves the
   * reference bundle, or the demo bundle without it): call inside the test or hook; throws when required and missing.
   */
  use(): boolean;
}

export function gate(probe: Probe, env: Readonly<Record<string, string | undefined>> = process.env): Gate {
  const decision = decide(probe, env);
  const failure = (): never => {
    throw new Error(decision.action === 'fail' ? decision.message : 'unreachable');
  };
  return {
    present: decision.action === 'run',
    describe(name, body) {
      if (decision.action === 'run') return describe(name, body);
      if (decision.action === 'skip') {
        console.warn(`SKIPPED "${name}": ${decision.message}`);
        return describe.skip(name, body);
      }
      // The body is not collected: it may read the very files that are missing.
      describe(name, () => it(`needs ${probe.what}`, failure));
    },
    it(name, fn, timeout) {
      if (decision.action === 'run') return it(name, fn, timeout);
      if (decision.action === 'skip') {
        console.warn(`SKIPPED "${name}": ${decision.message}`);
        return it.skip(name, fn, timeout);
      }
      it(name, failure);
    },
    use() {
      if (decision.action === 'fail') failure();
      if (decision.action === 'skip') console.warn(`without ${probe.what}: ${decision.message}`);
      return decision.action === 'run';
    },
  };
}
