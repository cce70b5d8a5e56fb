/**
 * A small "map sandwich" in memory for tests and benchmarks: an input log of entries, core's MemoryIndex updated
 * per batch, an output log of revision leaves with a signed and cosigned checkpoint, and bundles assembled the
 * way a server does (core/index-bundle.ts). Entries carry random signature bytes: the index never checks them.
 */
import { createHash } from 'node:crypto';
import { encodeLeaf, type Entry } from '../../core/entry.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import { ed25519Signer, formatVerifierKey, signNote, type Signer } from '../../core/note.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';
import { parsePolicy, type Policy } from '../../core/policy.ts';
import { indexKey, type IndexQuery } from '../../core/index-keys.ts';
import { MemoryIndex } from '../../core/index-memory.ts';
import { formatIndexRevision } from '../../core/index-revision.ts';
import { formatIndexBundle, type IndexBundle, type IndexCursor, type IndexTrust } from '../../core/index-bundle.ts';
import { ReferenceTree } from './reference-tree.ts';

export const INPUT_ORIGIN = 'example.com/pkglog';
export const OUTPUT_ORIGIN = 'example.com/pkglog/index';
const seed = (s: string) => createHash('sha256').update(s).digest();
export const OUTPUT_SIGNER = ed25519Signer(OUTPUT_ORIGIN, seed('index log'));
export const WITNESSES: Signer[] = [1, 2].map((i) => cosignatureSigner(`w${i}.example`, seed(`index witness ${i}`), () => 1_700_000_000 + i));
export const POLICY_TEXT =
  `log ${formatVerifierKey(OUTPUT_ORIGIN, 1, OUTPUT_SIGNER.publicKey)}\n` +
  WITNESSES.map((w, i) => `witness W${i + 1} ${formatVerifierKey(w.name, 4, w.publicKey)}\n`).join('') +
  'group both all W1 W2\nquorum both\n';
export const POLICY: Policy = parsePolicy(POLICY_TEXT);
export const TRUST: IndexTrust = { policy: POLICY, inputOrigin: INPUT_ORIGIN };

/** A deterministic entry; `publisher` picks one of a few publisher keys. */
export function fakeEntry(f: { ecosystem?: string; name: string; version: string; filename: string; content: string; publisher: number; time?: number }): Entry {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return {
    ecosystem: f.ecosystem ?? 'pypi',
    name: f.name,
    version: f.version,
    filename: f.filename,
    sha256: h(`content ${f.content}`).toString('hex'),
    publisherKey: h(`publisher ${f.publisher}`),
    publisherSignature: Buffer.concat([h(`sig a ${f.filename}`), h(`sig b ${f.filename}`)]),
    registryName: 'pypi.org',
    registrySignature: Buffer.concat([h(`reg a ${f.filename}`), h(`reg b ${f.filename}`)]),
    integratedTime: f.time ?? 1_767_225_600_000,
  };
}

export class IndexFixture {
  readonly entries: Entry[] = [];
  readonly leaves: Buffer[] = [];
  readonly index: MemoryIndex;
  readonly revisionLeaves: Buffer[] = [];
  private inputTree = ReferenceTree.fromEntries([]);
  private outputTree = ReferenceTree.fromEntries([]);
  private checkpoints = new Map<number, string>();

  constructor(keepRevisions?: number) {
    this.index = new MemoryIndex(keepRevisions === undefined ? {} : { keepRevisions });
  }

  /** Sequences one batch into the input log, updates the map and appends the revision to the output log. */
  addBatch(batch: Entry[]): void {
    for (const e of batch) {
      this.entries.push(e);
      this.leaves.push(encodeLeaf(e));
    }
    this.inputTree = ReferenceTree.fromEntries(this.leaves);
    const { mapRoot, inputTreeSize } = this.index.appendBatch(batch);
    this.revisionLeaves.push(
      formatIndexRevision({ revision: this.revisionLeaves.length, inputOrigin: INPUT_ORIGIN, inputTreeSize, inputRootHash: this.inputTree.root(inputTreeSize), mapRoot }),
    );
    this.outputTree = ReferenceTree.fromEntries(this.revisionLeaves);
  }

  get outputSize(): number {
    return this.revisionLeaves.length;
  }

  /** The output log's checkpoint of `size` revisions, signed by the index log and cosigned by both witnesses. */
  checkpoint(size = this.outputSize, signers: Signer[] = [OUTPUT_SIGNER, ...WITNESSES]): string {
    const memo = signers.length === 3 ? this.checkpoints.get(size) : undefined;
    if (memo !== undefined) return memo;
    const text = formatCheckpoint({ origin: OUTPUT_ORIGIN, treeSize: size, rootHash: this.outputTree.root(size), extensions: [] });
    const note = signNote(text, signers);
    if (signers.length === 3) this.checkpoints.set(size, note);
    return note;
  }

  /** The bundle a server would serve for `query` (page and revision from `cursor`, output checkpoint of `outputSize`). */
  bundle(query: IndexQuery, cursor?: IndexCursor, outputSize = this.outputSize): IndexBundle {
    const r = cursor?.revision ?? outputSize - 1;
    const rev = this.index.revisions[r]!;
    const key = indexKey(query);
    const p = this.index.prove(key, cursor?.page ?? 0, r);
    const pages = Math.ceil(p.count / 64);
    return {
      key,
      checkpoint: this.checkpoint(outputSize),
      revisionLeaf: this.revisionLeaves[r]!,
      revisionProof: this.outputTree.inclusionProof(r, outputSize),
      mapProof: p.mapProof,
      count: p.count,
      page: p.page,
      listProof: p.listProof,
      entries: p.indices.map((i) => ({ index: i, leaf: this.leaves[i]!, proof: this.inputTree.inclusionProof(i, rev.inputTreeSize) })),
      next: p.page + 1 < pages ? { revision: r, page: p.page + 1 } : null,
    };
  }

  bundleText(query: IndexQuery, cursor?: IndexCursor, outputSize?: number): string {
    return formatIndexBundle(this.bundle(query, cursor, outputSize));
  }
}
