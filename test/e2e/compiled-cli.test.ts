/**
 * The shipped command as users run it: bin/pkglog.js on the compiled JavaScript in dist/ (no TypeScript compiled at
 * start-up, no tsx), `pkglog --version`, and `npm start` — a SIGTERM or SIGINT sent to the npm process reaches the
 * server, which exits and closes its port. Real processes on 127.0.0.1 port 0.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PKGLOG_BIN, REPO_ROOT, runPkglog } from '../support/process.ts';
import { tempDir } from '../client/helpers.ts';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The npm that runs this test (npm test / npx set npm_execpath), else the one on PATH. */
function npmCommand(args: string[]): [string, string[]] {
  const cli = process.env.npm_execpath;
  return cli !== undefined && cli.endsWith('.js') ? [process.execPath, [cli, ...args]] : ['npm', args];
}

/** Pids of all descendants of `pid` (POSIX `ps`). */
function descendantsOf(pid: number): number[] {
  const r = spawnSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const pairs = r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/).map(Number));
  const found: number[] = [];
  for (let todo = [pid]; todo.length > 0; ) {
    const kids = pairs.filter(([, ppid]) => todo.includes(ppid!)).map(([p]) => p!);
    found.push(...kids);
    todo = kids;
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true when something accepts a connection on 127.0.0.1:port, false when it is refused. */
function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('e2e: the compiled pkglog command', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup(): void };
  before(() => (tmp = tempDir('pkglog-e2e-compiled-')));
  after(() => tmp?.cleanup());

  it('pkglog --version and -V print the package version and exit 0', () => {
    for (const flag of ['--version', '-V']) {
      const r = runPkglog([flag]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `pkglog ${VERSION}\n`);
      assert.equal(r.stderr, '');
    }
  });

  it('loads only compiled JavaScript from dist/: no .ts file, no tsx; the client loads neither express nor better-sqlite3', () => {
    // A module-loader hook records every URL the process loads.
    const log = join(tmp.dir, 'loaded');
    writeFileSync(join(tmp.dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); }\n`);
    writeFileSync(join(tmp.dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
    const loaded = (args: string[]) => {
      writeFileSync(log, '');
      const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(tmp.dir, 'register.mjs')).href, PKGLOG_BIN, ...args], { encoding: 'utf8', cwd: tmp.dir, env: { ...process.env, NODE_OPTIONS: '' } });
      assert.equal(r.status, 0, `pkglog ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
      return readFileSync(log, 'utf8').split('\n').filter((u) => u !== '');
    };
    const dist = pathToFileURL(join(REPO_ROOT, 'dist')).href + '/';
    for (const args of [['keygen', '--name', 'example.test/k', '--out', join(tmp.dir, 'k.key')], ['serve', '--help'], ['witness', '--help']]) {
      const urls = loaded(args);
      const project = urls.filter((u) => u.startsWith('file:') && !u.includes('/node_modules/') && u !== pathToFileURL(PKGLOG_BIN).href && !u.startsWith(pathToFileURL(tmp.dir).href));
      assert.ok(urls.some((u) => u.startsWith(dist)), `${args[0]}: nothing loaded from dist/:\n${urls.join('\n')}`);
      assert.deepEqual(project.filter((u) => !u.startsWith(dist) || !u.endsWith('.js')), [], `${args[0]}: loaded outside dist/*.js`);
      assert.deepEqual(urls.filter((u) => /\.[cm]?tsx?$/.test(u) || u.includes('/node_modules/tsx/')), [], `${args[0]}: TypeScript or tsx loaded`);
    }
    const client = loaded(['keygen', '--name', 'example.test/k2', '--out', join(tmp.dir, 'k2.key')]);
    assert.deepEqual(client.filter((u) => /\/node_modules\/(express|better-sqlite3)\//.test(u)), [], 'the client loaded server dependencies');
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`npm start: ${signal} sent to the npm process reaches the server, which exits and closes its port`, async () => {
      const dataDir = join(tmp.dir, `data-${signal}`);
      const [cmd, args] = npmCommand(['start']);
      const npm = spawn(cmd, args, {
        cwd: REPO_ROOT,
        env: { ...process.env, PKGLOG_DATA_DIR: dataDir, PKGLOG_LISTEN: '127.0.0.1:0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
      npm.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const npmExit = new Promise<[number | null, string | null]>((r) => npm.once('exit', (code, sig) => r([code, sig])));
      let servers: number[] = [];
      try {
        await until('npm start prints the listening line', () => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out) || npm.exitCode !== null);
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        assert.ok(m, `npm start did not start the server\nstdout: ${out}\nstderr: ${err}`);
        const port = Number(m[1]);
        assert.equal(await portOpen(port), true);
        servers = descendantsOf(npm.pid!);
        assert.ok(servers.length > 0, 'npm start has no child process');
        npm.kill(signal);
        const [code, sig] = await npmExit;
        await until(`the server process ${servers.join(', ')} exits`, () => servers.every((p) => !alive(p)));
        assert.equal(await portOpen(port), false, `port ${port} still accepts connections after npm exited (${code ?? sig})`);
      } finally {
        for (const p of servers) if (alive(p)) process.kill(p, 'SIGKILL');
        if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
      }
    });
  }
});
