/**
 * docs/http-api.md documents every route of the log and the witness, and nothing else: this collects the routes
 * registered on both express apps (createApp with stub deps: building an app calls none of them; express 5's router
 * stack) and compares them with the `### METHOD /path` headings of the page's "The log" and "The witness" sections.
 * A route given as a regular expression is compared in a simple form: `^\/tile\/(.+)$` is `/tile/*`.
 */
import assert from 'node:assert/strict';
import type express from 'express';
import { createApp as createLogApp, type AppDeps as LogDeps } from '../../server/app.ts';
import { createApp as createWitnessApp } from '../../witness/app.ts';
import type { Witness } from '../../witness/witness.ts';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import request from 'supertest';
import { HttpOps } from '../../runtime/http-ops.ts';
import { createLogger } from '../../runtime/logger.ts';
import { createRegistry } from '../../runtime/metrics.ts';
import { readDoc, section, REPO } from '../support/markdown.ts';

interface RouteLayer {
  route?: { path: string | RegExp | Array<string | RegExp>; methods: Record<string, boolean> };
}

/** `^\/tile\/(.+)$` → `/tile/*`; anything a reader could not write down as a path fails the test. */
function regexPath(re: RegExp): string {
  const p = re.source.replace(/^\^/, '').replace(/\$$/, '').replace(/\\\//g, '/').replace(/\(\.[+*]\)/g, '*');
  assert.match(p, /^[\w/.:*-]+$/, `route ${re} has no simple documented form (write it as /a/*)`);
  return p;
}

/** "METHOD /path" for every route registered on the app, sorted. */
export function routesOf(app: express.Express): string[] {
  const stack = (app as unknown as { router: { stack: RouteLayer[] } }).router.stack;
  const out = new Set<string>();
  for (const layer of stack) {
    if (layer.route === undefined) continue;
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    for (const method of Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m])) {
      if (method === '_all') continue;
      for (const p of paths) out.add(`${method.toUpperCase()} ${typeof p === 'string' ? p : regexPath(p)}`);
    }
  }
  return [...out].sort();
}

/** "METHOD /path" for every `### METHOD /path` heading of the section, sorted. */
function documented(doc: string, heading: string): string[] {
  const text = section(doc, heading);
  return [...text.matchAll(/^### (GET|POST|PUT|DELETE|PATCH|HEAD) (\/\S*)$/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
}

describe('docs/http-api.md: every route of the log and the witness', () => {
  const doc = readDoc('docs/http-api.md');

  it('the log: the routes of server/app.ts are exactly the documented ones', () => {
    const none = {} as never;
    const deps: LogDeps = { store: none, sequencer: none, registries: () => new Map(), vkey: 'x', checkpoints: none, reader: none };
    const routes = routesOf(createLogApp(deps));
    assert.ok(routes.length >= 10, `found the log's routes: ${routes.join(', ')}`);
    assert.deepEqual(documented(doc, 'The log'), routes);
  });

  it('the witness: the routes of witness/app.ts are exactly the documented ones', () => {
    const routes = routesOf(createWitnessApp({ witness: {} as Witness }));
    assert.ok(routes.length >= 5, `found the witness's routes: ${routes.join(', ')}`);
    assert.deepEqual(documented(doc, 'The witness'), routes);
  });

  it('the operations routes: the paths runtime/http-ops.ts answers are exactly the documented ones, on both apps', async () => {
    const source = readFileSync(`${REPO}runtime/http-ops.ts`, 'utf8');
    const answered = [...source.matchAll(/path === '(\/[^']*)'/g)].map((m) => `GET ${m[1]}`).sort();
    const table = section(doc, 'Operations routes');
    const listed = [...table.matchAll(/^\| `(GET|POST) (\/\S*)` \|/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
    assert.ok(answered.length >= 3, `found the ops paths: ${answered.join(', ')}`);
    assert.deepEqual(listed, answered);
    const quiet = new Writable({ write(_c, _e, cb) { cb(); } });
    const logger = createLogger({ level: 'info', stream: quiet as unknown as NodeJS.WritableStream & { write(s: string): boolean }, format: 'json' });
    const none = {} as never;
    for (const app of [
      createLogApp({ store: none, sequencer: none, registries: () => new Map(), vkey: 'x', checkpoints: none, reader: none, before: [new HttpOps({ logger, registry: createRegistry(), readiness: () => [] }).middleware] }),
      createWitnessApp({ witness: {} as Witness, before: [new HttpOps({ logger, registry: createRegistry(), readiness: () => [] }).middleware] }),
    ]) {
      for (const route of listed) {
        const res = await request(app).get(route.slice(4));
        assert.equal(res.status, 200, `${route}: ${res.text.slice(0, 200)}`);
        assert.ok(res.headers['x-request-id'], `${route} carries X-Request-Id`);
      }
    }
  });

  it('every error status named on the page is the one in core/errors.ts', async () => {
    const { ERROR_CODES } = await import('../../core/errors.ts');
    // "`code` 400", "`a`/`b` 403", and table rows "| 409 | `conflict`: …"
    const pairs: Array<[string, number]> = [];
    for (const m of doc.matchAll(/((?:`[a-z_]+`\/)*`[a-z_]+`) (\d{3})\b/g)) {
      for (const c of m[1]!.matchAll(/`([a-z_]+)`/g)) pairs.push([c[1]!, Number(m[2])]);
    }
    for (const m of doc.matchAll(/^\| (\d{3}) \| (.*)$/gm)) {
      for (const c of m[2]!.matchAll(/`([a-z_]+)`/g)) if (c[1]! in ERROR_CODES) pairs.push([c[1]!, Number(m[1])]);
    }
    assert.ok(pairs.length > 30, `found ${pairs.length} code/status pairs`);
    for (const [code, status] of pairs) {
      assert.ok(code in ERROR_CODES, `docs/http-api.md names an unknown error code ${code}`);
      assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES].http, status, `docs/http-api.md: ${code} is ${ERROR_CODES[code as keyof typeof ERROR_CODES].http}, not ${status}`);
    }
  });
});
