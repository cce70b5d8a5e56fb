/**
 * Smoke tests of the real command (node bin/pkglog.js on dist/): the top level (unknown command or option, help,
 * pkglog help CMD) is one line and a documented exit code, never a stack trace. Argument handling of each command is tested in-process (test/runtime/commands.test.ts).
 */
import assert from 'node:assert/strict';
import { runPkglog } from '../support/process.ts';
import { VERIFY_SPEC } from '../../client/cli-verify.ts';

describe('e2e: pkglog command line', function () {
  this.timeout(60_000);

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
});

function pick(r: { status: number | null; stdout: string; stderr: string }) {
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
