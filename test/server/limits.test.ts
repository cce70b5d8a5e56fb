/** Unit and property tests of the log's input limits: the JSON shape scanner, per-registry quotas, registries.txt. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { JsonShape, MAX_JSON_DEPTH } from '../../server/json-body.ts';
import { Quotas } from '../../server/quotas.ts';
import { formatRegistryLine, parseRegistries } from '../../server/registries.ts';
import { tileId } from '../../log-store/store.ts';
import express from 'express';
import request from 'supertest';
import { errorMiddleware } from '../../server/http-errors.ts';
import { REGISTRY } from '../support/submissions.ts';

function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const kids = Array.isArray(v) ? v : Object.values(v as object);
  return 1 + Math.max(0, ...kids.map(depthOf));
}

function scan(bytes: Buffer, cuts: number[], maxDepth: number, maxTokens: number): string | undefined {
  const shape = new JsonShape(maxDepth, maxTokens);
  let at = 0;
  try {
    for (const c of [...cuts.map((x) => x % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
      shape.feed(bytes.subarray(at, Math.max(at, c)));
      at = Math.max(at, c);
    }
  } catch (e) {
    return (e as { code: string }).code;
  }
  return undefined;
}

describe('server: input limits', () => {
  it('the JSON shape scanner refuses exactly the values nested deeper than the bound, however the bytes are split', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 12 }), fc.array(fc.nat(), { maxLength: 5 }), fc.integer({ min: 1, max: 10 }), (v, cuts, maxDepth) => {
      const bytes = Buffer.from(JSON.stringify(v), 'utf8');
      const code = scan(bytes, cuts, maxDepth, 1e9);
      assert.equal(code, depthOf(v) > maxDepth ? 'malformed' : undefined, JSON.stringify(v));
    }), { numRuns: 500 });
  });

  it('the JSON shape scanner ignores brackets, quotes and backslashes inside strings and counts tokens', () => {
    assert.equal(scan(Buffer.from(JSON.stringify({ a: '[[[[[[[[[[[[{{{{{{{\\"\\\\"' })), [], 2, 100), undefined);
    assert.equal(scan(Buffer.from('['.repeat(MAX_JSON_DEPTH + 1)), [], MAX_JSON_DEPTH, 100), 'malformed');
    assert.equal(scan(Buffer.from('[' + '1,'.repeat(100) + '1]'), [], 8, 50), 'too_large');
    assert.equal(scan(Buffer.from('[' + '1,'.repeat(40) + '1]'), [], 8, 50), undefined);
  });

  it('quotas: a token bucket per registry (rate, burst), all-or-nothing per call, with Retry-After in seconds', () => {
    let t = Date.UTC(2026, 0, 1, 12);
    const q = new Quotas(() => t);
    const quota = { rate: 2, burst: 4 };
    q.take('a', quota, 3);
    q.take('a', quota, 1);
    assert.throws(() => q.take('a', quota, 1), (e: { code: string; details: { retryAfter: number } }) => e.code === 'rate_limited' && e.details.retryAfter === 1);
    q.take('b', quota, 4); // another registry has its own bucket
    t += 500;
    q.take('a', quota, 1);
    assert.throws(() => q.take('a', quota, 2), /rate/);
    t += 10_000;
    q.take('a', quota, 4);
    assert.throws(() => q.take('a', quota, 5), (e: { code: string }) => e.code === 'too_large', 'more than the burst can never fit');
    q.take('unlimited', {}, 1_000_000);
  });

  it('quotas: a daily limit per UTC day, reset at midnight', () => {
    let t = Date.UTC(2026, 0, 1, 23, 59, 0);
    const q = new Quotas(() => t);
    const quota = { daily: 3 };
    q.take('a', quota, 2);
    q.take('a', quota, 1);
    assert.throws(() => q.take('a', quota, 1), (e: { code: string; details: { retryAfter: number } }) => e.code === 'rate_limited' && e.details.retryAfter === 60);
    t += 60_000;
    q.take('a', quota, 3);
  });

  it('quotas: over any sequence of calls, accepted entries never exceed burst + rate·elapsed, nor the daily limit', () => {
    fc.assert(fc.property(
      fc.record({ rate: fc.integer({ min: 1, max: 50 }), burst: fc.integer({ min: 1, max: 100 }), daily: fc.integer({ min: 1, max: 500 }) }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 20 })), { maxLength: 200 }),
      (quota, calls) => {
        const start = Date.UTC(2026, 0, 1, 1);
        let t = start;
        const q = new Quotas(() => t);
        let accepted = 0;
        for (const [dt, n] of calls) {
          t += dt;
          try {
            q.take('r', quota, n);
            accepted += n;
          } catch (e) {
            assert.ok(['rate_limited', 'too_large'].includes((e as { code: string }).code));
          }
          assert.ok(accepted <= quota.burst + (quota.rate * (t - start)) / 1000 + 1e-9, `accepted ${accepted} at ${t - start} ms`);
          assert.ok(accepted <= quota.daily);
        }
      },
    ), { numRuns: 300 });
  });

  it('registries.txt: ecosystems and quotas per line; a line without ecosystems is refused with the fix', () => {
    const key = REGISTRY.publicKey.toString('base64');
    const r = parseRegistries(`pypi.org ${key} ecosystems=pypi rate=0.5 burst=10 daily=1000\nnpmjs.com ${key} ecosystems=npm,jsr\nany ${key} ecosystems=*\n`);
    assert.deepEqual([...(r.get('pypi.org')!.ecosystems as Set<string>)], ['pypi']);
    assert.equal(r.get('pypi.org')!.rate, 0.5);
    assert.equal(r.get('pypi.org')!.burst, 10);
    assert.equal(r.get('pypi.org')!.daily, 1000);
    assert.deepEqual([...(r.get('npmjs.com')!.ecosystems as Set<string>)], ['npm', 'jsr']);
    assert.equal(r.get('any')!.ecosystems, '*');
    assert.throws(() => parseRegistries(`# old format\npypi.org ${key}\n`), /registries:2: registry pypi.org is not bound to any ecosystem: append ecosystems=/);
    for (const bad of ['ecosystems=PyPI', 'ecosystems=pypi,pypi', 'ecosystems=', 'rate=0', 'rate=-1', 'rate=1e3', 'burst=0 rate=1', 'daily=x', 'color=red', 'ecosystems=pypi ecosystems=npm']) {
      assert.throws(() => parseRegistries(`a ${key} ${bad.includes('ecosystems') ? '' : 'ecosystems=pypi '}${bad}\n`), /registries:1:/, bad);
    }
    assert.throws(() => parseRegistries(`a ${key} ecosystems=pypi burst=3\n`), /burst needs a rate/);
    const line = formatRegistryLine('a', key, { ecosystems: ['pypi', 'npm'], rate: 2, daily: 9 });
    assert.equal(line, `a ${key} ecosystems=pypi,npm rate=2 daily=9`);
    assert.equal(parseRegistries(line).get('a')!.daily, 9);
  });

  it('tile storage keys are collision-free: an index outside the key range throws instead of aliasing the level above', () => {
    assert.equal(tileId(1, 0), 2 ** 46);
    assert.throws(() => tileId(0, 2 ** 46), (e: { code: string }) => e.code === 'out_of_range');
    assert.throws(() => tileId(64, 0), (e: { code: string }) => e.code === 'out_of_range');
    assert.throws(() => tileId(-1, 0), (e: { code: string }) => e.code === 'out_of_range');
    assert.throws(() => tileId(0, 1.5), (e: { code: string }) => e.code === 'out_of_range');
  });

  it('a refusal is logged as one line: a bug by its name, message and first frame, never its stack', async () => {
    const lines: string[] = [];
    const app = express();
    app.get('/bug', () => {
      throw new TypeError('x is not a function\nsecond line');
    });
    app.use(errorMiddleware((m) => lines.push(m)));
    const res = await request(app).get('/bug?q=%0Aevil').expect(500);
    assert.deepEqual(res.body, { error: 'internal', message: 'internal error' });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, /\n/);
    assert.match(lines[0]!, /^refused GET \/bug\?q=%0Aevil: 500 internal: internal error \(TypeError: x is not a function\?second line at \S+limits\.test\.ts:\d+:\d+\)$/);
  });
});
