import { describe, expect, it } from 'vitest';
import { extractBlocks, splitCommands } from './extract.js';

const PAGE = [
  'Intro.',
  '',
  '```bash',
  'alias forecast=\'npm run -s forecast --\'   # a comment',
  'forecast train --csv a.csv \\',
  '  --out models/a/1',
  '```',
  '',
  '<!-- not run: needs a Heroku account -->',
  '',
  '    heroku create my-forecast',
  '    git push heroku main',
  '',
  '```sh',
  "curl -s localhost:8000/forecast -d '{\"a\": 1,",
  "  \"b\": \"#not a comment\"}'",
  '```',
  '',
  '<!-- answer -->',
  '```json',
  '{"added": 1}',
  '```',
  '',
  '```json',
  '{"not": "an answer"}',
  '```',
  '',
  '```ts',
  'const x = 1;',
  '```',
].join('\n');

describe('extractBlocks', () => {
  const blocks = extractBlocks('page.md', PAGE);

  it('finds fenced and indented shell blocks in page order, with the reason a block is not run', () => {
    expect(blocks.map((b) => (b.kind === 'shell' ? [b.kind, b.line, b.notRun] : [b.kind, b.line]))).toEqual([
      ['shell', 4, null],
      ['shell', 11, 'needs a Heroku account'],
      ['shell', 15, null],
      ['answer', 21],
    ]);
  });

  it('joins continued lines, keeps quoted text over several lines, drops comments', () => {
    const [first, heroku, curl] = blocks;
    expect(first!.kind === 'shell' && first!.commands).toEqual(["alias forecast='npm run -s forecast --'", 'forecast train --csv a.csv    --out models/a/1']);
    expect(heroku!.kind === 'shell' && heroku!.commands).toEqual(['heroku create my-forecast', 'git push heroku main']);
    expect(curl!.kind === 'shell' && curl!.commands).toEqual([`curl -s localhost:8000/forecast -d '{"a": 1,\n  "b": "#not a comment"}'`]);
  });

  it('takes a marker only when it is right before the block', () => {
    const page = ['<!-- not run: far away -->', '', 'Some text.', '', '```bash', 'echo hi', '```'].join('\n');
    expect(extractBlocks('p.md', page)).toMatchObject([{ kind: 'shell', notRun: null, commands: ['echo hi'] }]);
  });
});

describe('splitCommands', () => {
  it('skips blank and comment-only lines', () => {
    expect(splitCommands('# just a comment\n\necho a   # trailing\n')).toEqual(['echo a']);
  });
});
