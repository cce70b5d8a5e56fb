/**
 * The package index on the server (docs/index-format.md, "Server"): after each sequencer batch commits, the indexer
 * maps the new entries (core/index-keys.ts), appends to each touched key's list (core/index-list.ts), updates the
 * Merkle prefix trie (core/mpt.ts, O(k log n) for k keys) and appends the revision leaf (core/index-revision.ts) to
 * the OUTPUT LOG — a tlog-tiles log with origin `<log origin>/index`, signed by the log's key under that name — all in
 * one IndexStore transaction (log-store/index-store.ts). It then serves proof bundles (core/index-bundle.ts).
 *
 * - A revision covers the input log up to a size the log signed a checkpoint for and made public (its high-water
 *   mark): normally exactly the batch just committed, so the index lags the log by at most one batch.
 * - Revision 0 is the empty map of the empty input log (written at the first start), so absence is provable at once.
 * - Work is serialized (one step at a time); a failed step changes nothing and is retried at the next notify.
 * - At start-up only the head row is read: nothing is rebuilt; the next step continues from the stored revision.
 * - The last `keepRevisions` revisions stay provable (a cursor pins its revision); older ones' replaced map nodes are
 *   deleted as they expire.
 */
import type { Hash } from '../core/types.ts';
import { fail } from '../core/errors.ts';
import { decodeLeaf } from '../core/entry.ts';
import { EMPTY_ROOT, leafHash, nodeHash } from '../core/hash.ts';
import { parseCheckpoint, formatCheckpoint } from '../core/checkpoint.ts';
import { parseSignedNote, signNote, type Signer } from '../core/note.ts';
import { integrate, rightEdgeTiles } from '../core/integrate.ts';
import { hashRanges, nodesOf, planConsistencyProof, planInclusionProof, type NodeId } from '../core/merkle.ts';
import { nodeHashFromTiles, tilesForNodes, type Tile } from '../core/tiles.ts';
import { indexKey, mapBatch, type IndexQuery } from '../core/index-keys.ts';
import {
  appendIndexList, decodeIndexListState, encodeIndexListState, encodeIndexPage, indexListValue, indexPageCount, indexPageHash,
  indexPageRange, verifyIndexPage, EMPTY_INDEX_LIST, INDEX_PAGE_SIZE, type IndexListState,
} from '../core/index-list.ts';
import { EMPTY_MAP, proveMap, updateMapWith, type MapRoot } from '../core/mpt-store.ts';
import { formatIndexRevision } from '../core/index-revision.ts';
import { formatIndexBundle, type IndexCursor } from '../core/index-bundle.ts';
import type { IndexHead, IndexRevisionWrite, IndexStore, ListNode, StoredPage } from '../log-store/index-store.ts';

/** What the indexer reads of the input log (log-store/store.ts LogStore has these). */
export interface InputLog {
  entryLeaves(start: number, end: number): Buffer[] | Promise<Buffer[]>;
  entryLeaf(index: number): Buffer | undefined | Promise<Buffer | undefined>;
  checkpoint(treeSize: number): string | undefined | Promise<string | undefined>;
  firstCheckpointSizeIn(lo: number, hi: number): number | undefined | Promise<number | undefined>;
}

/** Signs output checkpoints elsewhere (the index worker asks the log's main thread, which holds the key). */
export interface RemoteSigner {
  name: string;
  /** The signed note of a checkpoint text; throws (nothing is committed) when the log may not sign. */
  signCheckpoint(text: string): Promise<string>;
}

export interface IndexerOptions {
  store: IndexStore;
  input: InputLog;
  /** Inclusion proof of input entry `index` in the input tree of `treeSize`. */
  inputProof(index: number, treeSize: number): Hash[] | Promise<Hash[]>;
  inputOrigin: string;
  /** Signs the output log's checkpoints; its name is the output origin. */
  signer: Signer | RemoteSigner;
  /** The input log's public size (its high-water mark): revisions never cover more. */
  publicSize(): number;
  /** False while the log may not sign (stopped, or start-up checks pending): no revision is written. */
  maySign?(): boolean;
  /** How many of the latest revisions stay provable (default 64). */
  keepRevisions?: number;
  /** Cosignatures an output checkpoint needs to be served in bundles (0: the newest checkpoint). */
  quorum?: number;
  /**
   * The output log's published size (its high-water mark, kept outside the database): a stored index with fewer
   * revisions (an older database put back) must not sign again, or it would sign different checkpoints of sizes it
   * already published ('unsafe_state', nothing written).
   */
  publishedRevisions?: number;
  /** Called after each committed revision (witnessing, publication). */
  onRevision?(head: IndexHead): void;
  log?(msg: string): void;
}

