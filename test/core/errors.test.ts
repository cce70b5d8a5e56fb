/**
 * The one error model: docs/errors.md lists exactly the table in core/errors.ts, and the log's JSON errors, the
 * witness's text errors and the exit codes of commands all come from that table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { ERROR_CODES, EXIT, PkglogError, exitCode, httpStatus, type ErrorCode } from '../../core/errors.ts';
import { errorResponse } from '../../server/http-errors.ts';
import { createApp } from '../../witness/app.ts';
import type { Witness } from '../../witness/witness.ts';

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

describe('core/errors: one code table', () => {
  it('docs/errors.md lists every code with its HTTP status, exit code and meaning, and nothing else', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d+) \| (\d+) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), Number(m[3]), m[4]]);
    assert.deepEqual(rows, CODES.map((c) => [c, ERROR_CODES[c].http, ERROR_CODES[c].exit, ERROR_CODES[c].meaning]));
  });

  it('docs/errors.md documents every exit code', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| (\d+) \| /gm)].map((m) => Number(m[1]));
    assert.deepEqual(documented, Object.values(EXIT));
  });

  it('every code has a 4xx/5xx status and a non-zero, defined exit code', () => {
    const exits = new Set<number>(Object.values(EXIT));
    for (const c of CODES) {
      const { http, exit } = ERROR_CODES[c];
      assert.ok(http >= 400 && http <= 599, `${c}: ${http}`);
      assert.ok((exit as number) !== EXIT.OK && exits.has(exit), `${c}: exit ${exit}`);
    }
  });

  it('keeps the statuses the specs and clients rely on', () => {
    // C2SP tlog-witness add-checkpoint: 404 unknown origin, 403 no trusted signature, 400 old > size,
    // 409 stale old size (with the size), 422 bad proof and same size/different root.
    const want: Partial<Record<ErrorCode, number>> = {
      not_found: 404, bad_signature: 403, out_of_range: 400, stale_size: 409, invalid_proof: 422, inconsistent: 422,
      malformed: 400, too_large: 413, conflict: 409, overloaded: 503, rate_limited: 429, wrong_ecosystem: 403,
      unsafe_state: 503, internal: 500,
    };
    for (const [c, s] of Object.entries(want)) assert.equal(httpStatus(c as ErrorCode), s, c);
  });

  it('maps thrown values to exit codes: by code, anything else is internal', () => {
    assert.equal(exitCode(new PkglogError('usage', 'x')), EXIT.USAGE);
    assert.equal(exitCode(new PkglogError('network', 'x')), EXIT.NETWORK);
    assert.equal(exitCode(new PkglogError('inconsistent', 'x')), EXIT.FORK);
    assert.equal(exitCode(new PkglogError('quorum_not_met', 'x')), EXIT.POLICY);
    assert.equal(exitCode(new PkglogError('unsafe_state', 'x')), EXIT.UNSAFE_STATE);
    assert.equal(exitCode(new Error('boom')), ERROR_CODES.internal.exit);
    assert.equal(exitCode('not even an error'), ERROR_CODES.internal.exit);
  });

  it('the log answers every code with the table status and a JSON {error, message} body', () => {
    for (const c of CODES) {
      const { status, body } = errorResponse(new PkglogError(c, `a ${c} failure`, { index: 3 }));
      assert.equal(status, ERROR_CODES[c].http, c);
      assert.deepEqual(body, { error: c, message: `a ${c} failure`, index: 3 });
    }
    assert.deepEqual(errorResponse(new Error('secret stack')), { status: 500, body: { error: 'internal', message: 'internal error' } });
  });

  it('the witness answers every code with the same table status (stale_size: text/x.tlog.size with the size)', async () => {
    let next: PkglogError = new PkglogError('internal', 'x');
    const stub = { addCheckpoint: async () => { throw next; }, log: () => {} } as unknown as Witness;
    const app = createApp({ witness: stub });
    for (const c of CODES) {
      next = new PkglogError(c, `a ${c} failure`, c === 'stale_size' ? { treeSize: 7 } : undefined);
      const res = await request(app).post('/add-checkpoint').send('old 0\n');
      assert.equal(res.status, ERROR_CODES[c].http, c);
      if (c === 'stale_size') {
        assert.equal(res.headers['content-type'], 'text/x.tlog.size');
        assert.equal(res.text, '7\n');
      } else {
        assert.equal(res.text, `a ${c} failure\n`);
      }
    }
  });
});
