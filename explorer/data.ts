/**
 * Where the explorer's data comes from: the log's JSON API when it has one (a `pkglog serve`), else only the C2SP
 * tlog-tiles layout (a static copy: `--publish-dir` behind nginx or a CDN). Everything shown as verified is checked
 * with core code against the policy: proofs from the API (tlog-proof), or inclusion proofs computed here from tiles
 * authenticated by core/tile-hashes.ts against the verified checkpoint's root.
 */
import { decodeLeaf, type Entry } from '../core/entry.ts';
import { decodeBase64, encodeBase64 } from '../core/encoding.ts';
import { fail, PkglogError } from '../core/errors.ts';
import { leafHash } from '../core/hash.ts';
import { planInclusionProof, verifyInclusion } from '../core/merkle.ts';
import { parseSignedNote } from '../core/note.ts';
import { parsePolicy, type Policy } from '../core/policy.ts';
import { hashRangesFromTiles, planRangesRead } from '../core/tile-hashes.ts';
import { formatTilePath, parseEntryBundle, tileWidth, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import { verifyCheckpointView, verifyEntryProof, type VerifiedCheckpointView, type VerifiedEntryView } from './verify.ts';

/** No answer the explorer reads is larger (a tile bundle of 256 entries is well below). */
const MAX_RESPONSE = 2 * 1024 * 1024;

/** GET `path` (relative to the page), at most MAX_RESPONSE bytes; undefined on 404. */
export async function get(path: string): Promise<Uint8Array | undefined> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json, text/plain, */*' }, cache: 'no-cache' });
  } catch (e) {
    return fail('network', `could not reach the log (${(e as Error).message})`);
  }
  if (res.status === 404) return undefined;
  const length = Number(res.headers.get('Content-Length') ?? '0');
  if (length > MAX_RESPONSE) fail('too_large', `${path}: answer larger than ${MAX_RESPONSE} bytes`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.length > MAX_RESPONSE) fail('too_large', `${path}: answer larger than ${MAX_RESPONSE} bytes`);
  if (!res.ok) {
    let message = `${path}: HTTP ${res.status}`;
    try {
      const j = JSON.parse(new TextDecoder().decode(body)) as { message?: string };
      if (typeof j.message === 'string') message = j.message;
    } catch { /* not JSON */ }
    return fail(res.status === 429 || res.status >= 500 ? 'network' : 'malformed', message);
  }
  return body;
}

export async function getText(path: string): Promise<string | undefined> {
  const b = await get(path);
  return b === undefined ? undefined : new TextDecoder('utf-8', { fatal: true }).decode(b);
}

export async function getJSON<T>(path: string): Promise<T | undefined> {
  const t = await getText(path);
  if (t === undefined) return undefined;
  try {
    return JSON.parse(t) as T;
  } catch {
    return fail('malformed', `${path}: not JSON`);
  }
}

/** An entry as the page shows it (the JSON API's fields, or decoded from a leaf). */
export interface EntryView {
  index: number;
  ecosystem: string;
  name: string;
  version: string;
  filename: string;
  sha256: string;
  publisherKey: string;
  registryName: string;
  integratedTime: number;
}

export function entryView(index: number, e: Entry): EntryView {
  return {
    index, ecosystem: e.ecosystem, name: e.name, version: e.version, filename: e.filename, sha256: e.sha256,
    publisherKey: encodeBase64(e.publisherKey), registryName: e.registryName, integratedTime: e.integratedTime,
  };
}

interface ApiEntry {
  index: number;
  leaf: string;
}

/** The leaf of an API answer, decoded and checked against the fields the page shows (all come from the leaf). */
function fromApi(e: ApiEntry): EntryView {
  if (typeof e.index !== 'number' || typeof e.leaf !== 'string') fail('malformed', 'entry answer has no index or leaf');
  return entryView(e.index, decodeLeaf(decodeBase64(e.leaf, 'leaf')));
}

export type Mode = 'api' | 'tiles';

export interface PolicySource {
  policy: Policy;
  text: string;
  /** 'saved' (set by the user in this browser) or 'log' (published by the log itself at v1/policy). */
  from: 'saved' | 'log';
}

const POLICY_STORAGE = 'pkglog.policy';

export class LogData {
  mode: Mode = 'api';
  policySource: PolicySource | undefined;
  policyError: string | undefined;

  /** Finds out what the server offers and which policy to verify with. */
  async init(storage: Storage | undefined): Promise<void> {
    let published: string | undefined;
    try {
      published = await getText('v1/policy');
    } catch {
      published = undefined;
    }
    this.mode = published === undefined ? 'tiles' : 'api';
    const saved = storage?.getItem(POLICY_STORAGE) ?? undefined;
    const text = saved ?? published;
    if (text === undefined) {
      this.policyError = 'no policy: this server publishes none; paste one under "Trust settings"';
      return;
    }
    try {
      this.policySource = { policy: parsePolicy(text), text, from: saved !== undefined ? 'saved' : 'log' };
      this.policyError = undefined;
    } catch (e) {
      this.policyError = `the ${saved !== undefined ? 'saved' : "log's"} policy does not parse: ${(e as Error).message}`;
    }
  }

  static savePolicy(storage: Storage, text: string | undefined): void {
    if (text === undefined) storage.removeItem(POLICY_STORAGE);
    else {
      parsePolicy(text); // refuse to save what cannot be used
      storage.setItem(POLICY_STORAGE, text);
    }
  }

