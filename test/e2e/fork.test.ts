/**
 * The fork scenario end to end, with real processes on 127.0.0.1: one log (`pkglog serve`), three witnesses
 * (`pkglog witness`, gossiping with each other), and an equivocating log double — the log operator, holding the
 * log's key, serves a forked history (same size, different root) to one witness and one client.
 * Every honest witness refuses the fork, gossip detects it within a bounded time, evidence is produced and
 * `pkglog evidence verify` accepts it (and rejects tampered evidence). A witness restarted mid-run keeps its state.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { leafHash } from '../../core/hash.ts';
import { parseSignedNote, parseSignerKey, parseVerifierKey, verifyNote } from '../../core/note.ts';
import { parseEntryBundle } from '../../core/tiles.ts';
import { formatAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { parseEvidence, verifyEvidence } from '../../core/evidence.ts';
import { REGISTRY, REGISTRY_NAME, submissionBody } from '../support/submissions.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { PKGLOG_BIN, startProcess, type Started } from '../support/process.ts';
import { FakeLog, serveLogs } from '../witness/fake-log.ts';
import { originHash } from '../../core/hash.ts';

const ORIGIN = 'example.test/fork-log';
const GOSSIP_MS = 200;
const DETECTION_BOUND_MS = 8_000;

function pkglog(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function latestCosigned(w: Started): Promise<string | undefined> {
  const r = await fetch(`${w.url}/${originHash(ORIGIN)}/checkpoint`);
  return r.status === 200 ? r.text() : undefined;
}

async function evidenceOf(w: Started): Promise<string[]> {
  const r = await fetch(`${w.url}/v1/evidence`);
  return ((await r.json()) as { evidence: Array<{ evidence: string }> }).evidence.map((e) => e.evidence);
}

describe('e2e: a split view is refused, detected by gossip, and proven', function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  const procs: Started[] = [];
  let double: Awaited<ReturnType<typeof serveLogs>> | undefined;
  after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await double?.close();
    for (const d of dirs) removeDir(d);
  });

  it('one log, three gossiping witnesses, one equivocating double', async () => {
    // --- three witnesses ---
    const wDirs = [tempDir('pkglog-w1-'), tempDir('pkglog-w2-'), tempDir('pkglog-w3-')];
    dirs.push(...wDirs);
    const witnessArgs = () => ['witness', '--gossip-interval', String(GOSSIP_MS), '--poll-interval', String(GOSSIP_MS)];
    const witnessEnv = (i: number) => ({
      PKGLOG_WITNESS_DATA_DIR: wDirs[i]!,
      PKGLOG_WITNESS_LISTEN: '127.0.0.1:0',
      PKGLOG_WITNESS_NAME: `witness.test/w${i + 1}`,
    });
    const ws = await Promise.all([0, 1, 2].map((i) => startProcess(witnessArgs(), witnessEnv(i))));
    procs.push(...ws);
    const vkeys = ws.map((w) => w.info.get('vkey')!);
    for (const [i, w] of ws.entries()) {
      assert.equal((await (await fetch(`${w.url}/vkey`)).text()).trim(), vkeys[i]);
      assert.equal(parseVerifierKey(vkeys[i]!).type, 0x04);
    }
    const peerAdds = [];
    for (const i of [0, 1, 2]) for (const j of [0, 1, 2]) if (i !== j) peerAdds.push(pkglog(['witness', 'add-peer', ws[j]!.url, vkeys[j]!, '--data-dir', wDirs[i]!]));
    for (const r of await Promise.all(peerAdds)) assert.equal(r.status, 0, r.stderr);

    // --- the log (configured to ask w1 and w2 for cosignatures) ---
    const logDir = tempDir('pkglog-log-');
    dirs.push(logDir);
    const logEnv = { PKGLOG_DATA_DIR: logDir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_ORIGIN: ORIGIN };
    const setup = await Promise.all([
      pkglog(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], logEnv),
      pkglog(['witnesses', 'add', ws[0]!.url, vkeys[0]!], logEnv),
      pkglog(['witnesses', 'add', ws[1]!.url, vkeys[1]!], logEnv),
    ]);
    for (const r of setup) assert.equal(r.status, 0, r.stderr);
    const log = await startProcess(['serve', '--witness-interval', '200'], logEnv);
    procs.push(log);
    const logVkey = log.info.get('vkey')!;
    const logVerifier = parseVerifierKey(logVkey);
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${log.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i)) });
      assert.equal(r.status, 200, await r.text());
    }
    const honestNote = await until(async () => {
      const t = await (await fetch(`${log.url}/checkpoint`)).text();
      return parseCheckpoint(parseSignedNote(t).text).treeSize === 6 ? t : undefined;
    }, 10_000, 'the log to reach size 6');
    const honestCp = parseCheckpoint(verifyNote(honestNote, [logVerifier]).note.text);

    // --- w1 and w2 witness the log; it pushes its checkpoints to them and publishes both cosignatures ---
    for (const i of [0, 1]) {
      const r = await pkglog(['witness', 'add-log', ORIGIN, logVkey, log.url, '--data-dir', wDirs[i]!]);
      assert.equal(r.status, 0, r.stderr);
    }
    const policy = parsePolicy(`log ${logVkey}\nwitness w1 ${vkeys[0]}\nwitness w2 ${vkeys[1]}\ngroup both all w1 w2\nquorum both\n`);
    const published = await until(async () => {
      const t = await (await fetch(`${log.url}/checkpoint`)).text();
      try {
        return verifyCheckpointWithPolicy(policy, t);
      } catch {
        return undefined;
      }
    }, 20_000, 'the log to publish cosignatures of w1 and w2');
    assert.deepEqual(published.cosigners.map((c) => c.witness.name).sort(), ['w1', 'w2']);

    // --- the equivocating double: the log's own key, a history that diverges after 3 entries ---
    const signer = parseSignerKey(readFileSync(join(logDir, 'log.key'), 'utf8').trim());
    const bundle = parseEntryBundle(Buffer.from(await (await fetch(`${log.url}/tile/entries/000.p/6`)).arrayBuffer()));
    const honest = new FakeLog(ORIGIN).useSigner(signer, logVkey).appendLeafHashes(bundle.map((e) => leafHash(e)));
    assert.ok(honest.rootAt(6).equals(honestCp.rootHash), 'the double rebuilt the real tree');
    const forked = new FakeLog(ORIGIN).useSigner(signer, logVkey).appendLeafHashes(bundle.slice(0, 3).map((e) => leafHash(e))).append(3, 'evil');
    double = await serveLogs({ victim: () => forked });
    const forkNote = forked.checkpoint(6);
    const forked8 = new FakeLog(ORIGIN).useSigner(signer, logVkey).appendLeafHashes(bundle.slice(0, 3).map((e) => leafHash(e))).append(5, 'evil');

    // --- the witnesses learn the log: w1, w2 pull from the log itself, w3 (the victim) from the double ---
    const adds = await Promise.all([
      pkglog(['witness', 'add-log', ORIGIN, logVkey, `${double.url}/victim`, '--data-dir', wDirs[2]!]),
    ]);
    for (const r of adds) assert.equal(r.status, 0, r.stderr);

    // Every honest witness cosigns the honest checkpoint, and refuses the fork (pushed by the double).
    for (const w of ws.slice(0, 2)) {
      const note = await until(async () => {
        const n = await latestCosigned(w);
        return n !== undefined && parseCheckpoint(parseSignedNote(n).text).rootHash.equals(honestCp.rootHash) ? n : undefined;
      }, 10_000, 'honest cosignature');
      verifyNote(note, [logVerifier, parseVerifierKey(vkeys[ws.indexOf(w)]!)]);
      const same = await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointRequest({ oldSize: 6, consistencyProof: [], checkpoint: Buffer.from(forkNote) }) });
      assert.equal(same.status, 422, 'same size, different root');
      const bigger = await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointRequest({ oldSize: 6, consistencyProof: forked8.consistencyProof(6, 8), checkpoint: Buffer.from(forked8.checkpoint(8)) }) });
      assert.ok([409, 422].includes(bigger.status), `a larger fork: ${bigger.status}`);
      const latest = parseCheckpoint(parseSignedNote((await latestCosigned(w))!).text);
      assert.ok(latest.treeSize === 6 && latest.rootHash.equals(honestCp.rootHash), 'the honest witness never cosigned the fork');
    }

    // --- detection by gossip: within a bounded time every witness holds verifiable evidence ---
    const t0 = Date.now();
    const evidence = await until(async () => {
      const all = await Promise.all(ws.map(evidenceOf));
      return all.every((e) => e.length > 0) ? all : undefined;
    }, DETECTION_BOUND_MS, 'fork evidence on all three witnesses');
    const took = Date.now() - t0;
    assert.ok(took < DETECTION_BOUND_MS, `detected in ${took} ms`);
    for (const list of evidence) for (const e of list) verifyEvidence(parseEvidence(e), logVerifier);
    assert.match(ws[0]!.stderr() + ws[1]!.stderr(), /"level":"error"[^\n]*"msg":"FORK DETECTED/);

    // --- a client shown the fork asks a witness: it learns it is being targeted ---
    const g = await fetch(`${ws[1]!.url}/v1/gossip`, { method: 'POST', body: forkNote });
    const verdict = (await g.json()) as { result: string; evidence: string };
    assert.equal(verdict.result, 'fork');
    verifyEvidence(parseEvidence(verdict.evidence), logVerifier);

    // --- pkglog evidence verify: accepts the evidence, rejects tampered evidence ---
    const file = join(logDir, 'evidence.json');
    writeFileSync(file, evidence[0]![0]!);
    const ok = await pkglog(['evidence', 'verify', file, '--log-vkey', logVkey]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /VALID fork evidence/);
    const obj = JSON.parse(evidence[0]![0]!);
    const tamperedFile = join(logDir, 'tampered.json');
    const r0 = parseCheckpoint(parseSignedNote(obj.checkpoints[0]).text).rootHash.toString('base64');
    writeFileSync(tamperedFile, JSON.stringify({ ...obj, checkpoints: [obj.checkpoints[0].replace(r0, Buffer.alloc(32, 1).toString('base64')), obj.checkpoints[1]] }));
    const bad = await pkglog(['evidence', 'verify', tamperedFile, '--log-vkey', logVkey]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /INVALID evidence/);
    writeFileSync(tamperedFile, JSON.stringify({ ...obj, checkpoints: [obj.checkpoints[0], obj.checkpoints[0]] }));
    assert.equal((await pkglog(['evidence', 'verify', tamperedFile, '--log-vkey', logVkey])).status, 1);
    const otherKey = new FakeLog(ORIGIN, 'not the log').vkey;
    assert.equal((await pkglog(['evidence', 'verify', file, '--log-vkey', otherKey])).status, 1);

    // --- restart w1 mid-run: same key, same state, still refuses a rollback ---
    assert.equal(await ws[0]!.stop('SIGTERM'), 0);
    const w1b = await startProcess(witnessArgs(), witnessEnv(0));
    procs.push(w1b);
    assert.equal(w1b.info.get('vkey'), vkeys[0]);
    const kept = parseCheckpoint(parseSignedNote((await latestCosigned(w1b))!).text);
    assert.ok(kept.treeSize === 6 && kept.rootHash.equals(honestCp.rootHash));
    const rollback = await fetch(`${w1b.url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointRequest({ oldSize: 3, consistencyProof: [], checkpoint: Buffer.from(honest.checkpoint(3)) }) });
    assert.equal(rollback.status, 409);
    assert.equal(rollback.headers.get('content-type'), 'text/x.tlog.size');
    assert.equal(await rollback.text(), '6\n');
    assert.equal((await evidenceOf(w1b)).length, evidence[0]!.length, 'evidence survives the restart');
  });
});
