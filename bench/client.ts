/**
 * Client benchmarks (npm run bench calls benchClient):
 *   - offline verification of a tlog-proof (file hash given; entry signatures, log signature, two cosignatures,
 *     inclusion proof), per second, with a same-run baseline of raw node:crypto Ed25519 verifications per second;
 *   - audit catch-up from local tiles (in memory: decode, hash, recompute and compare every tile and the root,
 *     one-artifact-per-file index on disk), entries per second with signatures sampled at 1% and with every
 *     signature checked, with a baseline of raw SHA-256 leaf hashing per second.
 */
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { integrate } from '../core/integrate.ts';
import { formatEntryBundle, formatTilePath, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import { leafHash } from '../core/hash.ts';
import { ed25519Signer, formatVerifierKey, signNote, SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1 } from '../core/note.ts';
import { cosignatureSigner } from '../core/cosignature.ts';
import { formatCheckpoint } from '../core/checkpoint.ts';
import { formatTlogProof } from '../core/tlog-proof.ts';
import { hashRanges, planInclusionProof } from '../core/merkle.ts';
import { nodeHashFromTiles } from '../core/tiles.ts';
import { parsePolicy } from '../core/policy.ts';
import { encodeLeaf, publisherMessage, registryMessage, type Entry } from '../core/entry.ts';
import { keyPairFromSeed, ed25519Sign } from '../core/ed25519.ts';
import type { Hash } from '../core/types.ts';
import { verifyArtifact } from '../client/verify.ts';
import { audit } from '../client/audit.ts';

export interface BenchResult {
  note?: string;
  target?: string;
  pass?: boolean;
  name: string;
  value: number;
  unit: string;
  baseline?: number;
}

const seed = (s: string) => createHash('sha256').update(s).digest();

/**
 * An in-memory log: entry bundles and hash tiles built with core/integrate, a cosigned checkpoint. `given`: the leaves
 * of an earlier buildLog(n) (bench/mirror.ts caches them on disk: signing them is most of the cost), used as they are.
 */
export function buildLog(n: number, given?: Buffer[]) {
  const origin = 'bench.example/log';
  const logSigner = ed25519Signer(origin, seed('bench log'));
  const now = Math.floor(Date.now() / 1000);
  const witnesses = ['w0', 'w1'].map((w) => cosignatureSigner(w, seed(w), () => now));
  const pub = keyPairFromSeed(seed('publisher'));
  const reg = keyPairFromSeed(seed('registry'));
  const tiles = new Map<string, Buffer>();
  const leaves: Buffer[] = [];
  const read = (t: Tile) => tiles.get(`${t.level}/${t.index}`)!.subarray(0, t.width * 32);
  let size = 0;
  let batch: Buffer[] = [];
  const flush = () => {
    const r = integrate(size, read, batch.map((l) => leafHash(l)));
    for (const { tile, data } of r.tiles) tiles.set(`${tile.level}/${tile.index}`, data);
    size = r.treeSize;
    batch = [];
    return r.rootHash;
  };
  let root: Hash = Buffer.alloc(32);
  for (let i = 0; i < n; i++) {
    if (given !== undefined) {
      leaves.push(given[i]!);
      batch.push(given[i]!);
      if (batch.length === 4096) root = flush();
      continue;
    }
    const a = { ecosystem: 'pypi', name: `pkg${i % 1000}`, version: `1.${i}`, filename: `pkg-${i}.tar.gz`, sha256: createHash('sha256').update(`c${i}`).digest('hex') };
    const ps = ed25519Sign(pub, publisherMessage(a));
    const e: Entry = { ...a, publisherKey: pub.publicKey, publisherSignature: ps, registryName: 'pypi.org', registrySignature: ed25519Sign(reg, registryMessage(a, pub.publicKey, ps)), integratedTime: Date.now() };
    const leaf = encodeLeaf(e);
    leaves.push(leaf);
    batch.push(leaf);
    if (batch.length === 4096) root = flush();
  }
  if (batch.length) root = flush();
  const text = formatCheckpoint({ origin, treeSize: size, rootHash: root, extensions: [] });
  const checkpoint = signNote(text, [logSigner, ...witnesses]);
  const policyText =
    `log ${formatVerifierKey(origin, SIG_TYPE_ED25519, logSigner.publicKey)}\n` +
    witnesses.map((w) => `witness ${w.name} ${formatVerifierKey(w.name, SIG_TYPE_COSIGNATURE_V1, w.publicKey)}\n`).join('') +
    'group all-w all w0 w1\nquorum all-w\n';
  const policy = parsePolicy(policyText);
  const registries = new Map([['pypi.org', reg.publicKey]]);
  // Entry bundles as a tile mirror stores them (full ones pre-built; the partial one on demand).
  const bundles: Buffer[] = [];
  for (let b = 0; (b + 1) * TILE_WIDTH <= size; b++) bundles.push(formatEntryBundle(leaves.slice(b * TILE_WIDTH, (b + 1) * TILE_WIDTH)));
  const source = {
    async tile(t: Tile): Promise<Buffer> {
      if (t.level < 0 && t.width === TILE_WIDTH && bundles[t.index]) return bundles[t.index]!;
      if (t.level < 0) return formatEntryBundle(leaves.slice(t.index * TILE_WIDTH, t.index * TILE_WIDTH + t.width));
      const b = tiles.get(`${t.level}/${t.index}`);
      if (b === undefined || b.length < t.width * 32) throw new Error(`no tile ${formatTilePath(t)}`);
      return b.subarray(0, t.width * 32);
    },
    async checkpoint(): Promise<string> {
      return checkpoint;
    },
  };
  const proofFor = (i: number) =>
    formatTlogProof({ extra: leaves[i]!, index: i, inclusionProof: hashRanges(planInclusionProof(i, size), (nd) => nodeHashFromTiles(nd, size, read)), checkpoint });
  return { source, policy, policyText, registries, leaves, proofFor, size };
}

/** Calls fn for at least minMs; its rate per second. */
export async function perSecond(minMs: number, fn: () => Promise<void> | void): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    await fn();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

export async function benchClient(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const entries = Number(process.env.PKGLOG_BENCH_CLIENT_ENTRIES ?? (process.env.BENCH_QUICK ? 10_000 : 50_000));
  const log = buildLog(entries);

  // Baseline: raw Ed25519 verification with node:crypto.
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const msg = Buffer.from('baseline message');
  const sig = sign(null, msg, privateKey);
  const rawVerify = await perSecond(1000, () => void verify(null, msg, publicKey, sig));

  // Offline proof verification (5 Ed25519 verifications each: publisher, registry, log, two witnesses).
  const proofs = Array.from({ length: 64 }, (_, k) => {
    const i = (k * 7919) % log.size;
    return { text: log.proofFor(i), sha: '', i };
  });
  for (const p of proofs) p.sha = createHash('sha256').update(`c${p.i}`).digest('hex');
  let k = 0;
  const now = Date.now();
  const verifyOnce = async (policy: typeof log.policy) => {
    const p = proofs[k++ % proofs.length]!;
    const r = await verifyArtifact({
      fileSha256: p.sha,
      want: { ecosystem: 'pypi', name: `pkg${p.i % 1000}`, version: `1.${p.i}` },
      policy,
      registries: log.registries,
      proofText: p.text,
      nowMs: now,
    });
    if (!r.ok) throw new Error(`bench proof did not verify: ${JSON.stringify(r.toJSON())}`);
  };
  // Proofs sharing a checkpoint (the usual case: a registry's proofs of one period): its signatures are checked once.
  const verifyRate = await perSecond(2000, () => verifyOnce(log.policy));
  results.push({ name: 'client: offline tlog-proof verifications (shared checkpoint)', value: Math.round(verifyRate), unit: 'verifications/s', baseline: Math.round(rawVerify / 2), target: '≥ 1,000/s', pass: verifyRate >= 1000 });
  // Every proof's checkpoint verified from scratch (a fresh policy object defeats the memo): 5 Ed25519 verifications.
  const coldRate = await perSecond(2000, () => verifyOnce({ ...log.policy }));
  results.push({ name: 'client: offline tlog-proof verifications (checkpoint re-verified each time)', value: Math.round(coldRate), unit: 'verifications/s', baseline: Math.round(rawVerify / 5), target: '≥ 1,000/s', pass: coldRate >= 1000 });
  results.push({ name: 'client: raw node:crypto Ed25519 verify (baseline)', value: Math.round(rawVerify), unit: 'verifications/s' });

  // Raw leaf hashing baseline.
  const t0 = performance.now();
  for (const l of log.leaves) leafHash(l);
  const hashRate = log.leaves.length / ((performance.now() - t0) / 1000);

  const work = mkdtempSync(join(tmpdir(), 'pkglog-bench-client-'));
  try {
    for (const [label, rate] of [['signatures sampled 1%', 0.01], ['every signature checked', 1]] as const) {
      const r = await audit({ source: log.source, policy: log.policy, registries: log.registries, nowMs: now, sampleRate: rate, workDir: work });
      if (!r.ok) throw new Error(`bench audit failed: ${JSON.stringify(r.toJSON())}`);
      const perSecond = Number(r.data.entriesPerSecond);
      // The target is for catch-up with sampled signature checks; the every-signature rate is reported beside it.
      const target = label === 'signatures sampled 1%' ? { target: '≥ 50,000/s', pass: perSecond >= 50_000 } : {};
      results.push({ name: `client: audit catch-up from local tiles (${entries} entries, ${label})`, value: perSecond, unit: 'entries/s', baseline: Math.round(hashRate), ...target });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await benchClient()) console.log(`${r.name}: ${r.value} ${r.unit}${r.baseline !== undefined ? ` (baseline ${r.baseline})` : ''}`);
}
