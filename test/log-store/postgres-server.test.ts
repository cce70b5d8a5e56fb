/**
 * test/support/postgres.ts finds a PostgreSQL server for the tests, and says so when it cannot: each path for real —
 * PKGLOG_TEST_DATABASE_URL, the probe, and a throwaway server started with the system's initdb/pg_ctl when the probe
 * finds nothing (pointed at a port where nothing answers).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import pg from 'pg';
import { createTestDatabase, discoverPostgres, postgresServer, probe } from '../support/postgres.ts';

async function deadPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('test support: a PostgreSQL server for the tests', function () {
  this.timeout(180_000);

  it('starts a throwaway server with the system binaries when nothing answers at the probe, and stops it', async () => {
    const port = await deadPort();
    const server = await discoverPostgres({ env: {}, probeUrl: `postgres://postgres@127.0.0.1:${port}/postgres` });
    try {
      assert.equal(server.source, 'started');
      assert.notEqual(new URL(server.adminUrl).port, String(port));
      const db = await createTestDatabase(server);
      try {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        const r = await c.query<{ d: string }>('SELECT current_database() AS d');
        await c.end();
        assert.equal(r.rows[0]!.d, db.name);
        assert.match(db.name, /^pkglog_t_\d+_[0-9a-f]{10}$/);
      } finally {
        await db.drop();
      }
    } finally {
      server.stop();
    }
    assert.notEqual(await probe(server.adminUrl, 1000), undefined, 'stopped: nothing answers there any more');
  });

  it('uses PKGLOG_TEST_DATABASE_URL when set, and fails (never skips) when that server does not answer', async () => {
    const real = await postgresServer();
    const viaEnv = await discoverPostgres({ env: { PKGLOG_TEST_DATABASE_URL: real.adminUrl } });
    assert.equal(viaEnv.source, 'env');
    const port = await deadPort();
    await assert.rejects(discoverPostgres({ env: { PKGLOG_TEST_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres` } }),
      /PKGLOG_TEST_DATABASE_URL=.* does not answer/);
  });

  it('gives each caller its own database and drops it', async () => {
    const a = await createTestDatabase();
    const b = await createTestDatabase();
    assert.notEqual(a.name, b.name);
    await a.drop();
    await a.drop(); // idempotent
    const admin = new pg.Client({ connectionString: (await postgresServer()).adminUrl });
    await admin.connect();
    try {
      const r = await admin.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[a.name, b.name]]);
      assert.deepEqual(r.rows.map((x) => x.datname), [b.name]);
    } finally {
      await admin.end();
      await b.drop();
    }
  });
});
