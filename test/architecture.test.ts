/**
 * Keeps the module import directions true (core ← log-store ← server; core ← witness; core ← client; core ← runtime,
 * the Node.js code every party shares, ← server, witness, client) and the module graph free of import cycles: any
 * cycle among the modules of core, log-store, runtime, server, witness and client fails.
 * Imports are read with TypeScript's own pre-processor (comments and strings are not imports; `import type`,
 * re-exports and dynamic `import()` are).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  'log-store': ['core', 'log-store'],
  runtime: ['core', 'runtime'],
  server: ['core', 'log-store', 'runtime', 'server'],
  witness: ['core', 'runtime', 'witness'],
  client: ['core', 'runtime', 'client'],
  // The web explorer's browser code (bundled by explorer/build.mjs): core only, like any verifier.
  explorer: ['core', 'explorer'],
  mirror: ['core', 'runtime', 'mirror'],
};
/** Where import cycles are looked for: every module. */
const CYCLE_DIRS = Object.keys(ALLOWED).filter((d) => existsSync(join(ROOT, d)));
/** Packages a module may import (node: built-ins are always allowed). */
const PACKAGES: Record<string, string[]> = {
  // ML-DSA-44, synchronous: @noble/post-quantum (pure JS: key generation from the seed core is given, the fallback).
  // core/mldsa.ts also loads pqclean (PQClean's C as a native addon or WebAssembly, for speed; its hedged signing draws
  // rnd from the OS) through Node's module loader at run time, which this check does not see as an import.
  core: ['@noble/post-quantum'],
  // SQLite (embedded default) and PostgreSQL (pg); an LRU of immutable tiles (lru-cache).
  'log-store': ['better-sqlite3', 'lru-cache', 'pg'],
  // The one logger (pino, pino-pretty on a terminal), the metrics registry helper (prom-client), caches (lru-cache).
  // …and the data-dir lock (better-sqlite3), shared by the witness and the mirror.
  runtime: ['better-sqlite3', 'lru-cache', 'pino', 'pino-pretty', 'prom-client'],
  // --publish-s3 (server/publish-s3.ts, loaded only when configured).
  server: ['@aws-sdk/client-s3', 'express', 'lru-cache', 'prom-client'],
  witness: ['express', 'better-sqlite3', 'lru-cache', 'prom-client'],
  client: ['lru-cache'],
  // The browser stand-ins for node:crypto and Buffer.
  explorer: ['@noble/ed25519', '@noble/hashes', 'buffer'],
  mirror: ['express', 'better-sqlite3', 'lru-cache', 'prom-client'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a source file imports or re-exports, type-only and dynamic ones included. */
function imports(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The import graph of the .ts files under `root`/`dirs`: file (relative to root) → files it imports. */
export function importGraph(root: string, dirs: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const dir of dirs) {
    for (const file of files(join(root, dir))) {
      const targets = imports(readFileSync(file, 'utf8'))
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => relative(root, resolve(dirname(file), spec)));
      graph.set(relative(root, file), [...new Set(targets)]);
    }
  }
  return graph;
}

/**
 * The import cycles of a graph: one per strongly connected component with more than one file (or a file importing
 * itself), each given as a path a → b → … → a. Tarjan's algorithm, iterative (no recursion limit).
 */
export function importCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const edges = (v: string) => (graph.get(v) ?? []).filter((w) => graph.has(w));
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ v: string; i: number }> = [{ v: start, i: 0 }];
    index.set(start, next), low.set(start, next++), stack.push(start), onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const out = edges(top.v);
      if (top.i < out.length) {
        const w = out[top.i++]!;
        if (!index.has(w)) {
          index.set(w, next), low.set(w, next++), stack.push(w), onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== top.v);
        if (scc.length > 1 || edges(top.v).includes(top.v)) components.push(scc);
      }
    }
  }
  return components.map((scc) => cyclePath(scc, edges));
}

/** A concrete cycle inside one strongly connected component, starting at its first file in sorted order. */
function cyclePath(scc: string[], edges: (v: string) => string[]): string[] {
  const members = new Set(scc);
  const start = [...scc].sort()[0]!;
  // Breadth-first from start back to start, staying inside the component.
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of edges(v)) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!prev.has(w)) prev.set(w, v), queue.push(w);
    }
  }
  return [start, start];
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

  it('has no import cycle anywhere in core, log-store, runtime, server, witness and client', () => {
    const graph = importGraph(ROOT, CYCLE_DIRS);
    assert.ok(graph.has('core/note.ts') && graph.size > 50, `read ${graph.size} files`);
    assert.ok(graph.get('server/app.ts')!.length > 0, 'server/app.ts has imports');
    assert.deepEqual(importCycles(graph).map((c) => c.join(' → ')), []);
  });

  it('the cycle check finds cycles: synthetic files with a 3-cycle, a 2-cycle through `import type`, a self-import', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pkglog-arch-'));
    try {
      const write = (path: string, src: string) => {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), src);
      };
      write('a/one.ts', "import { two } from './two.ts';\nexport const one = 1;\n");
      write('a/two.ts', "// import { x } from './leaf.ts'; (a comment, not an import)\nexport { three } from '../b/three.ts';\nexport const two = 2;\n");
      write('b/three.ts', "const m = () => import('../a/one.ts');\nexport const three = 3;\n");
      write('b/leaf.ts', "import { one } from '../a/one.ts';\nexport const leaf = one;\n"); // into the cycle, not part of it
      write('b/p.ts', "import type { Q } from './q.ts';\nexport interface P { q?: Q }\n");
      write('b/q.ts', "import type { P } from './p.ts';\nexport interface Q { p?: P }\n");
      write('b/self.ts', "import './self.ts';\n");
      write('b/dag.ts', "import { leaf } from './leaf.ts';\nimport { three } from './three.ts';\n");
      const cycles = importCycles(importGraph(dir, ['a', 'b'])).map((c) => c.join(' → ')).sort();
      assert.deepEqual(cycles, ['a/one.ts → a/two.ts → b/three.ts → a/one.ts', 'b/p.ts → b/q.ts → b/p.ts', 'b/self.ts → b/self.ts']);
      // Breaking the cycle (three no longer imports one) leaves only the two others.
      write('b/three.ts', 'export const three = 3;\n');
      assert.equal(importCycles(importGraph(dir, ['a', 'b'])).length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

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
