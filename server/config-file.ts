/** The data dir's small config files: one `<a> <b>` pair per line, blank lines and `#` comments ignored. */
import { existsSync, readFileSync } from 'node:fs';
import { fail, PkglogError } from '../core/errors.ts';

/** Calls `each(first, second)` for every pair line; errors name the file and line. */
export function forEachPair(text: string, where: string, expected: string, each: (a: string, b: string) => void): void {
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/[ \t]+/);
    try {
      if (fields.length !== 2) fail('malformed', `expected "${expected}"`);
      each(fields[0]!, fields[1]!);
    } catch (e) {
      if (e instanceof PkglogError) fail('malformed', `${where}:${i + 1}: ${e.message}`);
      throw e;
    }
  });
}

export function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}
