/**
 * The start-up witness check (server/witness-check.ts) against a real witness (witness/ module) on 127.0.0.1:0:
 * a witness that cosigned a larger size, or another root for our size, refuses; the same checkpoint, a witness behind,
 * a witness that does not know the log, an unreachable or silent witness do not (the last ones only warn), and the
 * check never blocks longer than its timeout.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { isPkglogError } from '../../core/errors.ts';
import { checkWitnesses } from '../../server/witness-check.ts';
import { FakeLog } from '../witness/fake-log.ts';
import { makeWitness, type TestWitness } from '../witness/helpers.ts';

const ORIGIN = 'example.test/witness-check';

function listen(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server })));
}

describe('server/witness-check: asking the witnesses before signing', function () {
  this.timeout(30_000);
  const witnesses: TestWitness[] = [];
  const servers: Server[] = [];
  let url: string;
  let otherUrl: string;
  const honest = new FakeLog(ORIGIN).append(5);
  const logs: string[] = [];
  const check = (log: FakeLog, size: number, ws = [{ url }], extra = {}) =>
    checkWitnesses({ witnesses: ws, treeSize: size, note: log.checkpoint(size), log: (m) => logs.push(m), timeoutMs: 500, ...extra });

  /** A real witness on 127.0.0.1:0; with `knows`, it witnesses the log and has cosigned the honest size 5. */
  async function witness(name: string, knows: boolean): Promise<string> {
    const t = makeWitness({ name });
    witnesses.push(t);
    const s = await new Promise<Server>((resolve) => {
      const srv = t.app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    servers.push(s);
    const u = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    if (knows) {
      t.store.addLog(ORIGIN, honest.vkey, null, 1_700_000_000);
      const r = await fetch(`${u}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointRequest({ oldSize: 0, consistencyProof: [], checkpoint: Buffer.from(honest.checkpoint(5)) }) });
      assert.equal(r.status, 200);
    }
    return u;
  }

  // A port nobody listens on. Not a port this test just closed: on a busy machine another process may take that one.
  // Port 2 is privileged (no test server gets it from port 0), unused here, and not on fetch's list of blocked ports;
  // the test fails loudly (not ECONNREFUSED) if something ever listens on it.
  const closedUrl = 'http://127.0.0.1:2';
  before(async () => {
    url = await witness('witness.test/check', true);
    otherUrl = await witness('witness.test/other', false);
  });
  after(() => {
    for (const s of servers) s.close();
    for (const t of witnesses) t.close();
  });
  beforeEach(() => {
    logs.length = 0;
  });

  it('the same checkpoint: 409 5, then old 5 → 200: fine', async () => {
    await check(honest, 5);
    assert.deepEqual(logs, []);
  });

  it('our database behind what the witness cosigned (size 3 < 5): refused, naming both sizes', async () => {
    await assert.rejects(check(honest, 3), (e: Error) => {
      assert.ok(isPkglogError(e, 'unsafe_state'));
      assert.match(e.message, /refusing to sign: witness http:\/\/127\.0\.0\.1:\d+ has cosigned size 5 of this log, but the database is at size 3/);
      return true;
    });
  });

  it('another root for our size (same key, another history of size 5): refused', async () => {
    const forked = new FakeLog(ORIGIN).append(3).append(2, 'evil');
    assert.ok(!forked.rootAt(5).equals(honest.rootAt(5)));
    const own = await witness('witness.test/fork', true); // a witness that saw the fork keeps evidence of it
    await assert.rejects(check(forked, 5, [{ url: own }]), /has cosigned a different root for size 5, the size of this log's database \(HTTP 422\)/);
  });

  it('a witness behind us (it cosigned 5, we are at 8): fine', async () => {
    const ahead = new FakeLog(ORIGIN).append(8);
    await check(ahead, 8);
    assert.deepEqual(logs, []);
  });

  it('a witness that does not know the log (404), an unreachable one and a silent one: warnings, within the timeout', async () => {
    const silent = await listen(() => {}); // never answers
    servers.push(silent.server);
    const t0 = Date.now();
    await check(honest, 5, [{ url: otherUrl }, { url: closedUrl }, { url: silent.url }, { url }]);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(logs.length, 3, logs.join('\n'));
    assert.match(logs.join('\n'), /warning: witness http:\/\/127\.0\.0\.1:\d+: add-checkpoint old 0: HTTP 404/);
    assert.ok(logs.includes(`warning: witness ${closedUrl} could not be asked what it cosigned (ECONNREFUSED)`), logs.join('\n'));
    assert.match(logs.join('\n'), /could not be asked what it cosigned \(timed out\)/);
    silent.server.closeAllConnections();
  });

  it('with requireAll, a witness that cannot be asked refuses', async () => {
    await assert.rejects(check(honest, 5, [{ url: closedUrl }], { requireAll: true }), /refusing to sign until every witness was asked/);
  });

  it('a witness reply is capped while it is read', async () => {
    const big = await listen((_req, res) => {
      res.writeHead(409, { 'content-type': 'text/x.tlog.size' });
      res.end('1'.repeat(200_000) + '\n');
    });
    servers.push(big.server);
    await check(honest, 5, [{ url: big.url }]);
    assert.match(logs.join('\n'), /add-checkpoint: response is over the 65536-byte limit/);
  });
});
