/**
 * kill -9 under load, again and again: a real `pkglog serve` (bin/pkglog.js) on 127.0.0.1:0 gets concurrent submissions
 * (single and batch, new and repeated) while a reader polls GET /checkpoint; at a random moment it is SIGKILLed and
 * restarted on the same data dir. After every restart the loop reads the whole tree back — every level-0 hash tile and
 * every entry bundle — and checks, against what it was told before:
 *   - the tiles reproduce the root of the newly served, correctly signed checkpoint, and every bundled leaf hashes to
 *     its tile hash;
 *   - every acknowledged (200) entry is at its index with its leaf hash (and its leaf bytes);
 *   - every checkpoint it was ever served (submission replies' proofs, GET /checkpoint, earlier restarts) is a prefix
 *     of the new tree: its root is recomputed from the new tree's leaves, and for those served since the last restart
 *     the log's /v1/proof/consistency proof is checked too (core/merkle verifyConsistency);
 *   - no size was ever served with two roots.
 * Used by test/e2e/crash.test.ts (bounded, in `npm test`) and test/crash-test.ts (`npm run crash-test`).
 */
import { createHash } from 'node:crypto';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { formatSubmission } from '../../core/entry.ts';
import { leafHash } from '../../core/hash.ts';
import { verifyConsistency, verifyInclusion } from '../../core/merkle.ts';
import { parseVerifierKey, verifyNote, type Verifier } from '../../core/note.ts';
import { formatTilePath, parseEntryBundle } from '../../core/tiles.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { addRegistry } from '../../server/registries.ts';
import { registriesFile } from '../../server/main.ts';
import { startProcess, type Started } from './process.ts';
import { REGISTRY, REGISTRY_NAME, artifact, sign } from './submissions.ts';
import { mulberry32 } from './prng.ts';

export interface CrashLoopOptions {
  /** Data directory (created by the caller, removed by the caller). */
  dataDir: string;
  kills: number;
  seed?: number;
  /** Concurrent submission loops (default 8). */
  submitters?: number;
  /** The log is killed a random time in [minRunMs, maxRunMs] after it started listening (default 0…600). */
  minRunMs?: number;
  maxRunMs?: number;
  /** --batch-interval of the log (default 5 ms: many batches, so kills land in every phase of one). */
  batchIntervalMs?: number;
  verifyThreads?: number;
  /** Progress lines (one every `progressEvery` kills). */
  progress?: (line: string) => void;
  progressEvery?: number;
  /** Called after kill k (1, 2, …), while the log is down: lets a test damage the data dir to show the checks bite. */
  afterKill?: (kill: number, dataDir: string) => void;
}

export interface CrashLoopResult {
  kills: number;
  /** Distinct acknowledged entries, each checked after every restart that followed its acknowledgement. */
  entriesChecked: number;
  /** All (entry, restart) checks. */
  entryChecks: number;
  /** Acknowledged entries not found at their index with their leaf hash after some restart. */
  losses: number;
  /** Distinct checkpoints served (by size), each checked against every later tree. */
  checkpointsChecked: number;
  /** Tree size after the last restart. */
  treeSize: number;
  /** Everything else that went wrong (bad proofs, two roots for a size, inconsistent checkpoints, refused starts). */
  problems: string[];
  seed: number;
}

export const CRASH_ORIGIN = 'example.test/crash-log';

/** `kills N, entries checked M, losses L` — the summary line both callers print. */
export function summary(r: CrashLoopResult): string {
  return `kills ${r.kills}, entries checked ${r.entriesChecked}, losses ${r.losses}`;
}

// An RFC 6962 tree over leaf hashes, written here independently of the server (test/support/reference-tree.ts is the
// naive recursive one; this one keeps every level so that the root of any prefix costs O(log n)).
const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const ONE = Buffer.from([1]);

class Levels {
  /** levels[l][i] = hash of the perfect subtree of 2^l leaves starting at leaf i·2^l. */
  private readonly levels: Buffer[][];
  constructor(leafHashes: Buffer[]) {
    this.levels = [leafHashes];
    for (let l = 0; this.levels[l]!.length > 1; l++) {
      const below = this.levels[l]!;
      const up: Buffer[] = [];
      for (let i = 0; i + 1 < below.length; i += 2) up.push(sha(ONE, below[i]!, below[i + 1]!));
      this.levels.push(up);
    }
  }

