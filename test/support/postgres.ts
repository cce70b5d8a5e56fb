/**
 * A PostgreSQL server for tests, found once per test process:
 *   1. PKGLOG_TEST_DATABASE_URL when set (a URL whose user may CREATE DATABASE);
 *   2. else one answering at PKGLOG_TEST_PG_PROBE_URL (default postgres://postgres@127.0.0.1:5432/postgres);
 *   3. else a throwaway server started here with the system's binaries (/usr/lib/postgresql/<v>/bin/initdb and pg_ctl,
 *      or whatever `pg_config --bindir` names) on a temporary directory and a free port, stopped when the process
 *      exits. initdb refuses to run as root, so as root it runs as the `postgres` user (else `nobody`) via runuser.
 * When none can be had, postgresServer() REJECTS with a message saying so: tests that need PostgreSQL fail, never skip.
 *
 * Each test takes its own database: createTestDatabase() makes `pkglog_t_<pid>_<random>` and returns its URL and a
 * drop() that removes it (terminating its connections first). withTestDatabase(fn) does both around fn.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort } from './process.ts';

export interface PostgresServer {
  /** An admin URL (a database the user may connect to; CREATE DATABASE allowed). */
  adminUrl: string;
  /** How it was found. */
  source: 'env' | 'probe' | 'started';
  /** Stops a server started here (no-op otherwise). */
  stop(): void;
}

export const DEFAULT_PROBE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

let found: Promise<PostgresServer> | undefined;

/** The test process's PostgreSQL server (found or started once). */
export function postgresServer(): Promise<PostgresServer> {
  found ??= discoverPostgres();
  return found;
}

/** Answers within a few seconds? Resolves to the error message when it does not. */
export async function probe(url: string, timeoutMs = 3000): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return undefined;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

export interface DiscoverOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides PKGLOG_TEST_PG_PROBE_URL / the default probe. */
  probeUrl?: string;
}

/** Runs the discovery steps (see the file comment); a fresh search each call. */
export async function discoverPostgres(o: DiscoverOptions = {}): Promise<PostgresServer> {
  const env = o.env ?? process.env;
  const tried: string[] = [];
  const fromEnv = env.PKGLOG_TEST_DATABASE_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    const err = await probe(fromEnv);
    if (err === undefined) return { adminUrl: fromEnv, source: 'env', stop() {} };
    throw new Error(`PostgreSQL for the tests: PKGLOG_TEST_DATABASE_URL=${redact(fromEnv)} does not answer (${err})`);
  }
  const probeUrl = o.probeUrl ?? env.PKGLOG_TEST_PG_PROBE_URL ?? DEFAULT_PROBE_URL;
  const err = await probe(probeUrl);
  if (err === undefined) return { adminUrl: probeUrl, source: 'probe', stop() {} };
  tried.push(`${redact(probeUrl)}: ${err}`);
  try {
    return await startThrowaway();
  } catch (e) {
    tried.push(`starting a throwaway server: ${(e as Error).message}`);
  }
  throw new Error(`PostgreSQL for the tests: none could be had (set PKGLOG_TEST_DATABASE_URL, run one on 127.0.0.1:5432, ` +
    `or install the PostgreSQL server binaries). Tried: ${tried.join('; ')}`);
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** The directory holding initdb and pg_ctl, or undefined. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length > 0) return join(base, versions[0]!, 'bin');
  }
  const r = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  return dir !== '' && existsSync(join(dir, 'initdb')) ? dir : undefined;
}


/** The user the server runs as: ourselves, or (as root) `postgres` or `nobody`. */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (r.status === 0 && g.status === 0) return { name, uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
  }
  throw new Error('running as root, and neither a postgres nor a nobody user exists to run the server as');
}

/** initdb + pg_ctl start on a temporary directory and a free port; stopped (and removed) at process exit. */
export async function startThrowaway(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb, pg_config --bindir)');
  const user = serverUser();
  const root = mkdtempSync(join(tmpdir(), 'pkglog-pg-'));
  chmodSync(root, 0o755);
  const data = join(root, 'data');
  const run = (cmd: string, args: string[]) => {
    const argv = user === undefined ? [cmd, args] as const : ['runuser', ['-u', user.name, '--', cmd, ...args]] as const;
    const r = spawnSync(argv[0], argv[1], { encoding: 'utf8', cwd: root, timeout: 120_000 });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || String(r.error ?? '')).trim().slice(0, 400)}`);
  };
  if (user !== undefined) chownSync(root, user.uid, user.gid);
  const port = await freePort();
  try {
    run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '-c', 'fsync=off']);
  } catch (e) {
    // Older initdb has no -c: retry without it.
    if (!/unrecognized option|invalid option/.test((e as Error).message)) {
      rmSync(root, { recursive: true, force: true });
      throw e;
    }
    rmSync(data, { recursive: true, force: true });
    run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  }
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  try {
    run(join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(root, 'server.log'), '-w', '-t', '60', 'start']);
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      const argv = user === undefined ? [join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']] as const
        : ['runuser', ['-u', user.name, '--', join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']] as const;
      execFileSync(argv[0], argv[1], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return { adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, source: 'started', stop };
}

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database (its connections are terminated first). Idempotent. */
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A fresh, uniquely named database on the test server. */
export async function createTestDatabase(server?: PostgresServer): Promise<TestDatabase> {
  const s = server ?? (await postgresServer());
  const name = `pkglog_t_${process.pid}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: s.adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  let dropped = false;
  return {
    url: withDatabase(s.adminUrl, name),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      const c = new pg.Client({ connectionString: s.adminUrl });
      await c.connect();
      try {
        await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
        await c.query(`DROP DATABASE IF EXISTS ${name}`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Runs fn with a fresh database, dropped afterwards whatever fn does. */
export async function withTestDatabase<T>(fn: (db: TestDatabase) => Promise<T>): Promise<T> {
  const db = await createTestDatabase();
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}
