/**
 * A log made with core only (tiles from core/integrate.ts, checkpoints signed with core/note.ts): the witness's
 * test double. `fork(size)` returns a log with the same key and origin that shares the first `size` leaves and then
 * diverges — an equivocating log's second history. `serve()` exposes tlog-tiles over HTTP; views can differ per
 * URL prefix (e.g. /honest and /victim) to equivocate.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { integrate } from '../../core/integrate.ts';
import { parseTilePath, type Tile } from '../../core/tiles.ts';
import { nodeHashFromTiles } from '../../core/tiles.ts';
import { hashRanges, planConsistencyProof, planRoot } from '../../core/merkle.ts';
import { EMPTY_ROOT, leafHash } from '../../core/hash.ts';
import { ed25519Signer, formatVerifierKey, signNote, SIG_TYPE_ED25519, type Signer } from '../../core/note.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import { formatAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { planEvidenceProof } from '../../core/evidence.ts';
import type { Hash } from '../../core/types.ts';

export function seedFrom(label: string): Buffer {
  return createHash('sha256').update(label).digest();
}

export class FakeLog {
  readonly origin: string;
  signer: Signer;
  vkey: string;
  readonly label: string;
  size = 0;
  private tiles = new Map<string, Buffer>();

  constructor(origin: string, keyLabel = origin, label = 'main') {
    this.origin = origin;
    this.signer = ed25519Signer(origin, seedFrom(keyLabel));
    this.vkey = formatVerifierKey(origin, SIG_TYPE_ED25519, this.signer.publicKey);
    this.label = label;
  }

  private readTile = (t: Tile): Buffer => {
    const b = this.tiles.get(`${t.level}/${t.index}`);
    if (b === undefined || b.length < t.width * 32) throw new Error(`fake log: no tile ${t.level}/${t.index}.p/${t.width}`);
    return b.subarray(0, t.width * 32);
  };

  /** Appends `n` leaves named `${label}-${i}`. */
  append(n: number, label = this.label): this {
    const hashes: Hash[] = [];
    for (let i = 0; i < n; i++) hashes.push(leafHash(Buffer.from(`${label}-${this.size + i}`)));
    const r = integrate(this.size, this.readTile, hashes);
    for (const { tile, data } of r.tiles) this.tiles.set(`${tile.level}/${tile.index}`, data);
    this.size = r.treeSize;
    return this;
  }

  /** Appends leaves given by their leaf hashes (e.g. read from a real log's entry bundles). */
  appendLeafHashes(hashes: Hash[]): this {
    const r = integrate(this.size, this.readTile, hashes);
    for (const { tile, data } of r.tiles) this.tiles.set(`${tile.level}/${tile.index}`, data);
    this.size = r.treeSize;
    return this;
  }

  /** Signs with `signer` (e.g. a real log's key, for an equivocating double). */
  useSigner(signer: Signer, vkey: string): this {
    this.signer = signer;
    this.vkey = vkey;
    return this;
  }

  /** A log with the same key that shares the first `size` leaves, then appends `extra` different ones. */
  fork(size: number, extra: number): FakeLog {
    const f = new FakeLog(this.origin, this.origin, 'fork');
    // Rebuild the shared prefix with the same leaf names as this log's.
    const shared = new FakeLog(this.origin, this.origin, this.label);
    shared.append(size);
    f.tiles = new Map([...shared.tiles].map(([k, v]) => [k, Buffer.from(v)]));
    f.size = size;
    f.append(extra, 'fork');
    return f;
  }

  rootAt(size: number): Hash {
    if (size === 0) return EMPTY_ROOT;
    return hashRanges([planRoot(size)], (n) => nodeHashFromTiles(n, size, this.readTile))[0]!;
  }

  checkpointText(size = this.size): string {
    return formatCheckpoint({ origin: this.origin, treeSize: size, rootHash: this.rootAt(size), extensions: [] });
  }

  checkpoint(size = this.size, signers: Signer[] = [this.signer]): string {
    return signNote(this.checkpointText(size), signers);
  }

  consistencyProof(oldSize: number, newSize = this.size): Hash[] {
    if (oldSize === 0 || oldSize === newSize) return [];
    return hashRanges(planConsistencyProof(oldSize, newSize), (n) => nodeHashFromTiles(n, newSize, this.readTile));
  }

  evidenceProof(smaller: number, larger = this.size): Hash[] {
    return hashRanges(planEvidenceProof(smaller, larger), (n) => nodeHashFromTiles(n, larger, this.readTile));
  }

  /** The add-checkpoint body from `oldSize` to `newSize`. */
  addCheckpointBody(oldSize: number, newSize = this.size): Buffer {
    return formatAddCheckpointRequest({
      oldSize,
      consistencyProof: this.consistencyProof(oldSize, newSize),
      checkpoint: Buffer.from(this.checkpoint(newSize)),
    });
  }

  /** Serves GET /checkpoint and /tile/… of this log's current tree. */
  handle(path: string): { status: number; body: Buffer | string } {
    if (path === 'checkpoint') return { status: 200, body: this.checkpoint() };
    if (path.startsWith('tile/')) {
      let t: Tile;
      try {
        t = parseTilePath(path);
      } catch {
        return { status: 404, body: 'not found\n' };
      }
      const b = this.tiles.get(`${t.level}/${t.index}`);
      if (t.level < 0 || b === undefined || b.length < t.width * 32) return { status: 404, body: 'not found\n' };
      return { status: 200, body: b.subarray(0, t.width * 32) };
    }
    return { status: 404, body: 'not found\n' };
  }
}

/** Serves logs over HTTP: `views` maps a URL prefix ('' for the root) to the log shown under it. */
export async function serveLogs(views: Record<string, () => FakeLog>): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/^\/+/, '');
    requests.push(path);
    const prefix = Object.keys(views)
      .filter((p) => p === '' || path.startsWith(p + '/'))
      .sort((a, b) => b.length - a.length)[0];
    if (prefix === undefined) {
      res.writeHead(404).end();
      return;
    }
    const r = views[prefix]!().handle(prefix === '' ? path : path.slice(prefix.length + 1));
    res.writeHead(r.status, { 'content-type': r.status === 200 && path.endsWith('checkpoint') ? 'text/plain; charset=utf-8' : 'application/octet-stream' });
    res.end(r.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
