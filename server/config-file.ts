/** The data dir's small config files: one record per line (fields separated by blanks), blank lines and `#` comments ignored. */
import { existsSync, readFileSync } from 'node:fs';
import { fail, PkglogError } from '../core/errors.ts';

/** Calls `each(fields)` for every non-blank, non-comment line; PkglogErrors are re-thrown naming the file and line. */
export function forEachLine(text: string, where: string, each: (fields: string[]) => void): void {
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      each(line.split(/[ \t]+/));
    } catch (e) {
      if (e instanceof PkglogError) fail('malformed', `${where}:${i + 1}: ${e.message}`);
      throw e;
    }
  });
}

/** Calls `each(first, second)` for every pair line; errors name the file and line. */
export function forEachPair(text: string, where: string, expected: string, each: (a: string, b: string) => void): void {
  forEachLine(text, where, (fields) => {
    if (fields.length !== 2) fail('malformed', `expected "${expected}"`);
    each(fields[0]!, fields[1]!);
  });
}

export function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}