  get size(): number {
    return this.levels[0]!.length;
  }

  /** MTH of the first n leaves (0 < n ≤ size): the perfect subtrees of n's binary decomposition, folded from the right. */
  root(n: number): Buffer {
    const parts: Buffer[] = [];
    let start = 0;
    for (let l = 52; l >= 0; l--) {
      const w = 2 ** l;
      if (n - start >= w) {
        parts.push(this.levels[l]![start / w]!);
        start += w;
      }
    }
    let h = parts.pop()!;
    while (parts.length > 0) h = sha(ONE, parts.pop()!, h);
    return h;
  }
}

interface Ack {
  index: number;
  leafHash: Buffer;
  leaf: Buffer;
}

interface Served {
  root: Buffer;
  /** Where it was first seen (for messages). */
  from: string;
  /** Served since the last check (gets its consistency proof checked by the log's endpoint too). */
  fresh: boolean;
}

export class Tracker {
  readonly acks = new Map<number, Ack>(); // by artifact number
  readonly unacked = new Set<number>();
  readonly served = new Map<number, Served>(); // by tree size
  readonly problems: string[] = [];
  entryChecks = 0;
  losses = 0;

  problem(msg: string): void {
    if (this.problems.length < 100) this.problems.push(msg);
  }

  /** Records a checkpoint the log served; a second root for a size is a problem. */
  saw(treeSize: number, root: Buffer, from: string): void {
    const known = this.served.get(treeSize);
    if (known === undefined) this.served.set(treeSize, { root, from, fresh: true });
    else if (!known.root.equals(root)) {
      this.problem(`size ${treeSize} was served with two roots: ${known.root.toString('base64')} (${known.from}) and ${root.toString('base64')} (${from})`);
    }
  }
}

const TIMEOUT_MS = 30_000;

async function get(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
}

function checkpointOf(note: string, verifier: Verifier) {
  return parseCheckpoint(verifyNote(note, [verifier]).note.text);
}

/** One submission loop: new artifacts (single or in small batches) and repeats of acknowledged ones, until `stop()`. */
export async function submitLoop(urlOf: string | (() => string), t: Tracker, verifier: Verifier, next: () => number, rand: () => number, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const url = typeof urlOf === 'string' ? urlOf : urlOf();
    const r = rand();
    let numbers: number[];
    if (r < 0.1 && t.acks.size > 0) {
      // a repeat: must get the same index back
      const keys = [...t.acks.keys()];
      numbers = [keys[Math.floor(rand() * keys.length)]!];
    } else if (r < 0.15 && t.unacked.size > 0) {
      // one that was in flight at an earlier kill: logged once, wherever it landed
      numbers = [t.unacked.values().next().value!];
    } else if (r < 0.3) {
      numbers = Array.from({ length: 2 + Math.floor(rand() * 30) }, next);
    } else {
      numbers = [next()];
    }
    const bodies = numbers.map((i) => formatSubmission(sign(artifact(i))));
    let replies: Array<{ status: number; body: Record<string, unknown> }>;
    try {
      if (numbers.length === 1) {
        const res = await fetch(`${url}/v1/entries`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bodies[0]), signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        replies = [{ status: res.status, body: (await res.json()) as Record<string, unknown> }];
      } else {
        const res = await fetch(`${url}/v1/entries/batch`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ entries: bodies }), signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        if (res.status !== 200) {
          replies = numbers.map(() => ({ status: res.status, body: {} }));
          await res.arrayBuffer();
        } else {
          const results = ((await res.json()) as { results: Array<Record<string, unknown>> }).results;
          replies = results.map((b) => ({ status: typeof b.status === 'number' ? b.status : 200, body: b }));
        }
      }
    } catch (e) {
      // The log was killed (or is not listening yet/any more): not acknowledged.
      for (const i of numbers) if (!t.acks.has(i)) t.unacked.add(i);
      if ((e as Error)?.name === 'TimeoutError') t.problem(`a submission got no answer in ${TIMEOUT_MS} ms`);
      if (stopped()) return;
      await new Promise((res) => setTimeout(res, 5));
      continue;
    }
    replies.forEach(({ status, body }, k) => {
      const i = numbers[k]!;
      if (status !== 200) {
        if (status !== 503) t.problem(`artifact ${i}: unexpected ${status} ${JSON.stringify(body)}`);
        if (!t.acks.has(i)) t.unacked.add(i);
        return;
      }
      try {
        const leaf = Buffer.from(String(body.entry), 'base64');
        const lh = leafHash(leaf);
        const index = body.index as number;
        if (lh.toString('base64') !== body.leafHash) throw new Error('leafHash is not the hash of the entry');
        const proof = parseTlogProof(String(body.proof));
        if (proof.index !== index || !proof.extra?.equals(leaf)) throw new Error('the proof is for another entry');
        const cp = checkpointOf(proof.checkpoint, verifier);
        verifyInclusion(index, cp.treeSize, lh, proof.inclusionProof, cp.rootHash);
        t.saw(cp.treeSize, cp.rootHash, `reply for artifact ${i}`);
        const prior = t.acks.get(i);
        if (prior !== undefined && (prior.index !== index || !prior.leaf.equals(leaf))) {
          throw new Error(`acknowledged at index ${prior.index} before, now at ${index}`);
        }
        t.acks.set(i, { index, leafHash: lh, leaf });
        t.unacked.delete(i);
      } catch (e) {
        t.problem(`artifact ${i}: bad 200 reply: ${(e as Error).message}`);
      }
    });
  }
}

