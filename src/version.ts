import { readFileSync } from 'node:fs';

/**
 * This program's version, from the package.json beside src/ (or dist/): the one place the CLI's
 * `--version`, the OpenAPI document and the model cards read it from.
 */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