  private policy(): Policy {
    if (this.policySource === undefined) fail('unknown_key', this.policyError ?? 'no policy');
    return this.policySource.policy;
  }

  /** The latest checkpoint, verified against the policy (or the error why not), and the note as served. */
  async checkpoint(): Promise<{ note: string; verified?: VerifiedCheckpointView; error?: string; treeSize: number }> {
    const note = await getText('checkpoint');
    if (note === undefined) fail('not_found', 'the log serves no checkpoint');
    const { text } = parseSignedNote(note);
    const treeSize = Number(text.split('\n')[1]);
    try {
      return { note, verified: verifyCheckpointView(note, this.policy()), treeSize };
    } catch (e) {
      return { note, error: (e as Error).message, treeSize };
    }
  }

  /** Entry `index` (from the API, or from its entry bundle in the tile layout). */
  async entry(index: number, treeSize: number): Promise<EntryView> {
    if (this.mode === 'api') {
      const e = await getJSON<ApiEntry>(`v1/entries/${index}`);
      if (e === undefined) fail('not_found', `entry ${index} does not exist`);
      return fromApi(e);
    }
    return entryView(index, decodeLeaf(await this.leafFromTiles(index, treeSize)));
  }

  /** Entry `index` with its inclusion proof verified against a checkpoint that satisfies the policy. */
  async verifiedEntry(index: number): Promise<VerifiedEntryView> {
    if (this.mode === 'api') {
      const proof = await getText(`v1/entries/${index}/proof`);
      if (proof === undefined) fail('not_found', `entry ${index} does not exist`);
      return verifyEntryProof(proof, this.policy(), { index });
    }
    const note = await getText('checkpoint');
    if (note === undefined) fail('not_found', 'the log serves no checkpoint');
    const checkpoint = verifyCheckpointView(note, this.policy());
    if (index >= checkpoint.treeSize) fail('not_found', `entry ${index} is not in the tree of size ${checkpoint.treeSize}`);
    const root = decodeBase64(checkpoint.rootHash);
    const leaf = await this.leafFromTiles(index, checkpoint.treeSize);
    const ranges = planInclusionProof(index, checkpoint.treeSize);
    const plan = planRangesRead(ranges, checkpoint.treeSize);
    const tiles = await Promise.all(plan.tiles.map((t) => this.tile(t)));
    const proof = ranges.length === 0 ? [] : hashRangesFromTiles(ranges, plan, tiles, root);
    const hash = leafHash(leaf);
    verifyInclusion(index, checkpoint.treeSize, hash, proof, root);
    return { index, entry: decodeLeaf(leaf), leafHash: encodeBase64(hash), inclusionProof: proof.map(encodeBase64), checkpoint };
  }

  private async tile(t: Tile): Promise<Uint8Array> {
    // A partial tile may have been replaced by the full one: its prefix is what the smaller tree had.
    const exact = await get(formatTilePath(t));
    if (exact !== undefined) return exact;
    const full = t.width < TILE_WIDTH ? await get(formatTilePath({ ...t, width: TILE_WIDTH })) : undefined;
    if (full === undefined) fail('not_found', `${formatTilePath(t)}: not found`);
    return t.level < 0 ? full : full.subarray(0, t.width * 32);
  }

  private async leafFromTiles(index: number, treeSize: number): Promise<Buffer> {
    const n = Math.floor(index / TILE_WIDTH);
    const leaves = parseEntryBundle(await this.tile({ level: -1, index: n, width: tileWidth(0, n, treeSize) }));
    const leaf = leaves[index - n * TILE_WIDTH];
    if (leaf === undefined) fail('malformed', `entry bundle ${n} has no entry ${index}`);
    return leaf;
  }

  /** The newest `count` entries of a tree of `treeSize`, newest first. */
  async recent(treeSize: number, count: number): Promise<EntryView[]> {
    const first = Math.max(0, treeSize - count);
    const indexes = Array.from({ length: treeSize - first }, (_, i) => treeSize - 1 - i);
    return Promise.all(indexes.map((i) => this.entry(i, treeSize)));
  }

  private needsApi(what: string): void {
    if (this.mode !== 'api') fail('not_found', `${what} needs the log's lookup API; this server only serves the static tile layout`);
  }

  /** Every entry of a package (optionally one version), in log order, following the API's pages (bounded). */
  async lookupPackage(ecosystem: string, name: string, version?: string, maxEntries = 2000): Promise<EntryView[]> {
    this.needsApi('search');
    const base = `v1/lookup/${encodeURIComponent(ecosystem)}/${encodeURIComponent(name)}${version === undefined ? '' : '/' + encodeURIComponent(version)}`;
    return this.pages(base, maxEntries);
  }

  async lookupSha256(hex: string): Promise<EntryView[]> {
    this.needsApi('search');
    return this.pages(`v1/lookup/sha256/${hex.toLowerCase()}`, 100);
  }

  private async pages(base: string, maxEntries: number): Promise<EntryView[]> {
    const out: EntryView[] = [];
    let cursor: string | undefined;
    do {
      const page = await getJSON<{ entries: ApiEntry[]; next?: string }>(cursor === undefined ? base : `${base}?cursor=${encodeURIComponent(cursor)}`);
      if (page === undefined) break;
      if (!Array.isArray(page.entries)) fail('malformed', 'lookup answer has no entries');
      out.push(...page.entries.map(fromApi));
      cursor = page.next;
    } while (cursor !== undefined && out.length < maxEntries);
    return out;
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof PkglogError ? e.message : e instanceof Error ? e.message : String(e);
}
