// Finds the shell examples of a Markdown page, so the docs test can run every one of them and a new
// example cannot slip past it: a block is either run or carries a reason in the page itself.

/** `<!-- not run: REASON -->` right before a block: the reason it cannot run here, shown to readers too. */
const NOT_RUN_MARKER = /^<!--\s*not run:\s*(.+?)\s*-->$/;
/** `<!-- answer -->` right before a ```json block: what the last command of the previous run block prints. */
const ANSWER_MARKER = /^<!--\s*answer\s*-->$/;
const SHELL_FENCES = new Set(['bash', 'sh', 'shell']);

export interface ShellBlock {
  kind: 'shell';
  file: string;
  /** 1-based line of the block's first command line, for failure messages. */
  line: number;
  /** `null` when the block is run; the page's reason otherwise. */
  notRun: string | null;
  commands: string[];
}

export interface AnswerBlock {
  kind: 'answer';
  file: string;
  line: number;
  json: string;
}

export type DocBlock = ShellBlock | AnswerBlock;

/**
 * Splits a block's text into commands: backslash continuations joined, comment-only lines and
 * trailing `# comments` dropped (a `#` inside quotes is kept).
 */
export function splitCommands(text: string): string[] {
  const commands: string[] = [];
  let pending = '';
  for (const rawLine of text.split('\n')) {
    const line = stripComment(rawLine).trimEnd();
    if (pending === '' && line.trim() === '') continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    // An open quote carries the command to the next line (a JSON body written over several lines).
    pending += line;
    if (quotesOpen(pending)) {
      pending += '\n';
      continue;
    }
    commands.push(pending.trim());
    pending = '';
  }
  if (pending.trim() !== '') commands.push(pending.trim());
  return commands;
}

function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i);
    }
  }
  return line;
}

function quotesOpen(text: string): boolean {
  let quote: string | null = null;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    }
  }
  return quote !== null;
}

/**
 * Every ```bash/```sh fenced block and every indented (4+ spaces after a blank line) block of a
 * page, in page order, with answer blocks marked `<!-- answer -->`.
 */
export function extractBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  let lastMarker: { text: string; line: number } | null = null;
  const markerBefore = (startLine: number): string | null =>
    lastMarker && lastMarker.line === previousNonBlank(lines, startLine) ? lastMarker.text : null;

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^(\s*)```\s*([\w-]*)/.exec(line);
    if (fence) {
      const lang = fence[2]!.toLowerCase();
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !/^\s*```/.test(lines[j]!)) body.push(lines[j++]!);
      const marker = markerBefore(i);
      if (SHELL_FENCES.has(lang)) {
        blocks.push({ kind: 'shell', file, line: i + 2, notRun: notRunReason(marker), commands: splitCommands(body.join('\n')) });
      } else if (lang === 'json' && marker !== null && ANSWER_MARKER.test(marker)) {
        blocks.push({ kind: 'answer', file, line: i + 2, json: body.join('\n') });
      }
      i = j;
      continue;
    }
    if (/^\s*<!--.*-->\s*$/.test(line)) {
      lastMarker = { text: line.trim(), line: i };
      continue;
    }
    const previousBlank = i === 0 || lines[i - 1]!.trim() === '';
    if (previousBlank && /^ {4,}\S/.test(line)) {
      const body: string[] = [];
      let j = i;
      // A blank line inside an indented block continues it when the next line is indented too.
      while (j < lines.length && (/^ {4,}\S/.test(lines[j]!) || (lines[j]!.trim() === '' && /^ {4,}\S/.test(lines[j + 1] ?? '')))) {
        body.push(lines[j++]!);
      }
      const indent = Math.min(...body.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
      blocks.push({
        kind: 'shell',
        file,
        line: i + 1,
        notRun: notRunReason(markerBefore(i)),
        commands: splitCommands(body.map((l) => l.slice(indent)).join('\n')),
      });
      i = j - 1;
    }
  }
  return blocks;
}

function previousNonBlank(lines: string[], index: number): number {
  let k = index - 1;
  while (k >= 0 && lines[k]!.trim() === '') k--;
  return k;
}

function notRunReason(marker: string | null): string | null {
  const match = marker === null ? null : NOT_RUN_MARKER.exec(marker);
  return match ? match[1]! : null;
}
