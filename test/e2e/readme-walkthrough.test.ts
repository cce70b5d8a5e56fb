/**
 * The README's walk-through, pasted as is: this test takes the ```sh block(s) of README.md's "Walk-through" section and
 * runs them with `bash -e` the way a new user would, against `npm start`, and checks every step.
 *
 * The environment is a fresh copy of this checkout in a temporary directory: every file git tracks (a clone), the
 * `node_modules` of this checkout (a symlink, standing in for `npm ci`'s install) and its freshly built `dist/`
 * (what `npm ci`'s prepare step builds; test/support/process.ts rebuilds it when stale). In that directory:
 *   - `npm start` starts the log exactly as the README says, with one difference: PKGLOG_LISTEN=127.0.0.1:0
 *     (a free port; README "Configuration"), and
 *   - the walk-through's text is run unchanged except for ONE documented substitution: every `127.0.0.1:8080` becomes
 *     `127.0.0.1:<the port the log printed>`.
 * `npx pkglog` resolves as it does in a checkout: npm installs the directory into its npx cache (running its prepare
 * script, `npm run build`, once) and runs its `bin/pkglog.js`. npm gets its own empty cache and `offline=true`, so
 * nothing leaves 127.0.0.1. The walk-through's files must all be covered by the checkout's .gitignore (checked with
 * `git add --dry-run` in the copy).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../support/process.ts'; // importing it rebuilds dist/ when stale
import { fencedBlocks, readDoc, section } from '../support/markdown.ts';

const README_PORT = '127.0.0.1:8080';

/** A shell environment without what the test runner's npm put there (npm_*, PKGLOG_*): a fresh terminal. */
function freshEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|PKGLOG_|INIT_CWD$|XDG_STATE_HOME$)/i.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('README walk-through, pasted as is (real npm start, npx pkglog, bash -e)', function () {
  this.timeout(600_000);
  let root: string; // holds the checkout copy and npm's cache and state, removed afterwards
  let work: string; // the copy of the checkout: where the user pastes the walk-through
  let server: ChildProcess | undefined;
  let serverOut = '';
  let port = '';
  let env: NodeJS.ProcessEnv;

  before(async function () {
    root = mkdtempSync(join(tmpdir(), 'pkglog-readme-'));
    work = join(root, 'pkglog');
    const files = spawnSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(files.status, 0, files.stderr);
    for (const f of files.stdout.split('\0').filter((x) => x !== '')) {
      if (!existsSync(join(REPO_ROOT, f))) continue; // deleted in the work tree, not yet committed
      mkdirSync(dirname(join(work, f)), { recursive: true });
      cpSync(join(REPO_ROOT, f), join(work, f));
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(work, 'node_modules'));
    cpSync(join(REPO_ROOT, 'dist'), join(work, 'dist'), { recursive: true });
    env = freshEnv({
      npm_config_cache: join(root, 'npm-cache'),
      npm_config_offline: 'true',
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      XDG_STATE_HOME: join(root, 'state'),
    });

    // `npm start`, as the README says (PKGLOG_LISTEN: a free port instead of 8080).
    server = spawn('npm', ['start'], { cwd: work, env: { ...env, PKGLOG_LISTEN: '127.0.0.1:0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    port = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not say it was listening:\n${serverOut}`)), 120_000);
      const onData = (d: Buffer) => {
        serverOut += d.toString();
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(serverOut);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      server!.stdout!.on('data', onData);
      server!.stderr!.on('data', onData);
      server!.on('exit', (code) => reject(new Error(`npm start exited (${code}):\n${serverOut}`)));
    });
  });

  after(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('runs every line with bash -e: keys, registry, submit, policy, verify (online and offline), audit', async () => {
    const walk = section(readDoc('README.md'), 'Walk-through');
    const blocks = fencedBlocks(walk, 'sh');
    assert.ok(blocks.length >= 1, 'the Walk-through section has a ```sh block');
    const script = blocks.join('');
    assert.ok(script.includes(README_PORT), `the walk-through talks to the log at ${README_PORT}`);
    assert.doesNotMatch(script.replaceAll(README_PORT, ''), /127\.0\.0\.1:\d+/, 'the only address in it is the log\'s');
    writeFileSync(join(root, 'walkthrough.sh'), script.replaceAll(README_PORT, `127.0.0.1:${port}`));

    const r = await run('bash', ['-e', '-x', join(root, 'walkthrough.sh')], work, env, 540_000);
    const shown = `--- stdout\n${r.stdout}\n--- stderr (bash -x)\n${r.stderr}\n--- npm start\n${serverOut}`;
    assert.equal(r.code, 0, `the walk-through failed\n${shown}`);

    // 1. keys: files of mode 0600; the registry's vkey reached the log's registries.txt (2.)
    for (const k of ['registry.key', 'alice.key']) {
      assert.match(readFileSync(join(work, k), 'utf8'), /^PRIVATE\+KEY\+/, k);
      assert.equal(statSync(join(work, k)).mode & 0o777, 0o600, `${k} is mode 0600`);
    }
    assert.match(readFileSync(join(work, 'data', 'registries.txt'), 'utf8'), /^pypi\.org pypi\.org\+[0-9a-f]{8}\+\S+ ecosystems=pypi/m);
    // 3. submitted as entry 0, with its offline proof
    assert.match(r.stdout, /logged pypi\/requests 2\.32\.3 requests-2\.32\.3-py3-none-any\.whl as entry 0/, shown);
    assert.match(readFileSync(join(work, 'requests.tlog-proof'), 'utf8'), /^c2sp\.org\/tlog-proof@v1\nextra /);
    // 4. the policy names the running log
    assert.match(readFileSync(join(work, 'policy.txt'), 'utf8'), new RegExp(`^log pkglog\\.localhost/[0-9a-f]+\\+[0-9a-f]{8}\\+\\S+ http://127\\.0\\.0\\.1:${port}\\nquorum none\\n$`));
    // 5. verify online and offline, 6. audit: each ends in VERIFIED (bash -e: each exited 0)
    assert.equal(r.stdout.match(/^VERIFIED$/gm)?.length, 3, shown);
    assert.match(r.stdout, /ok {4}inclusion: entry 0 is included in the checkpoint of size 1/);
    assert.match(r.stdout, /ok {4}tiles: recomputed 1 entries/);

    const cp = await (await fetch(`http://127.0.0.1:${port}/checkpoint`)).text();
    assert.match(cp, /^pkglog\.localhost\/[0-9a-f]+\n1\n/, 'the log holds the one entry');

    // .gitignore covers everything the walk-through created (keys, proof, policy, the sample file, data/).
    assert.equal(spawnSync('git', ['init', '-q'], { cwd: work }).status, 0);
    const dry = spawnSync('git', ['add', '--dry-run', '--all', '.'], { cwd: work, encoding: 'utf8' });
    assert.equal(dry.status, 0, dry.stderr);
    const tracked = new Set(spawnSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.split('\0'));
    const added = dry.stdout.split('\n').filter((l) => l.startsWith('add ')).map((l) => l.slice(5, -1));
    assert.deepEqual(added.filter((f) => !tracked.has(f)), [], 'files the walk-through created that .gitignore does not cover');
    assert.ok(added.length > 100, 'git would add the tracked files (the dry run saw the copy)');
  });

  it('every GET example of the README "HTTP API" section answers 200 from the walk-through log', async () => {
    const api = section(readDoc('README.md'), 'HTTP API');
    const sha256 = createHash('sha256').update(readFileSync(join(work, 'requests-2.32.3-py3-none-any.whl'))).digest('hex');
    const urls = fencedBlocks(api, 'sh').join('').split('\n')
      .map((l) => /^curl -s '?(http:\/\/127\.0\.0\.1:8080\/[^'\s]*)'?(?:\s|$)/.exec(l)?.[1])
      .filter((u): u is string => u !== undefined);
    assert.ok(urls.length >= 10, `found the GET examples: ${urls.join(' ')}`);
    for (const u of urls) {
      const url = u.replace(README_PORT, `127.0.0.1:${port}`).replace('<hex>', sha256);
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200, `${u}: ${body.toString('utf8').slice(0, 300)}`);
      assert.ok(body.length > 0, u);
      if (res.headers.get('content-type')?.startsWith('application/json')) {
        const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        if (u.includes('/lookup/')) assert.equal((json.entries as unknown[]).length, 1, `${u} finds the entry`);
      }
    }
  });
});