export async function pollCheckpoint(urlOf: string | (() => string), t: Tracker, verifier: Verifier, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const url = typeof urlOf === 'string' ? urlOf : urlOf();
    try {
      const res = await get(`${url}/checkpoint`);
      const text = await res.text();
      if (res.status === 200) {
        const cp = checkpointOf(text, verifier);
        t.saw(cp.treeSize, cp.rootHash, 'GET /checkpoint');
      }
    } catch (e) {
      if ((e as Error)?.name === 'TimeoutError') t.problem('GET /checkpoint got no answer');
      if (stopped()) return;
    }
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** Reads the whole tree back from a freshly restarted log and checks everything the loop was told before. */
export async function checkAfterRestart(url: string, t: Tracker, verifier: Verifier, kill: number): Promise<number> {
  const head = checkpointOf(await (await get(`${url}/checkpoint`)).text(), verifier);
  const n = head.treeSize;
  const leafHashes: Buffer[] = [];
  const leaves: Buffer[] = [];
  for (let k = 0; k * 256 < n; k++) {
    const width = Math.min(256, n - k * 256);
    const tres = await get(`${url}/${formatTilePath({ level: 0, index: k, width })}`);
    const tile = Buffer.from(await tres.arrayBuffer());
    if (tres.status !== 200 || tile.length !== width * 32) {
      t.problem(`after kill ${kill}: tile 0/${k} (width ${width}) answered ${tres.status} with ${tile.length} bytes`);
      return n;
    }
    for (let j = 0; j < width; j++) leafHashes.push(tile.subarray(j * 32, j * 32 + 32));
    const bres = await get(`${url}/${formatTilePath({ level: -1, index: k, width })}`);
    const bundle = parseEntryBundle(Buffer.from(await bres.arrayBuffer()));
    if (bres.status !== 200 || bundle.length !== width) {
      t.problem(`after kill ${kill}: entry bundle ${k} (width ${width}) answered ${bres.status} with ${bundle.length} entries`);
      return n;
    }
    leaves.push(...bundle);
  }
  for (let i = 0; i < n; i++) {
    if (!leafHash(leaves[i]!).equals(leafHashes[i]!)) t.problem(`after kill ${kill}: entry ${i} does not hash to its tile hash`);
  }
  if (n > 0) {
    const levels = new Levels(leafHashes);
    if (!levels.root(n).equals(head.rootHash)) t.problem(`after kill ${kill}: the tiles do not reproduce the root of the served checkpoint of size ${n}`);
    t.saw(n, head.rootHash, `GET /checkpoint after kill ${kill}`);
    // Every acknowledged entry, at its index, with its leaf hash and its bytes.
    for (const [i, a] of t.acks) {
      t.entryChecks++;
      if (a.index >= n || !leafHashes[a.index]!.equals(a.leafHash) || !leaves[a.index]!.equals(a.leaf)) {
        if (t.losses++ < 20) t.problem(`after kill ${kill}: acknowledged artifact ${i} is not at index ${a.index} of the tree of size ${n}`);
      }
    }
    // Every checkpoint ever served: a prefix of the new tree.
    for (const [size, s] of t.served) {
      if (size === 0) continue;
      if (size > n) {
        t.problem(`after kill ${kill}: a checkpoint of size ${size} was served (${s.from}) but the tree is now ${n}`);
        continue;
      }
      if (!levels.root(size).equals(s.root)) t.problem(`after kill ${kill}: the checkpoint of size ${size} served (${s.from}) is not a prefix of the new tree`);
      if (s.fresh && size < n) {
        const res = await get(`${url}/v1/proof/consistency?old=${size}&size=${n}`);
        const body = (await res.json()) as { proof?: string[] };
        try {
          verifyConsistency(size, n, s.root, head.rootHash, (body.proof ?? []).map((p) => Buffer.from(p, 'base64')));
        } catch (e) {
          t.problem(`after kill ${kill}: the log's consistency proof ${size} → ${n} does not verify: ${(e as Error).message}`);
        }
      }
      s.fresh = false;
    }
  } else {
    for (const [i, a] of t.acks) {
      t.entryChecks++;
      if (t.losses++ < 20) t.problem(`after kill ${kill}: acknowledged artifact ${i} (index ${a.index}) is gone: the tree is empty`);
    }
  }
  return n;
}

export async function crashLoop(o: CrashLoopOptions): Promise<CrashLoopResult> {
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = mulberry32(seed);
  const submitters = o.submitters ?? 8;
  const minRun = o.minRunMs ?? 0;
  const maxRun = o.maxRunMs ?? 600;
  const every = o.progressEvery ?? 10;
  const t = new Tracker();
  addRegistry(registriesFile(o.dataDir), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: ['pypi'] });
  const args = [
    'serve', '--data-dir', o.dataDir, '--listen', '127.0.0.1:0', '--origin', CRASH_ORIGIN,
    '--batch-interval', String(o.batchIntervalMs ?? 5), '--verify-threads', String(o.verifyThreads ?? 1),
  ];
  let nextArtifact = 0;
  let kills = 0;
  let treeSize = 0;
  let vkey: string | undefined;
  let proc: Started | undefined;
  try {
    for (let round = 0; round <= o.kills; round++) {
      try {
        proc = await startProcess(args, {}, 60_000);
      } catch (e) {
        t.problem(`start after kill ${kills} failed: ${(e as Error).message.slice(0, 2000)}`);
        break;
      }
      const v = proc.info.get('vkey');
      if (vkey === undefined) vkey = v;
      else if (v !== vkey) t.problem(`after kill ${kills} the log has another key: ${v}`);
      const verifier = parseVerifierKey(vkey!);
      if (round > 0) {
        try {
          treeSize = await checkAfterRestart(proc.url, t, verifier, kills);
        } catch (e) {
          t.problem(`after kill ${kills}: check failed: ${(e as Error).message}`);
        }
        if (kills % every === 0 || kills === o.kills) {
          o.progress?.(`${summary(result())} (tree size ${treeSize}, ${t.served.size} checkpoints, ${t.problems.length} problems)`);
        }
      }
      if (round === o.kills) break;
      // Load, then kill at a random moment.
      let stop = false;
      const stopped = () => stop;
      const url = proc.url;
      const loops = [
        ...Array.from({ length: submitters }, () => submitLoop(url, t, verifier, () => nextArtifact++, rand, stopped)),
        pollCheckpoint(url, t, verifier, stopped),
      ];
      await new Promise((res) => setTimeout(res, minRun + rand() * (maxRun - minRun)));
      proc.child.kill('SIGKILL');
      await proc.stop('SIGKILL');
      stop = true;
      await Promise.all(loops);
      kills++;
      proc = undefined;
      o.afterKill?.(kills, o.dataDir);
    }
  } finally {
    await proc?.stop('SIGKILL');
  }
  function result(): CrashLoopResult {
    return {
      kills, entriesChecked: t.acks.size, entryChecks: t.entryChecks, losses: t.losses, checkpointsChecked: t.served.size,
      treeSize, problems: t.problems, seed,
    };
  }
  return result();
}
