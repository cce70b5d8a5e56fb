/** Keeps the module import directions true: core ← log-store ← server; core ← witness; core ← client. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  'log-store': ['core', 'log-store'],
  server: ['core', 'log-store', 'server'],
  witness: ['core', 'witness'],
  client: ['core', 'client'],
};
/** Packages a module may import (node: built-ins are always allowed). */
const PACKAGES: Record<string, string[]> = {
  core: [],
  'log-store': ['better-sqlite3'],
  server: ['express'],
  witness: ['express', 'better-sqlite3'],
  client: [],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(source: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
  for (const m of source.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

describe('architecture', () => {
  for (const [mod, allowed] of Object.entries(ALLOWED)) {
    it(`${mod}/ imports only ${allowed.join(', ')} and ${PACKAGES[mod]!.join(', ') || 'node built-ins'}`, () => {
      const problems: string[] = [];
      for (const file of files(join(ROOT, mod))) {
        for (const spec of imports(readFileSync(file, 'utf8'))) {
          const where = relative(ROOT, file);
          if (spec.startsWith('node:')) continue;
          if (spec.startsWith('.')) {
            const target = relative(ROOT, resolve(dirname(file), spec)).split('/')[0]!;
            if (!allowed.includes(target)) problems.push(`${where} imports ${spec} (${target}/)`);
          } else {
            const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
            if (!PACKAGES[mod]!.includes(pkg)) problems.push(`${where} imports package ${spec}`);
          }
        }
      }
      assert.deepEqual(problems, []);
    });
  }

  it('core/ is pure: no clock, no randomness, no I/O', () => {
    const problems: string[] = [];
    for (const file of files(join(ROOT, 'core'))) {
      const src = readFileSync(file, 'utf8');
      for (const bad of [/Date\.now\(/, /new Date\(/, /Math\.random\(/, /randomBytes/, /node:fs/, /node:net/, /node:http/, /\bfetch\(/, /process\.env/]) {
        if (bad.test(src)) problems.push(`${relative(ROOT, file)} uses ${bad.source}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