/** At most this many input entries per revision (a log indexed for the first time catches up in steps). */
export const MAX_REVISION_ENTRIES = 5_000;
const READ_CHUNK = 256;

export function outputOrigin(inputOrigin: string): string {
  return `${inputOrigin}/index`;
}

/** The work done so far (tests check that a restart does not rebuild anything). */
export interface IndexerStats {
  revisions: number;
  entries: number;
  /** Input-log entries read (each is read once, when its revision is built). */
  entriesRead: number;
}

export class Indexer {
  readonly stats: IndexerStats = { revisions: 0, entries: 0, entriesRead: 0 };
  readonly origin: string;
  private readonly o: IndexerOptions;
  private readonly keep: number;
  private head: IndexHead | undefined;
  private loaded = false;
  private latestNote: { treeSize: number; signedNote: string } | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(o: IndexerOptions) {
    this.o = o;
    this.origin = o.signer.name;
    this.keep = o.keepRevisions ?? 64;
    if (!(this.keep >= 1)) fail('malformed', 'keepRevisions must be at least 1');
  }

  /** The committed head (undefined before the first revision). Read once: the indexer is the only writer. */
  async currentHead(): Promise<IndexHead | undefined> {
    if (this.loaded) return this.head;
    const head = await this.o.store.head();
    if (head !== undefined) {
      const note = await this.o.store.checkpoint(head.revisions);
      if (note === undefined) fail('internal', `the index log has no checkpoint of its size ${head.revisions}`);
      this.latestNote = { treeSize: head.revisions, signedNote: note };
    }
    this.head = head;
    this.loaded = true;
    // After a restart: bring the witnesses up to date with what is stored.
    if (head !== undefined) this.revised(head);
    return head;
  }

  /** A revision another indexer (the index worker) committed: serve from it. */
  adopt(head: IndexHead, signedNote: string): void {
    if (this.head !== undefined && head.revisions <= this.head.revisions) return;
    this.head = head;
    this.loaded = true;
    this.latestNote = { treeSize: head.revisions, signedNote };
    this.revised(head);
  }

  /** The newest output checkpoint (log signature only), for the witnesses; undefined before the first revision. */
  latest(): { treeSize: number; signedNote: string } | undefined {
    return this.latestNote;
  }

  private revised(head: IndexHead): void {
    try {
      this.o.onRevision?.(head);
    } catch (e) {
      this.o.log?.(`index: after revision ${head.revisions - 1}: ${(e as Error).message}`);
    }
  }

