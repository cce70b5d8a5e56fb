/**
 * A full disk, for real: `pkglog serve` runs with its data dir on a small tmpfs (mounted here; this test needs root and
 * FAILS, never skips, where it cannot mount), a filler file takes the rest of the space while submissions keep coming.
 * Submissions then get 503 {"error":"overloaded","message":"…disk is full…"} with Retry-After, each refusal is logged as
 * one line without a stack trace, reads keep working, nothing acknowledged is lost, and once the filler is deleted the
 * same process logs again by itself (no restart). A final SIGKILL and restart shows everything acknowledged is durable.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafHash } from '../../core/hash.ts';
import { registriesFile } from '../../server/main.ts';
import { addRegistry } from '../../server/registries.ts';
import { startProcess, type Started } from '../support/process.ts';
import { REGISTRY, REGISTRY_NAME, submissionBody } from '../support/submissions.ts';

const TMPFS_SIZE = '6m';

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error?.message}): ${r.stderr}`);
}

/** Fills the file system holding `file` until a write of even 512 bytes fails with ENOSPC. Returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    for (const chunk of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (;;) {
        try {
          written += writeSync(fd, buf);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

interface Reply {
  status: number;
  body: { index?: number; leafHash?: string; error?: string; message?: string };
  retryAfter: string | null;
}

async function submit(url: string, i: number): Promise<Reply> {
  const res = await fetch(`${url}/v1/entries`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i)), signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: (await res.json()) as Reply['body'], retryAfter: res.headers.get('retry-after') };
}

describe('e2e: the disk fills up under a running log', function () {
  this.timeout(120_000);
  let mountPoint: string;
  let mounted = false;
  let proc: Started | undefined;

  before(() => {
    mountPoint = mkdtempSync(join(tmpdir(), 'pkglog-diskfull-'));
    // No skip: a test that cannot build its fault must fail and say why.
    run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', mountPoint]);
    mounted = true;
  });
  after(async () => {
    await proc?.stop('SIGKILL');
    if (mounted) run('umount', [mountPoint]);
    rmdirSync(mountPoint);
  });

  it('answers 503 "disk is full", loses nothing, logs one line per refusal and resumes by itself', async () => {
    const dataDir = join(mountPoint, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    addRegistry(registriesFile(dataDir), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: ['pypi'] });
    proc = await startProcess(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--origin', 'example.test/disk-full', '--batch-interval', '5', '--verify-threads', '1']);
    const url = proc.url;
    const pid = proc.child.pid;
    const acked = new Map<number, { index: number; leafHash: string }>();
    const record = (i: number, r: Reply) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      acked.set(i, { index: r.body.index!, leafHash: r.body.leafHash! });
    };
    let next = 0;
    for (let k = 0; k < 20; k++, next++) record(next, await submit(url, next));

    const filler = join(mountPoint, 'filler');
    const filled = fill(filler);
    assert.ok(filled > 0, 'the filler took the free space');
    const stderrBefore = proc.stderr().length;

    // Keep submitting (10 at a time) until the log has refused 30 (the WAL may still have room for a few batches).
    const refusedArtifacts: number[] = [];
    const deadline = Date.now() + 60_000;
    while (refusedArtifacts.length < 30) {
      assert.ok(Date.now() < deadline, `the log never refused on a full disk (${acked.size} acknowledged)`);
      const group = Array.from({ length: 10 }, () => next++);
      const replies = await Promise.all(group.map((i) => submit(url, i)));
      replies.forEach((r, k) => {
        const i = group[k]!;
        if (r.status === 200) return record(i, r);
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.equal(r.body.error, 'overloaded');
        assert.match(r.body.message!, /^the log's disk is full: this submission was not (logged|acknowledged); retry later$/);
        assert.equal(r.retryAfter, '1');
        refusedArtifacts.push(i);
      });
    }

    // Reads keep working, and everything acknowledged is there.
    assert.equal((await fetch(`${url}/checkpoint`)).status, 200);
    for (const [, a] of acked) {
      const e = (await (await fetch(`${url}/v1/entries/${a.index}`)).json()) as { leafHash: string };
      assert.equal(e.leafHash, a.leafHash);
    }

    // The log: one line per refusal, no stack traces.
    const logged = proc.stderr().slice(stderrBefore);
    assert.doesNotMatch(logged, /^\s+at /m, `no stack traces in the log:\n${logged.slice(0, 3000)}`);
    const lines = logged.split('\n').filter((l) => l.trim() !== '');
    const batchLines = lines.filter((l) => /batch of \d+ refused \(nothing of it was logged\): disk full: /.test(l));
    assert.ok(batchLines.length >= 1, `the sequencer says the disk is full:\n${logged.slice(0, 3000)}`);
    assert.ok(lines.length <= batchLines.length + refusedArtifacts.length, `at most one line per refusal and per refused batch (${lines.length} lines):\n${logged.slice(0, 3000)}`);

    console.log(`      disk full after ${filled} filler bytes: ${acked.size} acknowledged, ${refusedArtifacts.length} refused, ${batchLines.length} refused batches, ${lines.length} log lines`);

    // Space returns: the same process logs again, at once; the refused submissions are accepted now.
    rmSync(filler);
    let resumed: Reply | undefined;
    for (let tries = 0; tries < 100 && resumed?.status !== 200; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 100));
      resumed = await submit(url, refusedArtifacts[0]!);
    }
    record(refusedArtifacts[0]!, resumed!);
    for (const i of refusedArtifacts.slice(1)) record(i, await submit(url, i));
    for (let k = 0; k < 20; k++, next++) record(next, await submit(url, next));
    assert.equal(proc.child.exitCode, null, 'the log never stopped');
    assert.equal(proc.child.pid, pid);

    // Everything acknowledged is durable: kill -9, restart, look.
    await proc.stop('SIGKILL');
    proc = await startProcess(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--verify-threads', '1']);
    const indexes = new Set<number>();
    for (const [i, a] of acked) {
      const e = (await (await fetch(`${proc.url}/v1/entries/${a.index}`)).json()) as { leafHash: string; leaf: string };
      assert.equal(e.leafHash, a.leafHash, `artifact ${i} at index ${a.index}`);
      assert.equal(leafHash(Buffer.from(e.leaf, 'base64')).toString('base64'), a.leafHash);
      indexes.add(a.index);
    }
    assert.equal(indexes.size, acked.size, 'every acknowledged artifact has its own index');
  });
});
