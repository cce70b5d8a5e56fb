/**
 * A test double of a pkglog log with a verifiable index, on 127.0.0.1 (port 0): the input log (checkpoint signed by
 * its own key and cosigned by the fixture's witnesses, tlog-tiles), the index routes (`GET /v1/index/...`, bundles
 * from test/support/index-fixture.ts, paginated by cursor) and the output log (`/v1/index/log/checkpoint`, its
 * tiles). Entries carry real publisher and registry signatures. `tamper` sits between the client and the log: it
 * may rewrite any answer (drop an entry, answer another package's bundle, flip a byte, …); `outputSize` makes the
 * index answer with an older revision.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { encodeLeaf, publisherMessage, registryMessage, type Entry } from '../../core/entry.ts';
import { keyPairFromSeed, ed25519Sign } from '../../core/ed25519.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import { ed25519Signer, formatVerifierKey, signNote } from '../../core/note.ts';
import { parsePolicy, type Policy } from '../../core/policy.ts';
import { parseTilePath, formatEntryBundle, TILE_WIDTH } from '../../core/tiles.ts';
import { publisherQuery, type IndexQuery } from '../../core/index-keys.ts';
import { parseIndexCursor, type IndexCursor } from '../../core/index-bundle.ts';
import { parseIndexRevision, formatIndexRevision } from '../../core/index-revision.ts';
import { IndexFixture, POLICY_TEXT, WITNESSES, OUTPUT_ORIGIN, OUTPUT_SIGNER, INPUT_ORIGIN } from './index-fixture.ts';
import { ReferenceTree } from './reference-tree.ts';

export { INPUT_ORIGIN, OUTPUT_ORIGIN };
const seed = (s: string) => createHash('sha256').update(s).digest();
export const INPUT_SIGNER = ed25519Signer(INPUT_ORIGIN, seed('input log'));
export const INPUT_VKEY = formatVerifierKey(INPUT_ORIGIN, 1, INPUT_SIGNER.publicKey);
export const REGISTRY = keyPairFromSeed(seed('registry pypi.org'));
export const REGISTRY_KEY_ARG = `pypi.org=${REGISTRY.publicKey.toString('base64')}`;
/** Publisher key pairs by number. */
export const publisher = (n: number) => keyPairFromSeed(seed(`publisher key ${n}`));

/** The policy for both logs: the input log, the index's output log, both witnesses. */
export function policyText(url?: string): string {
  return `log ${INPUT_VKEY}${url ? ` ${url}` : ''}\n${POLICY_TEXT}`;
}
export const DOUBLE_POLICY: Policy = parsePolicy(policyText());
/** The index's output log key (what `pkglog evidence verify --log-vkey` takes for index evidence). */
export const OUTPUT_VKEY = formatVerifierKey(OUTPUT_ORIGIN, 1, OUTPUT_SIGNER.publicKey);

export interface EntrySpec {
  ecosystem?: string;
  name: string;
  version: string;
  filename: string;
  content?: string;
  publisher: number;
}

/** An entry with real publisher and registry signatures. */
export function signedEntry(s: EntrySpec, time = 1_767_225_600_000): Entry {
  const pub = publisher(s.publisher);
  const a = { ecosystem: s.ecosystem ?? 'pypi', name: s.name, version: s.version, filename: s.filename, sha256: seed(`content ${s.content ?? s.filename}`).toString('hex') };
  const publisherSignature = ed25519Sign(pub, publisherMessage(a));
  return {
    ...a,
    publisherKey: pub.publicKey,
    publisherSignature,
    registryName: 'pypi.org',
    registrySignature: ed25519Sign(REGISTRY, registryMessage(a, pub.publicKey, publisherSignature)),
    integratedTime: time,
  };
}

export type Tamper = (path: string, body: Buffer, double: IndexDouble) => Buffer | undefined;

/** Parses an index route below /v1/index/ into the query (undefined: not an index route). */
export function indexRouteQuery(rest: string): IndexQuery | undefined {
  const parts = rest.split('/').map(decodeURIComponent);
  if (parts[0] === 'sha256' && parts.length === 2) return { kind: 'sha256', sha256: parts[1]! };
  if (parts[0] === 'publisher' && parts.length === 2) return publisherQuery(Buffer.from(parts[1]!, 'base64url').toString('base64'));
  if (parts.length === 2) return { kind: 'package', ecosystem: parts[0]!, name: parts[1]! };
  if (parts.length === 3) return { kind: 'version', ecosystem: parts[0]!, name: parts[1]!, version: parts[2]! };
  if (parts.length === 4) return { kind: 'file', ecosystem: parts[0]!, name: parts[1]!, version: parts[2]!, filename: parts[3]! };
  return undefined;
}

function hashTile(tree: ReferenceTree, level: number, index: number, width: number): Buffer | undefined {
  const span = TILE_WIDTH ** level;
  const out: Buffer[] = [];
  for (let j = index * TILE_WIDTH; j < index * TILE_WIDTH + width; j++) {
    if ((j + 1) * span > tree.size) return undefined;
    out.push(tree.mth(j * span, (j + 1) * span));
  }
  return Buffer.concat(out);
}

