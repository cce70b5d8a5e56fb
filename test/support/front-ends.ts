/**
 * Several real `pkglog serve` processes (bin/pkglog.js) on one PostgreSQL database: each with its own data dir holding
 * a copy of the same log key and registries file, as docs/operations.md#scaling-out describes. Used by
 * test/e2e/failover.test.ts and bench/run.ts (failover and two-front-end figures).
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { addRegistry } from '../../server/registries.ts';
import { registriesFile } from '../../server/main.ts';
import { startProcess, type Started } from './process.ts';
import { REGISTRY, REGISTRY_NAME } from './submissions.ts';

export interface FrontEnd {
  name: string;
  dataDir: string;
  proc: Started | undefined;
  /** The URL of the running process (changes at every restart: port 0). */
  url: string;
}

export interface FrontEndsOptions {
  /** Parent directory for the data dirs (the caller removes it). */
  dir: string;
  databaseUrl: string;
  count: number;
  origin: string;
  leaseTtlMs?: number;
  batchIntervalMs?: number;
  verifyThreads?: number;
  /** More `pkglog serve` flags for every front end. */
  extraArgs?: string[];
}

export class FrontEnds {
  readonly all: FrontEnd[] = [];
  vkey = '';
  private readonly o: FrontEndsOptions;
  private readonly pool: pg.Pool;

  private constructor(o: FrontEndsOptions) {
    this.o = o;
    this.pool = new pg.Pool({ connectionString: o.databaseUrl, max: 2 });
    this.pool.on('error', () => {}); // an idle client dropped with the database at the end
  }

  /** Starts the first front end (it creates the key), copies its key and registries to the others, starts them. */
  static async start(o: FrontEndsOptions): Promise<FrontEnds> {
    const f = new FrontEnds(o);
    try {
      for (let i = 0; i < o.count; i++) {
        const dataDir = join(o.dir, `fe${i + 1}`);
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        f.all.push({ name: `fe${i + 1}`, dataDir, proc: undefined, url: '' });
      }
      const first = f.all[0]!;
      addRegistry(registriesFile(first.dataDir), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: ['pypi'] });
      await f.restart(first);
      f.vkey = first.proc!.info.get('vkey')!;
      for (const fe of f.all.slice(1)) {
        copyFileSync(join(first.dataDir, 'log.key'), join(fe.dataDir, 'log.key'));
        copyFileSync(registriesFile(first.dataDir), registriesFile(fe.dataDir));
      }
      await Promise.all(f.all.slice(1).map((fe) => f.restart(fe)));
      return f;
    } catch (e) {
      await f.stop();
      throw e;
    }
  }

  args(fe: FrontEnd): string[] {
    const o = this.o;
    return [
      'serve', '--data-dir', fe.dataDir, '--listen', '127.0.0.1:0', '--origin', o.origin, '--database', o.databaseUrl,
      '--lease-ttl', String(o.leaseTtlMs ?? 1000), '--batch-interval', String(o.batchIntervalMs ?? 20),
      '--verify-threads', String(o.verifyThreads ?? 0), ...(o.extraArgs ?? []),
    ];
  }

  /** (Re)starts a front end that is not running. */
  async restart(fe: FrontEnd): Promise<void> {
    fe.proc = await startProcess(this.args(fe), { PKGLOG_LOG_LEVEL: 'warn' }, 60_000);
    fe.url = fe.proc.url;
    const v = fe.proc.info.get('vkey');
    if (this.vkey !== '' && v !== this.vkey) throw new Error(`${fe.name} started with another key: ${v}`);
  }

  live(): FrontEnd[] {
    return this.all.filter((fe) => fe.proc !== undefined);
  }

  /** The running front end that holds the lease now (by the pid in the lease's holder name), if any. */
  async holder(): Promise<FrontEnd | undefined> {
    const r = await this.pool.query<{ holder: string; live: boolean }>(
      'SELECT holder, expires_at > clock_timestamp() AS live FROM sequencer_lease WHERE id = 1');
    const row = r.rows[0];
    if (row === undefined || !row.live) return undefined;
    return this.live().find((fe) => row.holder.includes(`/${fe.proc!.child.pid}/`));
  }

  /** Waits until some running front end holds the lease. */
  async waitForHolder(timeoutMs = 20_000): Promise<FrontEnd> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const h = await this.holder();
      if (h !== undefined) return h;
      if (Date.now() > until) throw new Error('no front end took the sequencer lease');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** kill -9. */
  async kill(fe: FrontEnd): Promise<void> {
    const p = fe.proc;
    fe.proc = undefined;
    await p?.stop('SIGKILL');
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map(async (fe) => {
      const p = fe.proc;
      fe.proc = undefined;
      await p?.stop('SIGKILL');
    }));
    await this.pool.end();
  }
}
