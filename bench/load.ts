/**
 * Load and process-measurement helpers shared by the serving benches.
 *
 * Latency percentiles: autocannon's own (`result.latency.p50`, `.p99`, `.p99_9`, ...) come from an
 * HDR histogram with a 1 ms lowest discernible value, i.e. whole milliseconds, too coarse for a
 * sub-millisecond request. `cannon` also keeps every 2xx response time autocannon measures (its
 * 'response' event, in fractional ms) and computes exact percentiles from them.
 */
import { request, Agent } from 'node:http';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

export interface LoadResult {
  connections: number;
  durationS: number;
  /** Mean 2xx requests per second over the run (autocannon's requests.average). */
  rps: number;
  total: number;
  errors: number;
  non2xx: number;
  /** Exact percentiles of the 2xx response times (ms). */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  /** Every 2xx response time (ms), sorted. */
  times: Float64Array;
  raw: autocannon.Result;
}

/** Percentile `p` (0..100) of sorted values (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** An autocannon run (bounded by `duration`, default 5 s) with exact latency percentiles. */
export function cannon(opts: autocannon.Options & { connections: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    let times = new Float64Array(1 << 16);
    let n = 0;
    const duration = typeof opts.duration === 'number' ? opts.duration : 5;
    const instance = autocannon({ duration, ...opts }, (err, res) => {
      if (err) return reject(err);
      const sorted = times.subarray(0, n).sort();
      let sum = 0;
      for (let i = 0; i < n; i++) sum += sorted[i];
      resolve({
        connections: opts.connections,
        durationS: duration,
        rps: res.requests.average,
        total: res.requests.total,
        errors: res.errors,
        non2xx: res.non2xx,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        p999: percentile(sorted, 99.9),
        max: n ? sorted[n - 1] : Number.NaN,
        mean: n ? sum / n : Number.NaN,
        times: sorted,
        raw: res,
      });
    });
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode < 200 || statusCode >= 300) return;
      if (n === times.length) {
        const grown = new Float64Array(times.length * 2);
        grown.set(times);
        times = grown;
      }
      times[n++] = responseTime;
    });
  });
}

/** Two runs at the same connection count as one (throughput over both durations, percentiles of both). */
export function combine(a: LoadResult, b: LoadResult): LoadResult {
  const times = new Float64Array(a.times.length + b.times.length);
  times.set(a.times);
  times.set(b.times, a.times.length);
  times.sort();
  const durationS = a.durationS + b.durationS;
  return {
    connections: a.connections,
    durationS,
    rps: (a.rps * a.durationS + b.rps * b.durationS) / durationS,
    total: a.total + b.total,
    errors: a.errors + b.errors,
    non2xx: a.non2xx + b.non2xx,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    p999: percentile(times, 99.9),
    max: Math.max(a.max, b.max),
    mean: (a.mean * a.times.length + b.mean * b.times.length) / Math.max(1, times.length),
    times,
    raw: a.raw,
  };
}

export interface SequentialResult {
  /** Sorted round-trip times (ms). */
  times: Float64Array;
  median: number;
  p99: number;
  min: number;
  statuses: Record<number, number>;
}

/**
 * `count` requests one after the other on one keep-alive connection (bounded by `count` and by
 * `timeoutMs` per request). `body(i)` gives each request's body and `path(i)` its path.
 */
export async function sequential(
  base: string,
  count: number,
  o: { method?: string; path: (i: number) => string; body?: (i: number) => string; headers?: Record<string, string>; timeoutMs?: number },
): Promise<SequentialResult> {
  const url = new URL(base);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times = new Float64Array(count);
  const statuses: Record<number, number> = {};
  try {
    for (let i = 0; i < count; i++) {
      const body = o.body?.(i);
      const t0 = performance.now();
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          {
            agent,
            host: url.hostname,
            port: url.port,
            method: o.method ?? (body === undefined ? 'GET' : 'POST'),
            path: o.path(i),
            headers: { ...o.headers, ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}) },
            timeout: o.timeoutMs ?? 10_000,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`request ${i} timed out`)));
        req.on('error', reject);
        req.end(body);
      });
      times[i] = performance.now() - t0;
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  } finally {
    agent.destroy();
  }
  times.sort();
  return { times, median: percentile(times, 50), p99: percentile(times, 99), min: times[0], statuses };
}

/** CPU seconds (user + system) a process has used so far, from /proc (robust to other load on a shared machine). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the state), in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident set size and its peak (VmHWM) of a process, MiB. */
export function rssMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}
