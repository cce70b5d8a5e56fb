/**
 * Client verification of index bundles (npm run bench calls benchIndexClient; docs/client.md "history"): the whole
 * client path of `pkglog history` (client/index-history.ts fetchHistory: bundle parse and verification, the index
 * checkpoint's and the log checkpoint's policy checks, the revision's tree head against the log's checkpoint, the
 * entries' keys), per second, for a 1-entry package and for a 130-entry package (3 pages), with no network (bundles
 * and the log's checkpoint from memory) and no state. Same-run baseline: one checkpoint's policy check (log
 * signature, two cosignatures) and one RFC 6962 inclusion proof, the least verifying any entry costs.
 */
import { leafHash } from '../core/hash.ts';
import { verifyInclusion } from '../core/merkle.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { verifyCheckpointWithPolicy } from '../core/policy.ts';
import type { IndexQuery } from '../core/index-keys.ts';
import { LogClient } from '../client/http.ts';
import { fetchHistory, type IndexSource } from '../client/index-history.ts';
import { IndexDouble, DOUBLE_POLICY } from '../test/support/index-double.ts';
import type { Figure } from './log.ts';

async function rate(fn: () => Promise<unknown>, minMs: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    await fn();
    n++;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

export async function benchIndexClient(opts: { quick?: boolean } = {}): Promise<Figure[]> {
  const window = opts.quick ? 300 : 1500;
  const dbl = new IndexDouble();
  dbl.addBatch([{ name: 'single', version: '1.0', filename: 'single-1.0.tar.gz', publisher: 1 }]);
  dbl.addBatch(Array.from({ length: 130 }, (_, i) => ({ name: 'many', version: `0.${i}`, filename: `many-0.${i}.tar.gz`, publisher: 2 })));
  dbl.addBatch(Array.from({ length: 200 }, (_, i) => ({ name: `other-${i}`, version: '1', filename: `other-${i}-1.tar.gz`, publisher: 3 + (i % 7) })));
  const inputCheckpoint = dbl.inputCheckpoint();
  // No network: the log's checkpoint from memory; the revision covers the whole log, so no consistency proof is read.
  const log = new LogClient('http://127.0.0.1:9');
  log.checkpoint = async () => inputCheckpoint;
  // Bundles served from memory, built once (the figure is the client's work, not the fixture's).
  const served = new Map<string, string>();
  const source: IndexSource = {
    bundle: async (q, cursor) => {
      const k = `${JSON.stringify(q)} ${cursor ? `${cursor.revision}.${cursor.page}` : ''}`;
      let t = served.get(k);
      if (t === undefined) served.set(k, (t = dbl.fixture.bundleText(q, cursor)));
      return t;
    },
  };
  const history = (q: IndexQuery) => fetchHistory({ log, source, policy: DOUBLE_POLICY, nowMs: Date.now() }, q);
  const single: IndexQuery = { kind: 'package', ecosystem: 'pypi', name: 'single' };
  const many: IndexQuery = { kind: 'package', ecosystem: 'pypi', name: 'many' };
  if ((await history(single)).count !== 1 || (await history(many)).entries.length !== 130) throw new Error('index client bench: wrong history');

  // Baseline: what verifying one entry against a witnessed checkpoint takes at least: the checkpoint's policy check
  // (log signature + 2 cosignatures, not memoised) and one RFC 6962 inclusion proof.
  const tree = dbl.inputTree();
  const size = dbl.fixture.leaves.length;
  const incProof = tree.inclusionProof(0, size);
  const incLeaf = leafHash(dbl.fixture.leaves[0]!);
  const plain = async () => {
    const cp = parseCheckpoint(verifyCheckpointWithPolicy(DOUBLE_POLICY, inputCheckpoint).text);
    verifyInclusion(0, size, incLeaf, incProof, cp.rootHash);
  };
  const baseline = await rate(plain, window);
  const singlePerSec = await rate(() => history(single), window);
  const manyPerSec = await rate(() => history(many), window);
  const bytes = Buffer.byteLength(dbl.fixture.bundleText(single));
  return [
    {
      name: 'client history verify, package with 1 file',
      value: singlePerSec,
      unit: 'histories/s',
      baseline,
      note: `fetchHistory with no network or state (${bytes}-byte bundle; index and log checkpoints each checked against the policy: 2 × (signature + 2 cosignatures)); baseline: one checkpoint's policy check + one inclusion proof in the same run (the least an entry's verification costs)`,
    },
    {
      name: 'client history verify, package with 130 files (3 pages)',
      value: manyPerSec,
      unit: 'histories/s',
      baseline,
      note: `${Math.round(manyPerSec * 130).toLocaleString('en')} proven entries/s; every page's bundle and checkpoint verified`,
    },
  ];
}
