/** A fresh, uniquely named PostgreSQL database for one test file (dropped afterwards). */
import pg from 'pg';
import { randomBytes } from 'node:crypto';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

const SERVER = process.env.PKGLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function testDatabase(): Promise<TestDatabase> {
  const name = `pkglog_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: SERVER });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(SERVER);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: SERVER });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