export class IndexDouble {
  readonly fixture = new IndexFixture();
  url = '';
  /** Rewrites answers (the man in the middle). */
  tamper: Tamper | undefined;
  /** Serve the index as of this many revisions (default: all). */
  outputSize: number | undefined;
  /** Input-log size of the served input checkpoint (default: all entries). */
  inputSize: number | undefined;
  readonly requests: string[] = [];
  private server: Server | undefined;
  private inputCheckpoints = new Map<number, string>();

  addBatch(specs: EntrySpec[]): Entry[] {
    const entries = specs.map((s, i) => signedEntry(s, 1_767_225_600_000 + (this.fixture.entries.length + i) * 1000));
    this.fixture.addBatch(entries);
    return entries;
  }

  /**
   * Makes the index lie: revision `r`'s leaf gets another map root (as an index whose map is not built from the log),
   * and the output log is re-signed over the changed leaves. Returns the false map root.
   */
  corruptRevision(r: number, mapRoot = createHash('sha256').update(`wrong map root ${r}`).digest()): Buffer {
    const f = this.fixture as unknown as { revisionLeaves: Buffer[]; outputTree: ReferenceTree; checkpoints: Map<number, string> };
    const rev = parseIndexRevision(f.revisionLeaves[r]!);
    f.revisionLeaves[r] = formatIndexRevision({ ...rev, mapRoot });
    f.outputTree = ReferenceTree.fromEntries(f.revisionLeaves);
    f.checkpoints.clear();
    return mapRoot;
  }

  inputTree(): ReferenceTree {
    return ReferenceTree.fromEntries(this.fixture.leaves);
  }

  inputCheckpoint(size = this.inputSize ?? this.fixture.leaves.length): string {
    let c = this.inputCheckpoints.get(size);
    if (c === undefined) {
      const text = formatCheckpoint({ origin: INPUT_ORIGIN, treeSize: size, rootHash: this.inputTree().root(size), extensions: [] });
      c = signNote(text, [INPUT_SIGNER, ...WITNESSES]);
      this.inputCheckpoints.set(size, c);
    }
    return c;
  }

  /** What the log answers for `path` (status, body), before tampering. */
  answer(path: string, search: string): { status: number; body: Buffer } {
    const notFound = { status: 404, body: Buffer.from('{"error":"not_found","message":"no such object"}') };
    if (path === '/checkpoint') return { status: 200, body: Buffer.from(this.inputCheckpoint()) };
    if (path.startsWith('/tile/')) return this.tile(this.fixture.leaves.slice(0, this.inputSize ?? this.fixture.leaves.length), path.slice(1)) ?? notFound;
    if (path === '/v1/index/log/checkpoint') return { status: 200, body: Buffer.from(this.fixture.checkpoint(this.outputSize ?? this.fixture.outputSize)) };
    if (path.startsWith('/v1/index/log/tile/')) return this.tile(this.fixture.revisionLeaves.slice(0, this.outputSize ?? this.fixture.outputSize), path.slice('/v1/index/log/'.length)) ?? notFound;
    if (path.startsWith('/v1/index/')) {
      let query: IndexQuery | undefined;
      let cursor: IndexCursor | undefined;
      try {
        query = indexRouteQuery(path.slice('/v1/index/'.length));
        const c = new URLSearchParams(search).get('cursor');
        if (c !== null) cursor = parseIndexCursor(c);
      } catch {
        return { status: 400, body: Buffer.from('{"error":"malformed","message":"bad query"}') };
      }
      if (query === undefined) return notFound;
      return { status: 200, body: Buffer.from(this.fixture.bundleText(query, cursor, this.outputSize ?? this.fixture.outputSize)) };
    }
    return notFound;
  }

  private tile(leaves: Buffer[], path: string): { status: number; body: Buffer } | undefined {
    let t;
    try {
      t = parseTilePath(path);
    } catch {
      return undefined;
    }
    if (t.level === -1) {
      const lo = t.index * TILE_WIDTH;
      if (lo + t.width > leaves.length) return undefined;
      return { status: 200, body: formatEntryBundle(leaves.slice(lo, lo + t.width)) };
    }
    const body = hashTile(ReferenceTree.fromEntries(leaves), t.level, t.index, t.width);
    return body === undefined ? undefined : { status: 200, body };
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      this.requests.push(u.pathname + u.search);
      let { status, body } = this.answer(u.pathname, u.search);
      if (status === 200 && this.tamper !== undefined) body = this.tamper(u.pathname + u.search, body, this) ?? body;
      res.writeHead(status, { 'content-type': u.pathname.includes('/v1/index/') && !u.pathname.includes('/log/') ? 'application/json' : 'text/plain' });
      res.end(body);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (this.server !== undefined) await new Promise((r) => this.server!.close(r));
  }
}
