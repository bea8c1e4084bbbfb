/**
 * What a V8 heap snapshot holds, by kind: the self size of every object grouped by constructor (JS
 * objects, closures, native objects) or by V8 type (strings, arrays, code, ...), largest first.
 *
 *   npx tsx bench/heapsnapshot.ts FILE.heapsnapshot [--top 25]
 *
 * Self sizes only (no retained sizes): enough to see whether the heap is strings, number arrays or
 * typed-array backing stores. Memory outside the JS heap (typed-array contents allocated by V8's
 * array buffer allocator, SQLite's page cache, code) shows in RSS minus the heap total.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: (string[] | string)[] }; node_count: number };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  name: string;
  count: number;
  selfMiB: number;
}

export interface HeapSummary {
  totalMiB: number;
  objects: number;
  groups: HeapGroup[];
}

export function summarizeHeapSnapshot(file: string, top = 25): HeapSummary {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0] as string[];
  const groups = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  const nodes = s.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    total += size;
    const name = s.strings[nodes[i + nameAt]];
    const key =
      type === 'object' || type === 'closure' || type === 'native'
        ? `${name.length > 80 ? `${name.slice(0, 80)}...` : name}${type === 'closure' ? ' (closure)' : type === 'native' ? ' (native)' : ''}`
        : type === 'string' || type === 'concatenated string' || type === 'sliced string'
          ? '(strings)'
          : type === 'array' || type === 'hidden'
            ? `(${type}) ${name.length > 60 ? `${name.slice(0, 60)}...` : name}`
            : `(${type})`;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
  }
  return {
    totalMiB: total / 2 ** 20,
    objects: nodes.length / width,
    groups: [...groups.entries()]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, top)
      .map(([name, g]) => ({ name, count: g.count, selfMiB: g.bytes / 2 ** 20 })),
  };
}

export function formatHeapSummary(h: HeapSummary, title: string): string {
  const lines = [`${title}: ${h.totalMiB.toFixed(1)} MiB in ${h.objects.toLocaleString('en-US')} heap objects (self sizes)`];
  for (const g of h.groups) lines.push(`  ${g.selfMiB.toFixed(1).padStart(8)} MiB ${String(g.count).padStart(10)} × ${g.name}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--top');
  const top = i >= 0 ? Number(args.splice(i, 2)[1]) : 25;
  for (const f of args) console.log(formatHeapSummary(summarizeHeapSnapshot(f, top), f));
}
