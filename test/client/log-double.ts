/**
 * A pkglog log double built from core only (entries, tiles via core/integrate.ts, notes, cosignatures), served over
 * node:http with the log server's read API, plus in-process witnesses with controllable clocks that cosign its
 * checkpoints and serve /v1/history and /v1/gossip. Lets client tests rewrite history (forks), inject entries
 * behind the log's back, and pick cosignature timestamps (stale checkpoints, min-age).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { integrate } from '../../core/integrate.ts';
import { parseTilePath, formatEntryBundle, TILE_WIDTH, type Tile } from '../../core/tiles.ts';
import { leafHash, EMPTY_ROOT } from '../../core/hash.ts';
import { hashRanges, planConsistencyProof, planInclusionProof, planRoot } from '../../core/merkle.ts';
import { nodeHashFromTiles } from '../../core/tiles.ts';
import { ed25519Signer, formatVerifierKey, signNote, SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1, parseSignedNote, formatSignedNote, signText, type Signer } from '../../core/note.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import { formatTlogProof } from '../../core/tlog-proof.ts';
import { encodeLeaf, decodeLeaf, formatEntryJSON, type Entry, type Artifact } from '../../core/entry.ts';
import { encodeBase64 } from '../../core/encoding.ts';
import { keyPairFromSeed, ed25519Sign, type Ed25519KeyPair } from '../../core/ed25519.ts';
import { publisherMessage, registryMessage } from '../../core/entry.ts';
import type { Hash } from '../../core/types.ts';

export function seed(label: string): Buffer {
  return createHash('sha256').update(label).digest();
}

export const REGISTRY_NAME = 'pypi.org';
export const REGISTRY = keyPairFromSeed(seed('registry'));
export const PUBLISHER = keyPairFromSeed(seed('publisher'));
export const REGISTRY_VKEY = formatVerifierKey(REGISTRY_NAME, SIG_TYPE_ED25519, REGISTRY.publicKey);

export function fileSha(content: string): string {
  return createHash('sha256').update(content).digest('hex');
}

export function makeEntry(a: Artifact, time: number, publisher: Ed25519KeyPair = PUBLISHER, registry = REGISTRY): Entry {
  const publisherSignature = ed25519Sign(publisher, publisherMessage(a));
  const registrySignature = ed25519Sign(registry, registryMessage(a, publisher.publicKey, publisherSignature));
  return { ...a, publisherKey: publisher.publicKey, publisherSignature, registryName: REGISTRY_NAME, registrySignature, integratedTime: time };
}

export class TestWitness {
  readonly signer: Signer;
  readonly vkey: string;
  clock: number; // seconds
  /** Every checkpoint this witness cosigned, oldest first: [timestamp, signed note with log sig + this cosig]. */
  readonly history: Array<[number, string]> = [];
  constructor(readonly name: string, clock: number) {
    this.clock = clock;
    this.signer = cosignatureSigner(name, seed(`witness ${name}`), () => this.clock);
    this.vkey = formatVerifierKey(name, SIG_TYPE_COSIGNATURE_V1, this.signer.publicKey);
  }
}

export class LogDouble {
  readonly origin: string;
  readonly signer: Signer;
  readonly vkey: string;
  leaves: Buffer[] = [];
  private hashes: Hash[] = [];
  private tiles = new Map<string, Buffer>();
  witnesses: TestWitness[] = [];
  /** Signed checkpoints published, by size (the latest one for each size). */
  published = new Map<number, string>();
  latest = '';
  url = '';
  private server?: Server;
  /** Serve corrupted hash tiles (for audit tests). */
  corruptTile?: string;

  constructor(origin = 'example.test/log') {
    this.origin = origin;
    this.signer = ed25519Signer(origin, seed(`log ${origin}`));
    this.vkey = formatVerifierKey(origin, SIG_TYPE_ED25519, this.signer.publicKey);
    this.publish();
  }

  get size(): number {
    return this.leaves.length;
  }

  private readTile = (t: Tile): Buffer => {
    const b = this.tiles.get(`${t.level}/${t.index}`)!;
    return b.subarray(0, t.width * 32);
  };

