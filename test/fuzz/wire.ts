/**
 * Requests written byte by byte on a raw `node:net` socket, so that Node's HTTP parser sees what
 * `app.inject()` never does: chunked bodies, lengths that lie, duplicate framing headers, bare LF,
 * folded and oversized headers, bad request lines, pipelined requests. And a minimal response
 * parser that reads whatever comes back (1xx interim answers, several answers, a close).
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { ANSWER_BOUND_MS, type Outcome } from './harness.js';
import type { Concrete } from './requests.js';

export const FRAMINGS = [
  'cl',
  'chunked',
  'chunked-ext',
  'chunked-bad-size',
  'cl-short',
  'cl-long',
  'cl-dup',
  'cl-te',
  'chunked-unterminated',
  'none',
  'cl-plus',
] as const;
export type Framing = (typeof FRAMINGS)[number];

export const HEADER_MUTATIONS = [
  'none',
  'bare-lf',
  'obs-fold',
  'space-before-colon',
  'latin1-value',
  'nul-value',
  'huge-header',
  'many-headers',
  'no-host',
  'two-hosts',
  'lowercase-method',
  'http10',
  'absolute-form',
  'garbage-request-line',
  'raw-utf8-path',
  'expect-continue',
  'expect-other',
  'bad-header-name',
  'cr-in-value',
  'upgrade',
  'http2-preface',
  'long-url',
  'unknown-method',
  'tab-separator',
  'empty-header-name',
] as const;
export type HeaderMutation = (typeof HEADER_MUTATIONS)[number];

export interface Wire {
  framing: number;
  header: number;
  /** A GET /healthz written right behind the request, on the same connection. */
  pipeline: boolean;
  /** `Connection: close` on the request: whatever follows it on the connection must not change its answer. */
  close: boolean;
  /** Where the bytes are split into separate writes (the parser must not care). */
  splits: number[];
  chunkSeed: number;
}

const pick = <T>(arb: fc.Arbitrary<T>, weight: number) => ({ arbitrary: arb, weight });

export const wireArb: fc.Arbitrary<Wire> = fc.record({
  framing: fc.oneof(pick(fc.constant(0), 12), pick(fc.constant(1), 3), pick(fc.nat({ max: FRAMINGS.length - 1 }), 4)),
  header: fc.oneof(pick(fc.constant(0), 10), pick(fc.nat({ max: HEADER_MUTATIONS.length - 1 }), 6)),
  pipeline: fc.boolean(),
  close: fc.oneof(pick(fc.constant(false), 5), pick(fc.constant(true), 1)),
  splits: fc.array(fc.nat(), { maxLength: 3 }),
  chunkSeed: fc.nat(),
});

/** Whether Node should read this request exactly as the inject client sends it. */
export function wireClean(w: Wire): boolean {
  const f = FRAMINGS[w.framing % FRAMINGS.length];
  const h = HEADER_MUTATIONS[w.header % HEADER_MUTATIONS.length];
  return (f === 'cl' || f === 'chunked' || f === 'chunked-ext') && (h === 'none' || h === 'expect-continue');
}

/** Framings after which the server must wait for bytes that never come (answered 408). */
export function stalls(w: Wire, c: Concrete): boolean {
  const f = FRAMINGS[w.framing % FRAMINGS.length];
  return c.body !== undefined && (f === 'cl-long' || f === 'chunked-unterminated');
}

function chunked(body: Buffer, seed: number, ext: boolean): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  let s = seed;
  while (i < body.length) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = Math.min(body.length - i, 1 + (s % 4096));
    parts.push(Buffer.from(`${n.toString(16)}${ext ? ';name="v"' : ''}\r\n`), body.subarray(i, i + n), Buffer.from('\r\n'));
    i += n;
  }
  parts.push(Buffer.from(ext ? '0\r\nx-trailer: t\r\n\r\n' : '0\r\n\r\n'));
  return Buffer.concat(parts);
}

/**
 * The request's bytes on the wire, and the body as the server will read it (the judge reads that
 * one): a Content-Length shorter than the body means the server reads only that much.
 */
