/**
 * Runs `pkglog` subcommands as real processes for end-to-end tests (127.0.0.1, port 0), through bin/pkglog.js and the
 * compiled JavaScript in dist/ — the path users take. `npm test` builds dist/ first; when a test file is run on its own
 * (`npx mocha test/e2e/x.test.ts`) and dist/ is older than the TypeScript sources, it is rebuilt here, so a stale
 * dist/ is never what gets tested.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PKGLOG_BIN = join(REPO_ROOT, 'bin', 'pkglog.js');

/** The directories tsconfig.build.json compiles into dist/. */
const BUILT_DIRS = ['core', 'log-store', 'runtime', 'server', 'witness', 'mirror', 'client'];

function filesUnder(dir: string, suffix: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix) && !f.endsWith('.d.ts'))
    .map((f) => join(dir, f));
}

/** Why dist/ does not match the sources (a missing, older or orphaned file), or undefined when it does. */
export function distStaleness(root = REPO_ROOT): string | undefined {
  const dist = join(root, 'dist');
  let oldest = Infinity;
  for (const d of BUILT_DIRS) {
    for (const src of filesUnder(join(root, d), '.ts')) {
      const out = join(dist, relative(root, src)).replace(/\.ts$/, '.js');
      if (!existsSync(out)) return `${relative(root, out)} is missing`;
      const t = statSync(out).mtimeMs;
      if (t < statSync(src).mtimeMs) return `${relative(root, out)} is older than ${relative(root, src)}`;
      oldest = Math.min(oldest, t);
    }
    for (const out of filesUnder(join(dist, d), '.js')) {
      if (!existsSync(join(root, relative(dist, out)).replace(/\.js$/, '.ts'))) return `${relative(root, out)} has no source`;
    }
  }
  for (const c of ['tsconfig.json', 'tsconfig.build.json']) {
    if (existsSync(join(root, c)) && statSync(join(root, c)).mtimeMs > oldest) return `${c} is newer than dist/`;
  }
  return undefined;
}

/** Rebuilds dist/ (`npm run build`) when it does not match the sources. */
export function ensureBuilt(): void {
  const why = distStaleness();
  if (why === undefined) return;
  process.stderr.write(`test/support/process.ts: ${why}; running npm run build\n`);
  const npm = process.env.npm_execpath;
  const r = npm !== undefined && npm.endsWith('.js')
    ? spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' })
    : spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' });
  const still = distStaleness();
  // tsc emits even with type errors (the typecheck reports those); what matters here is that dist/ matches the sources.
  if (still !== undefined) throw new Error(`npm run build did not bring dist/ up to date (${still})\n${r.stdout}\n${r.stderr}`);
}

ensureBuilt();

export interface Started {
  child: ChildProcess;
  /** Lines `<prefix>: <key> <value>` printed before the process said it was listening. */
  info: Map<string, string>;
  url: string;
  stdout: () => string;
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * How long a process may take to say it is listening: a bound, not a measure. A start takes well under a second on an
 * idle machine and took over 20 s at a load average of 20+ (a process that exits instead fails at once).
 */
export const START_TIMEOUT_MS = 60_000;

/**
 * Starts `node bin/pkglog.js ARGS…` and resolves once it prints `… listening on <url>`.
 * Lines like `pkglog: vkey <v>` are collected into `info` (key `vkey`).
 */
export function startProcess(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = START_TIMEOUT_MS): Promise<Started> {
  const child = spawn(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const info = new Map<string, string>();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pkglog ${args.join(' ')} did not start in time\nstdout: ${out}\nstderr: ${err}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        const m = /^[^:]+: (\S+) (.*)$/.exec(line);
        if (m) info.set(m[1]!, m[2]!);
        const l = /listening on (http:\/\/\S+)/.exec(line);
        if (l) {
          clearTimeout(timer);
          resolve({
            child, info, url: l[1]!, stdout: () => out, stderr: () => err,
            async stop(signal = 'SIGTERM') {
              if (child.exitCode === null && child.signalCode === null) child.kill(signal);
              return exited;
            },
          });
          return;
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pkglog ${args.join(' ')} exited with ${code}\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** Runs a short pkglog command to completion. */
export function runPkglog(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', input, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a pkglog command to completion asynchronously (set-up commands can run side by side, servers in this process keep serving). */
export function pkglogRun(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (status) => resolve({ status, stdout, stderr })));
}

/** pkglogRun that fails on a non-zero exit; its stdout. */
export async function pkglogOk(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await pkglogRun(args, env);
  if (r.status !== 0) throw new Error(`pkglog ${args.join(' ')} exited with ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Polls `fn` every 100 ms (a throw counts as not yet) until it gives a value; throws after `ms`. */
export async function waitForValue<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP port free on 127.0.0.1 right now (for a child that must be told its port, e.g. nginx or postgres). */
export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}