  /** A batch committed: catch up in the background (coalesced; never throws). */
  notify(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          while (!this.closed && (await this.step())) {
            // One revision per step; requests are served between steps (a catch-up does not stall the log).
            await new Promise((r) => setImmediate(r));
          }
        } while (this.again && !this.closed);
      } catch (e) {
        this.o.log?.(`index: revision not written (retried at the next batch): ${(e as Error).message}`);
      } finally {
        this.running = undefined;
      }
    })();
  }

  /** Resolves once the index covers the input log's public size now (or a step failed). */
  async caughtUp(): Promise<void> {
    this.notify();
    while (this.running !== undefined) await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.running !== undefined) await this.running;
  }

  /** The input size the next revision covers, or undefined when the index is up to date. */
  private async nextSize(from: number): Promise<number | undefined> {
    const target = this.o.publicSize();
    if (target <= from) return undefined;
    if (target - from <= MAX_REVISION_ENTRIES) return target;
    const { input } = this.o;
    const limit = from + MAX_REVISION_ENTRIES + 1;
    let s = await input.firstCheckpointSizeIn(from + 1, limit);
    if (s === undefined) return (await input.firstCheckpointSizeIn(limit, target + 1)) ?? target;
    for (;;) {
      const t = await input.firstCheckpointSizeIn(s + 1, limit);
      if (t === undefined) return s;
      s = t;
    }
  }

  private async inputRoot(size: number): Promise<Hash> {
    if (size === 0) return EMPTY_ROOT;
    const note = await this.o.input.checkpoint(size);
    if (note === undefined) fail('internal', `the input log has no checkpoint of size ${size}`);
    return parseCheckpoint(parseSignedNote(note).text).rootHash;
  }

  /** Writes the next revision if the input log grew. Returns whether it wrote one. */
  async step(): Promise<boolean> {
    if (this.o.maySign !== undefined && !this.o.maySign()) return false;
    const { store } = this.o;
    // The stored head, not a cached one: a step that another writer already made is not made twice.
    const stored = await store.head();
    const published = this.o.publishedRevisions ?? 0;
    if ((stored?.revisions ?? 0) < published) {
      fail('unsafe_state', `refusing to sign: the index log already published size ${published}, but the database holds only ${stored?.revisions ?? 0} revisions (an older database?); signing now would fork the index log (docs/index-format.md, "Server")`);
    }
    const head = stored ?? (await this.currentHead());
    if (stored !== undefined && (this.head === undefined || stored.revisions !== this.head.revisions)) {
      this.loaded = false;
      await this.currentHead();
    }
    const from = head?.inputSize ?? 0;
    const size = head === undefined ? 0 : await this.nextSize(from);
    if (size === undefined) return false;
    const revisions = head?.revisions ?? 0;
    const mapRoot: MapRoot = head === undefined ? EMPTY_MAP : { hash: head.mapRoot, id: head.mapRootId };

    // The map function over the new entries, then each touched key's list: its state is its map leaf's extra.
    const batch: Array<{ index: number; entry: ReturnType<typeof decodeLeaf> }> = [];
    for (let at = from; at < size; at += READ_CHUNK) {
      const leaves = await this.o.input.entryLeaves(at, Math.min(size, at + READ_CHUNK));
      if (leaves.length !== Math.min(size, at + READ_CHUNK) - at) fail('internal', `the input log is missing entries in [${at}, ${Math.min(size, at + READ_CHUNK)})`);
      leaves.forEach((leaf, i) => batch.push({ index: at + i, entry: decodeLeaf(leaf) }));
    }
    this.stats.entriesRead += batch.length;
    const appends = mapBatch(batch);
    const reader = await store.loadMapPaths(mapRoot, appends.map((a) => a.key));
    const pages: StoredPage[] = [];
    const listNodes: ListNode[] = [];
    const added = new Map(appends.map((a) => [a.key.toString('latin1'), a.indices]));
    // One walk: each key's new leaf from its old one (the key's list state is its leaf's extra).
    const update = updateMapWith(reader, mapRoot, appends.map((a) => a.key), (key, leaf) => {
      const indices = added.get(key.toString('latin1'))!;
      const old = leaf === undefined ? EMPTY_INDEX_LIST : decodeIndexListState(leaf.extra);
      const state = appendIndexList(old, indices);
      listWrites(Buffer.from(key), old, indices, pages, listNodes);
      return { value: indexListValue(state), extra: encodeIndexListState(state) };
    }, head?.nextNodeId ?? 1);

    // The revision leaf, appended to the output log.
    const leaf = formatIndexRevision({ revision: revisions, inputOrigin: this.o.inputOrigin, inputTreeSize: size, inputRootHash: await this.inputRoot(size), mapRoot: update.root });
    const edge = await store.readTiles(rightEdgeTiles(revisions));
    const out = integrate(revisions, (t) => tileData(edge, t), [leafHash(leaf)]);
    const text = formatCheckpoint({ origin: this.origin, treeSize: out.treeSize, rootHash: out.rootHash, extensions: [] });
    const signer = this.o.signer;
    const note = 'signCheckpoint' in signer ? await signer.signCheckpoint(text) : signNote(text, [signer]);
    const nextNodeId = update.nodes.length === 0 ? (head?.nextNodeId ?? 1) : update.nodes[update.nodes.length - 1]!.id + 1;
    const newHead: IndexHead = { revisions: out.treeSize, inputSize: size, mapRoot: update.root, mapRootId: update.rootId, outputRoot: out.rootHash, nextNodeId };
    await store.commit({
      oldRevisions: revisions,
      head: newHead,
      revision: { revision: revisions, inputSize: size, mapRoot: update.root, mapRootId: update.rootId, leaf },
      nodes: update.nodes,
      replaced: update.replaced,
      pages, listNodes,
      tiles: out.tiles,
      checkpoint: { treeSize: out.treeSize, note },
    });
    // Nodes replaced by revisions ≤ revisions + 1 − keep are in no kept revision any more (one bounded step).
    try {
      await store.sweep(out.treeSize - this.keep, this.oldestKept(newHead));
    } catch (e) {
      this.o.log?.(`index: sweep of replaced map nodes failed (retried at the next revision): ${(e as Error).message}`);
    }
    this.head = newHead;
    this.latestNote = { treeSize: out.treeSize, signedNote: note };
    this.stats.revisions++;
    this.stats.entries += batch.length;
    this.revised(newHead);
    return true;
  }

  /** The oldest revision still provable. */
  private oldestKept(head: IndexHead): number {
    return Math.max(0, head.revisions - this.keep);
  }

  /**
   * The output checkpoint bundles are served with: the newest kept one with at least `quorum` cosignatures (else the
   * newest), with its cosignature lines appended.
   */
  async servedCheckpoint(): Promise<{ treeSize: number; note: string }> {
    const head = await this.currentHead();
    if (head === undefined) fail('not_found', 'the index has no revision yet');
    const { store } = this.o;
    const q = this.o.quorum ?? 0;
    let size = head.revisions;
    if (q > 0) {
      const cosigned = (await store.cosignedSizes(this.oldestKept(head) + 1)).find((c) => c.count >= q);
      if (cosigned !== undefined) size = cosigned.treeSize;
    }
    return { treeSize: size, note: await this.noteWithCosignatures(size) };
  }

  /** The output log's checkpoint of `size` with every cosignature stored for it. */
  async noteWithCosignatures(size: number): Promise<string> {
    const note = await this.o.store.checkpoint(size);
    if (note === undefined) fail('not_found', `the index log has no checkpoint of size ${size}`);
    const cosigs = await this.o.store.cosignatureLines(size);
    return cosigs.length === 0 ? note : note + cosigs.map((l) => l + '\n').join('');
  }

  /** RFC 6962 proof for output-log leaf `index` in the output tree of `size`. */
  async outputInclusionProof(index: number, size: number): Promise<Hash[]> {
    const ranges = planInclusionProof(index, size);
    return this.outputHashes(ranges, size);
  }

  async outputConsistencyProof(oldSize: number, newSize: number): Promise<Hash[]> {
    return this.outputHashes(planConsistencyProof(oldSize, newSize), newSize);
  }

  private async outputHashes(ranges: ReturnType<typeof planInclusionProof>, size: number): Promise<Hash[]> {
    const tiles = await this.o.store.readTiles(tilesForNodes(nodesOf(ranges), size));
    return hashRanges(ranges, (n) => nodeHashFromTiles(n, size, (t) => tileData(tiles, t)));
  }

  /** The bundle (canonical JSON) for `query`, at the cursor's revision and page, or the latest served revision's page 0. */
  async bundle(query: IndexQuery, cursor?: IndexCursor): Promise<string> {
    const key = indexKey(query);
    const head = await this.currentHead();
    if (head === undefined) fail('not_found', 'the index has no revision yet');
    const served = await this.servedCheckpoint();
    const r = cursor?.revision ?? served.treeSize - 1;
    if (r >= served.treeSize) fail('not_found', `index revision ${r} is not in the served index checkpoint (size ${served.treeSize})`);
    if (r < this.oldestKept(head)) fail('not_found', `index revision ${r} is no longer kept (oldest: ${this.oldestKept(head)}); start again from the latest`);
    const { store } = this.o;
    const rev = await store.revision(r);
    if (rev === undefined) fail('internal', `index revision ${r} is missing`);
    if (rev.mapRootId === undefined) fail('not_found', `index revision ${r} is no longer kept (oldest: ${this.oldestKept(head)}); start again from the latest`);
    const root: MapRoot = { hash: rev.mapRoot, id: rev.mapRootId };
    const reader = await store.loadMapPaths(root, [key]);
    const { value, extra, proof } = proveMap(reader, root, key);
    const page = cursor?.page ?? 0;
    let count = 0;
    let listProof: Hash[] = [];
    let indices: number[] = [];
    if (value === undefined) {
      if (page !== 0) fail('out_of_range', `page ${page}: the key is absent (one page, 0)`);
    } else {
      // The key's list as of this revision: its leaf's state (count, the last partial page), full pages stored.
      const state = decodeIndexListState(extra!);
      count = state.count;
      indexPageRange(count, page); // 'out_of_range' past the last page
      const full = Math.floor(count / INDEX_PAGE_SIZE);
      if (page === full) indices = state.tail;
      else {
        const p = await store.page(key, page);
        if (p === undefined) fail('internal', `page ${page} of key ${key.toString('hex')} is missing`);
        indices = decodeIndices(p.indices);
      }
      listProof = await this.listProof(key, count, page, full, state.tail);
      // The stored lists and the map agree (else the index is damaged: never serve a bundle that does not verify).
      if (!verifyIndexPage(count, page, indices, listProof).equals(value)) fail('internal', `the list of key ${key.toString('hex')} does not match its map value`);
    }
    const entries = [];
    for (const i of indices) {
      const leaf = await this.o.input.entryLeaf(i);
      if (leaf === undefined) fail('internal', `input entry ${i} is missing`);
      entries.push({ index: i, leaf, proof: await this.o.inputProof(i, rev.inputSize) });
    }
    const pages = indexPageCount(count);
    return formatIndexBundle({
      key,
      checkpoint: served.note,
      revisionLeaf: rev.leaf,
      revisionProof: await this.outputInclusionProof(r, served.treeSize),
      mapProof: proof,
      count,
      page: value === undefined ? 0 : page,
      listProof,
      entries,
      next: page + 1 < pages ? { revision: r, page: page + 1 } : null,
    });
  }

  /**
   * The inclusion proof of `page` in the list tree of `count` indices: complete subtrees over full pages are stored
   * (index_list_nodes), the right edge over the revision's last, partial page is hashed here. O(log pages) reads.
   */
  private async listProof(key: Hash, count: number, page: number, lastPage: number, lastIndices: number[]): Promise<Hash[]> {
    const pages = indexPageCount(count);
    const full = Math.floor(count / INDEX_PAGE_SIZE); // pages [0, full) are full
    const ranges = planInclusionProof(page, pages);
    const wanted: NodeId[] = [];
    const collect = (n: NodeId): void => {
      const end = (n.index + 1) * 2 ** n.level;
      if (end <= full) wanted.push(n);
      else if (n.level > 0) {
        collect({ level: n.level - 1, index: 2 * n.index });
        collect({ level: n.level - 1, index: 2 * n.index + 1 });
      }
    };
    for (const n of nodesOf(ranges)) collect(n);
    const got = await this.o.store.listNodes(key, wanted);
    const stored = new Map(wanted.map((n, i) => [`${n.level}/${n.index}`, got[i]!]));
    const tailHash = full < pages ? indexPageHash(lastPage === full ? lastIndices : []) : undefined;
    const hashOf = (n: NodeId): Hash => {
      const s = stored.get(`${n.level}/${n.index}`);
      if (s !== undefined) return s;
      if (n.level === 0) {
        if (n.index !== full || tailHash === undefined) fail('internal', `list page ${n.index} hash is not available`);
        return tailHash;
      }
      return nodeHash(hashOf({ level: n.level - 1, index: 2 * n.index }), hashOf({ level: n.level - 1, index: 2 * n.index + 1 }));
    };
    return hashRanges(ranges, hashOf);
  }
}

