/**
 * The package index in memory: the map function, the lists and the map over a MemoryMapStore, updated per batch.
 * For tests, benchmarks and `audit --index` rebuilds; a persistent index does the same through its own MapNodeStore
 * and per-key IndexListState (core/mpt.ts, core/index-list.ts). Pure and synchronous.
 */
import type { Hash } from './types.ts';
import type { Entry } from './entry.ts';
import { fail } from './errors.ts';
import { mapBatch } from './index-keys.ts';
import { EMPTY_INDEX_LIST, appendIndexList, indexListValue, indexPageHash, indexPageRange, proveIndexPage, INDEX_PAGE_SIZE, type IndexListState } from './index-list.ts';
import type { MapProof } from './mpt.ts';
import { EMPTY_MAP, MemoryMapStore, mapRootOf, proveMap, putMapNodes, updateMap, type MapChange, type MapRoot } from './mpt-store.ts';

/** The map part of a bundle for one key at one revision. */
export interface IndexKeyProof {
  mapProof: MapProof;
  count: number;
  page: number;
  listProof: Hash[];
  /** The input-log indices of the page (fetch each leaf and its inclusion proof for the bundle). */
  indices: number[];
}

interface KeyList {
  state: IndexListState;
  indices: number[];
}

export interface MemoryIndexOptions {
  store?: MemoryMapStore;
  /**
   * How many of the latest revisions stay provable (default: all). Older ones' nodes are deleted as they expire
   * (MapUpdate.replaced), so the store holds the live map plus the changed paths of the kept revisions.
   */
  keepRevisions?: number;
}

export class MemoryIndex {
  readonly store: MemoryMapStore;
  private readonly keep: number;
  private readonly lists = new Map<string, KeyList>();
  /** The map root and input-log size after each batch (revision order). */
  private readonly roots: Array<{ inputTreeSize: number; mapRoot: Hash; root: MapRoot }> = [];
  /** Per revision, the ids of the nodes its update replaced (until they are deleted). */
  private readonly replaced: number[][] = [];
  private size = 0;
  private root: MapRoot = EMPTY_MAP;

  constructor(options: MemoryIndexOptions = {}) {
    this.store = options.store ?? new MemoryMapStore();
    this.keep = options.keepRevisions ?? Infinity;
    if (!(this.keep >= 1)) fail('malformed', 'keepRevisions must be at least 1');
  }

  get inputTreeSize(): number {
    return this.size;
  }

  get mapRoot(): Hash {
    return this.root.hash;
  }

  /** The map roots so far, one per appended batch. */
  get revisions(): ReadonlyArray<{ inputTreeSize: number; mapRoot: Hash; root: MapRoot }> {
    return this.roots;
  }

  /**
   * Applies the next batch: entries at input-log indices inputTreeSize, inputTreeSize + 1, … Returns the new map root
   * and how many map nodes the batch created.
   */
  appendBatch(entries: Entry[]): { mapRoot: Hash; inputTreeSize: number; nodes: number; keys: number } {
    const batch = entries.map((entry, i) => ({ index: this.size + i, entry }));
    const appends = mapBatch(batch);
    const changes: MapChange[] = [];
    const states: Array<[string, IndexListState, number[]]> = [];
    for (const a of appends) {
      const k = a.key.toString('latin1');
      const state = appendIndexList(this.lists.get(k)?.state ?? EMPTY_INDEX_LIST, a.indices);
      states.push([k, state, a.indices]);
      changes.push({ key: a.key, value: indexListValue(state) });
    }
    const update = updateMap(this.store, this.root, changes, this.store.nextId);
    putMapNodes(this.store, update);
    // Only once the update succeeded: the lists grow in place.
    for (const [k, state, added] of states) {
      const l = this.lists.get(k);
      if (l === undefined) this.lists.set(k, { state, indices: added });
      else {
        l.state = state;
        for (const i of added) l.indices.push(i);
      }
    }
    this.size += entries.length;
    this.root = mapRootOf(update);
    this.roots.push({ inputTreeSize: this.size, mapRoot: update.root, root: this.root });
    this.replaced.push(update.replaced);
    // Revision r − keep expires: the nodes that revision r − keep + 1 replaced were only in it and earlier ones.
    const j = this.roots.length - this.keep;
    if (j >= 1 && Number.isFinite(this.keep)) {
      for (const id of this.replaced[j]!) this.store.deleteMapNode(id);
      this.replaced[j] = [];
    }
    return { mapRoot: update.root, inputTreeSize: this.size, nodes: update.nodes.length, keys: changes.length };
  }

  /** The key's indices among the first `inputTreeSize` entries. */
  indicesOf(key: Hash, inputTreeSize = this.size): number[] {
    const all = this.lists.get(key.toString('latin1'))?.indices ?? [];
    return all.filter((i) => i < inputTreeSize);
  }

  /** The oldest revision still provable. */
  get oldestRevision(): number {
    return Math.max(0, this.roots.length - this.keep);
  }

  /** The map proof and list page for `key` at revision `revision` (default: the latest). */
  prove(key: Hash, page = 0, revision = this.roots.length - 1): IndexKeyProof {
    if (!Number.isSafeInteger(revision) || revision < 0 || revision >= this.roots.length) fail('not_found', `no index revision ${revision}`);
    if (revision < this.oldestRevision) fail('not_found', `index revision ${revision} is no longer kept (oldest: ${this.oldestRevision}); start again from the latest`);
    const at = this.roots[revision]!;
    const { proof } = proveMap(this.store, at.root, key);
    if (proof.kind === 'absent') {
      if (page !== 0) fail('out_of_range', 'an absent key has only page 0');
      return { mapProof: proof, count: 0, page: 0, listProof: [], indices: [] };
    }
    const indices = this.indicesOf(key, at.inputTreeSize);
    const count = indices.length;
    const { start, end } = indexPageRange(count, page);
    const pageIndices = (p: number) => indices.slice(p * INDEX_PAGE_SIZE, Math.min(count, (p + 1) * INDEX_PAGE_SIZE));
    return { mapProof: proof, count, page, listProof: proveIndexPage(count, page, (p) => indexPageHash(pageIndices(p))), indices: indices.slice(start, end) };
  }
}
