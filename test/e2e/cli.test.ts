/**
 * Smoke tests of the real command (node bin/pkglog.js on dist/): the top level (unknown command or option, help,
 * pkglog help CMD) and ordinary failures of long-running commands (a port in use) are one line and a documented exit
 * code, never a stack trace. Argument handling of each command is tested in-process (test/runtime/commands.test.ts).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { runPkglog } from '../support/process.ts';
import { runAsync, tempDir } from '../client/helpers.ts';
import { VERIFY_SPEC } from '../../client/cli-verify.ts';

const NO_STACK = /^\s+at /m;

describe('e2e: pkglog command line', function () {
  this.timeout(60_000);
  let tmp: { dir: string; cleanup(): void };
  before(() => (tmp = tempDir('pkglog-e2e-cli-')));
  after(() => tmp?.cleanup());

  it('an unknown command or top-level option is one line, exit 2', () => {
    assert.deepEqual(pick(runPkglog(['nope'])), { status: 2, stdout: '', stderr: "pkglog: unknown command 'nope' (see pkglog --help)\n" });
    assert.deepEqual(pick(runPkglog(['-o'])), { status: 2, stdout: '', stderr: "pkglog: unknown option '-o' (see pkglog --help)\n" });
    assert.deepEqual(pick(runPkglog(['help', 'nope'])), { status: 2, stdout: '', stderr: "pkglog: unknown command 'nope' (see pkglog --help)\n" });
  });

  it('pkglog --help, pkglog help and pkglog help verify; no command: the usage on stderr, exit 2', () => {
    const top = runPkglog(['--help']);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /^pkglog — /);
    assert.equal(runPkglog(['help']).stdout, top.stdout);
    assert.deepEqual(pick(runPkglog(['help', 'verify'])), { status: 0, stdout: VERIFY_SPEC.usage, stderr: '' });
    assert.deepEqual(pick(runPkglog([])), { status: 2, stdout: '', stderr: top.stdout });
  });

  it('pkglog verify -o x: one line naming the option, exit 2', () => {
    assert.deepEqual(pick(runPkglog(['verify', '-o', 'x'])), { status: 2, stdout: '', stderr: "pkglog verify: unknown option '-o' (see pkglog verify --help)\n" });
  });

  describe('a port in use', () => {
    let busy: Server;
    let port: number;
    before(async () => {
      busy = createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
      port = (busy.address() as { port: number }).port;
    });
    after(() => new Promise<void>((r) => busy.close(() => r())));

    it('pkglog serve: one line, exit 1, no stack trace', async () => {
      const r = await runAsync(['serve', '--data-dir', join(tmp.dir, 'log'), '--listen', `127.0.0.1:${port}`]);
      assert.equal(r.code, 1, r.stderr);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.ok(r.stderr.endsWith(`pkglog serve: cannot listen on 127.0.0.1:${port}: address already in use\n`), r.stderr);
      assert.doesNotMatch(r.stdout, /listening/);
    });

    it('pkglog witness: one line, exit 1, no stack trace', async () => {
      const r = await runAsync(['witness', '--data-dir', join(tmp.dir, 'w'), '--listen', `127.0.0.1:${port}`, '--name', 'w.example.test']);
      assert.equal(r.code, 1, r.stderr);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.ok(r.stderr.endsWith(`pkglog witness: cannot listen on 127.0.0.1:${port}: address already in use\n`), r.stderr);
    });
  });
});

function pick(r: { status: number | null; stdout: string; stderr: string }) {
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