export function wireBytes(c: Concrete, w: Wire, port: number): { bytes: Buffer; asRead: Buffer | undefined; expectHead: boolean } {
  const framing = FRAMINGS[w.framing % FRAMINGS.length];
  const mut = HEADER_MUTATIONS[w.header % HEADER_MUTATIONS.length];
  const eol = mut === 'bare-lf' ? '\n' : '\r\n';
  let method = c.method;
  if (mut === 'lowercase-method') method = method.toLowerCase();
  if (mut === 'unknown-method') method = 'FROB';
  let target = c.url;
  if (mut === 'absolute-form') target = `http://127.0.0.1:${port}${c.url}`;
  if (mut === 'long-url') target = `${c.url}${c.url.includes('?') ? '&' : '?'}pad=${'p'.repeat(100_000)}`;
  const lines: Buffer[] = [];
  const line = (s: string | Buffer) => lines.push(typeof s === 'string' ? Buffer.from(s, 'utf8') : s, Buffer.from(eol));
  if (mut === 'garbage-request-line') line(`${method}  ${target} HTTP/1.1 extra`);
  else if (mut === 'http2-preface') line('PRI * HTTP/2.0');
  else if (mut === 'raw-utf8-path') line(`${method} ${target.replace('/models/', '/models/café-').replace('/forecast', '/forecast\u00e9')} HTTP/1.1`);
  else line(`${method} ${target} HTTP/${mut === 'http10' ? '1.0' : '1.1'}`);
  if (mut !== 'no-host') line(`Host: 127.0.0.1:${port}`);
  if (w.close) line('Connection: close');
  if (mut === 'two-hosts') line('Host: evil.example');
  const body = c.body;
  let override: string | undefined;
  for (const [name, value] of Object.entries(c.headers)) {
    if (name === 'content-length') {
      override = Array.isArray(value) ? value[0] : value;
      continue;
    }
    for (const v of Array.isArray(value) ? value : [value]) {
      const sep = mut === 'space-before-colon' ? ' : ' : mut === 'tab-separator' ? ':\t' : ': ';
      line(`${name}${sep}${v}`);
    }
  }
  switch (mut) {
    case 'obs-fold':
      line('X-Folded: first');
      line(' continued');
      break;
    case 'latin1-value':
      line(Buffer.concat([Buffer.from('X-Latin1: caf'), Buffer.from([0xe9, 0xff])]));
      break;
    case 'nul-value':
      line(Buffer.concat([Buffer.from('X-Thing: a'), Buffer.from([0]), Buffer.from('b')]));
      break;
    case 'huge-header':
      line(`X-Huge: ${'h'.repeat(20_000)}`);
      break;
    case 'many-headers':
      for (let i = 0; i < 3000; i++) line(`X-H-${i}: v`);
      break;
    case 'expect-continue':
      line('Expect: 100-continue');
      break;
    case 'expect-other':
      line('Expect: the-unexpected');
      break;
    case 'bad-header-name':
      line('X(y): z');
      break;
    case 'cr-in-value':
      line('X-Cr: a\rb');
      break;
    case 'upgrade':
      line('Connection: Upgrade');
      line('Upgrade: websocket');
      break;
    case 'empty-header-name':
      line(': nameless');
      break;
  }
  let payload: Buffer = Buffer.alloc(0);
  let asRead = body;
  if (body !== undefined) {
    const cl = override ?? String(body.length);
    switch (framing) {
      case 'cl':
        line(`Content-Length: ${cl}`);
        payload = body;
        break;
      case 'chunked':
      case 'chunked-ext':
        line('Transfer-Encoding: chunked');
        payload = chunked(body, w.chunkSeed, framing === 'chunked-ext');
        break;
      case 'chunked-bad-size':
        line('Transfer-Encoding: chunked');
        payload = Buffer.concat([Buffer.from(`zz\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
        break;
      case 'chunked-unterminated':
        line('Transfer-Encoding: chunked');
        payload = chunked(body, w.chunkSeed, false).subarray(0, -5);
        break;
      case 'cl-short': {
        const n = Math.max(0, body.length - 1 - (w.chunkSeed % Math.max(1, body.length)));
        line(`Content-Length: ${n}`);
        payload = body;
        asRead = body.subarray(0, n);
        break;
      }
      case 'cl-long':
        line(`Content-Length: ${body.length + 10}`);
        payload = body;
        break;
      case 'cl-dup':
        line(`Content-Length: ${body.length}`);
        line(`Content-Length: ${body.length + 1}`);
        payload = body;
        break;
      case 'cl-te':
        line(`Content-Length: ${body.length}`);
        line('Transfer-Encoding: chunked');
        payload = chunked(body, w.chunkSeed, false);
        break;
      case 'none':
        payload = body;
        asRead = undefined;
        break;
      case 'cl-plus':
        line(`Content-Length: +${body.length}`);
        payload = body;
        break;
    }
  }
  lines.push(Buffer.from(eol));
  if (mut === 'http2-preface') lines.push(Buffer.from('SM\r\n\r\n'));
  const request = Buffer.concat([...lines, payload]);
  const tail = w.pipeline ? Buffer.from(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`) : Buffer.alloc(0);
  return { bytes: Buffer.concat([request, tail]), asRead, expectHead: method === 'HEAD' };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * Parses the complete responses at the start of `buf`. `heads` says which of them answer a HEAD
 * (no body whatever the headers say). Stops at the first incomplete one.
 */
export function parseResponses(buf: Buffer, heads: boolean[], closed: boolean): RawResponse[] {
  const out: RawResponse[] = [];
  let pos = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', pos);
    if (end < 0) return out;
    const head = buf.subarray(pos, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
    if (!m) return out;
    const status = Number(m[1]);
    const headers: Record<string, string | string[]> = {};
    for (const h of head.slice(1)) {
      const i = h.indexOf(':');
      if (i < 0) continue;
      const k = h.slice(0, i).trim().toLowerCase();
      const v = h.slice(i + 1).trim();
      const old = headers[k];
      headers[k] = old === undefined ? v : Array.isArray(old) ? [...old, v] : [old, v];
    }
    let p = end + 4;
    if (status >= 100 && status < 200) {
      pos = p;
      continue;
    }
    let body: Buffer;
    const isHead = heads[out.length] ?? false;
    if (isHead || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (String(headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) {
      const parts: Buffer[] = [];
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) return out;
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        if (!Number.isFinite(size)) return out;
        if (size === 0) {
          const te = buf.indexOf('\r\n\r\n', le);
          if (te < 0) return out;
          p = te + 4;
          break;
        }
        if (buf.length < le + 2 + size + 2) return out;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (buf.length < p + n) return out;
      body = buf.subarray(p, p + n);
      p += n;
    } else {
      // No length: the body runs to the close.
      if (!closed) return out;
      body = buf.subarray(p);
      p = buf.length;
    }
    out.push({ status, headers, body });
    pos = p;
  }
}

/** Writes the bytes (in pieces), reads until `want` answers and a short quiet, a close, or the bound. */
export interface Exchange {
  responses: RawResponse[];
  closed: boolean;
  hung: boolean;
  ms: number;
  /** The server reset the connection while request bytes were still being written (the kernel may then drop its answer). */
  resetWhileWriting: boolean;
}

export function exchange(port: number, bytes: Buffer, splits: number[], heads: boolean[], want: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const chunks: Buffer[] = [];
    let done = false;
    let writing = true;
    let resetWhileWriting = false;
    let quiet: NodeJS.Timeout | undefined;
    const sock = connect(port, '127.0.0.1');
    const finish = (closed: boolean, hung: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(bound);
      clearTimeout(quiet);
      sock.destroy();
      resolve({ responses: parseResponses(Buffer.concat(chunks), heads, closed), closed, hung, ms: performance.now() - t0, resetWhileWriting });
    };
    const bound = setTimeout(() => finish(false, true), ANSWER_BOUND_MS);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      const answers = parseResponses(Buffer.concat(chunks), heads, false).length;
      // A client stops sending once the server has answered (it may answer early, e.g. 413 or 431); a 100 Continue is no answer.
      if (answers > 0) writing = false;
      if (answers >= want) {
        clearTimeout(quiet);
        quiet = setTimeout(() => finish(false, false), 20);
      }
    });
    sock.on('close', () => finish(true, false));
    // A reset by the server (it may close while we still write) ends the exchange like a close.
    sock.on('error', () => {
      if (writing) resetWhileWriting = true;
    });
    sock.on('connect', async () => {
      const cuts = [...new Set(splits.map((s) => s % Math.max(1, bytes.length)))].sort((a, b) => a - b);
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        if (cut <= at) continue;
        if (!sock.writable || !writing) return;
        sock.write(bytes.subarray(at, cut));
        at = cut;
        await new Promise((r) => setImmediate(r));
      }
      writing = false;
    });
  });
}

/** The first answer as the judge's Outcome. */
export function outcomeOf(x: Exchange): Outcome {
  const r = x.responses[0];
  if (!r) return { status: 0, headers: {}, text: '', ms: x.ms, hung: x.hung, noAnswer: !x.hung, resetWhileWriting: x.resetWhileWriting };
  return { status: r.status, headers: r.headers, text: r.body.toString('utf8'), ms: x.ms, hung: false };
}