function tileData(tiles: Map<string, Buffer>, t: Tile): Buffer {
  const d = tiles.get(`${t.level}/${t.index}`);
  if (d === undefined) fail('internal', `index tile ${t.level}/${t.index} was not read`);
  return d.length === t.width * 32 ? d : d.subarray(0, t.width * 32);
}

function decodeIndices(b: Buffer): number[] {
  const out: number[] = [];
  for (let o = 0; o + 8 <= b.length; o += 8) out.push(Number(b.readBigUInt64BE(o)));
  return out;
}

/**
 * The page rows and list-tree nodes an append writes: every page that becomes full, its leaf hash (level 0) and each
 * complete subtree it completes (a binary counter over full pages). The last, partial page lives in the leaf's state.
 */
function listWrites(key: Hash, old: IndexListState, indices: number[], pages: StoredPage[], nodes: ListNode[]): void {
  let count = old.count;
  let tail = [...old.tail];
  const stack = [...old.fullPages];
  for (const i of indices) {
    tail.push(i);
    count++;
    if (tail.length === INDEX_PAGE_SIZE) {
      const p = count / INDEX_PAGE_SIZE - 1;
      pages.push({ key, page: p, indices: encodeIndexPage(tail) });
      let h = indexPageHash(tail);
      nodes.push({ key, level: 0, index: p, hash: h });
      stack.push(h);
      let full = p + 1;
      let level = 0;
      let idx = p;
      while (full % 2 === 0) {
        stack.pop();
        const left = stack.pop()!;
        h = nodeHash(left, h);
        level++;
        idx >>= 1;
        nodes.push({ key, level, index: idx, hash: h });
        stack.push(h);
        full /= 2;
      }
      tail = [];
    }
  }
}