  /** Appends leaves and integrates them (no checkpoint yet: call publish()). */
  appendLeaves(leaves: Buffer[]): number {
    const first = this.size;
    const hs = leaves.map((l) => leafHash(l));
    const r = integrate(this.size, this.readTile, hs);
    for (const { tile, data } of r.tiles) this.tiles.set(`${tile.level}/${tile.index}`, data);
    this.leaves.push(...leaves);
    this.hashes.push(...hs);
    return first;
  }

  append(entries: Entry[]): number {
    return this.appendLeaves(entries.map((e) => encodeLeaf(e)));
  }

  /** Rewrites history: replaces leaf i and recomputes every tile (the old checkpoints stay signed: a fork). */
  rewrite(i: number, leaf: Buffer): void {
    const leaves = this.leaves;
    this.leaves = [];
    this.hashes = [];
    this.tiles = new Map();
    leaves[i] = leaf;
    this.appendLeaves(leaves);
  }

  rootAt(size: number): Hash {
    if (size === 0) return EMPTY_ROOT;
    return hashRanges([planRoot(size)], (n) => nodeHashFromTiles(n, size, this.readTile))[0]!;
  }

  /** Signs the current tree and has every witness (or the given ones) cosign it at its clock. */
  publish(cosigners: TestWitness[] = this.witnesses): string {
    const text = formatCheckpoint({ origin: this.origin, treeSize: this.size, rootHash: this.rootAt(this.size), extensions: [] });
    const logSigned = signNote(text, [this.signer]);
    const note = parseSignedNote(logSigned);
    for (const w of cosigners) {
      const sig = signText(text, w.signer);
      note.signatures.push(sig);
      w.history.push([w.clock, formatSignedNote({ text, signatures: [note.signatures[0]!, sig] })]);
    }
    this.latest = formatSignedNote(note);
    this.published.set(this.size, this.latest);
    return this.latest;
  }

  inclusionProof(index: number, size = this.size): Hash[] {
    return hashRanges(planInclusionProof(index, size), (n) => nodeHashFromTiles(n, size, this.readTile));
  }

  consistencyProof(m: number, n = this.size): Hash[] {
    if (m === 0 || m === n) return [];
    return hashRanges(planConsistencyProof(m, n), (node) => nodeHashFromTiles(node, n, this.readTile));
  }

  /** The tlog-proof for entry i against the latest published checkpoint. */
  tlogProof(i: number): string {
    const size = Number(this.latest.split('\n')[1]);
    return formatTlogProof({ extra: this.leaves[i]!, index: i, inclusionProof: this.inclusionProof(i, size), checkpoint: this.latest });
  }

  entryJSON(i: number): Record<string, unknown> {
    let fields: Record<string, unknown> = {};
    try {
      fields = formatEntryJSON(decodeLeaf(this.leaves[i]!));
    } catch {
      // undecodable injected leaf
    }
    return { ...fields, index: i, leaf: encodeBase64(this.leaves[i]!), leafHash: encodeBase64(this.hashes[i]!) };
  }

  private lookup(pred: (e: Entry) => boolean): Record<string, unknown> {
    const out = [];
    for (let i = 0; i < this.size; i++) {
      try {
        if (pred(decodeLeaf(this.leaves[i]!))) out.push(this.entryJSON(i));
      } catch {
        // skip
      }
    }
    return { entries: out };
  }

  handle(method: string, path: string, query: URLSearchParams, body: string): { status: number; body: string | Buffer; json?: boolean } {
    const size = Number(this.latest.split('\n')[1]);
    const json = (o: unknown) => ({ status: 200, body: JSON.stringify(o), json: true });
    const nf = { status: 404, body: 'not found\n' };
    let m: RegExpExecArray | null;
    if (path === 'checkpoint') return { status: 200, body: this.latest };
    if (path === 'vkey') return { status: 200, body: this.vkey + '\n' };
    if (path.startsWith('tile/')) {
      let t: Tile;
      try {
        t = parseTilePath(path);
      } catch {
        return nf;
      }
      if (t.level < 0) {
        const start = t.index * TILE_WIDTH;
        if (start + t.width > this.size) return nf;
        return { status: 200, body: formatEntryBundle(this.leaves.slice(start, start + t.width)) };
      }
      const b = this.tiles.get(`${t.level}/${t.index}`);
      if (b === undefined || b.length < t.width * 32) return nf;
      const data = Buffer.from(b.subarray(0, t.width * 32));
      if (this.corruptTile === path) data[0]! ^= 1;
      return { status: 200, body: data };
    }
    if (path === 'v1/proof/inclusion') {
      const index = Number(query.get('index'));
      const s = Number(query.get('size'));
      if (!(index < s && s <= this.size)) return { status: 400, body: 'bad' };
      return json({ index, treeSize: s, proof: this.inclusionProof(index, s).map(encodeBase64) });
    }
    if (path === 'v1/proof/consistency') {
      const old = Number(query.get('old'));
      const s = Number(query.get('size'));
      if (!(old <= s && s <= this.size)) return { status: 400, body: 'bad' };
      return json({ old, treeSize: s, proof: this.consistencyProof(old, s).map(encodeBase64) });
    }
    if ((m = /^v1\/entries\/(\d+)\/proof$/.exec(path))) {
      const i = Number(m[1]);
      return i < size ? { status: 200, body: this.tlogProof(i) } : nf;
    }
    if ((m = /^v1\/entries\/(\d+)$/.exec(path))) {
      const i = Number(m[1]);
      return i < size ? json(this.entryJSON(i)) : nf;
    }
    if ((m = /^v1\/lookup\/sha256\/([0-9a-f]{64})$/.exec(path))) {
      const sha = m[1]!;
      return json(this.lookup((e) => e.sha256 === sha));
    }
    if ((m = /^v1\/lookup\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(path))) {
      const [eco, name, version] = [m[1]!, decodeURIComponent(m[2]!), m[3] && decodeURIComponent(m[3])];
      return json(this.lookup((e) => e.ecosystem === eco && e.name === name && (version === undefined || e.version === version)));
    }
    if ((m = /^v1\/checkpoints\/(\d+)$/.exec(path))) {
      const cp = this.published.get(Number(m[1]));
      return cp ? { status: 200, body: cp } : nf;
    }
    // Witnesses: /w/<name>/v1/history/<hex>?before=T and /w/<name>/v1/gossip
    if ((m = /^w\/([^/]+)\/v1\/history\/([0-9a-f]{64})$/.exec(path))) {
      const w = this.witnesses.find((x) => encodeURIComponent(x.name) === m![1]);
      if (!w) return nf;
      const before = Number(query.get('before'));
      const h = w.history.filter(([t]) => t <= before).at(-1);
      return h ? { status: 200, body: h[1] } : nf;
    }
    if ((m = /^w\/([^/]+)\/v1\/gossip$/.exec(path)) && method === 'POST') {
      const w = this.witnesses.find((x) => encodeURIComponent(x.name) === m![1]);
      if (!w) return nf;
      const last = w.history.at(-1)?.[1] ?? null;
      const same = last !== null && last.split('\n\n')[0] === body.split('\n\n')[0];
      return json({ result: same ? 'consistent' : 'unknown', reason: 'test double', witnessTreeSize: null, checkpoint: last });
    }
    return nf;
  }

  witnessURL(w: TestWitness): string {
    return `${this.url}/w/${encodeURIComponent(w.name)}`;
  }

  /** A tlog-policy text for this log and its witnesses, with `quorum` (default: all witnesses, or none). */
  policy(quorum?: string, withURLs = true): string {
    const lines = [`log ${this.vkey}${withURLs && this.url ? ` ${this.url}` : ''}`];
    this.witnesses.forEach((w, i) => lines.push(`witness w${i} ${w.vkey}${withURLs && this.url ? ` ${this.witnessURL(w)}` : ''}`));
    if (quorum !== undefined) lines.push(`quorum ${quorum}`);
    else if (this.witnesses.length === 0) lines.push('quorum none');
    else {
      lines.push(`group all-witnesses all ${this.witnesses.map((_, i) => `w${i}`).join(' ')}`);
      lines.push('quorum all-witnesses');
    }
    return lines.join('\n') + '\n';
  }

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const r = this.handle(req.method ?? 'GET', u.pathname.replace(/^\/+/, ''), u.searchParams, Buffer.concat(chunks).toString('utf8'));
        res.writeHead(r.status, { 'content-type': r.json ? 'application/json' : 'text/plain' }).end(r.body);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}
