/**
 * A naive, independent package index written from docs/index-format.md (not from core's code): the map keys by
 * hashing the documented bytes, a key's history by scanning the log field by field, the list value from the RFC 6962
 * reference tree over the pages, the map root from a from-scratch recursive trie, the revision leaf byte by byte.
 * Test-only.
 */
import { createHash } from 'node:crypto';
import type { Entry } from '../../core/entry.ts';
import type { IndexQuery } from '../../core/index-keys.ts';
import { ReferenceTree } from './reference-tree.ts';

export const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** SHA-256("pkglog/index/v1/<kind>\0" ‖ material). */
export function naiveKey(q: IndexQuery): Buffer {
  const prefix = Buffer.from(`pkglog/index/v1/${q.kind}\u0000`, 'ascii');
  switch (q.kind) {
    case 'package':
      return sha(prefix, Buffer.from(`${q.ecosystem}\n${q.name}`));
    case 'version':
      return sha(prefix, Buffer.from(`${q.ecosystem}\n${q.name}\n${q.version}`));
    case 'file':
      return sha(prefix, Buffer.from(`${q.ecosystem}\n${q.name}\n${q.version}\n${q.filename}`));
    case 'sha256':
      return sha(prefix, Buffer.from(q.sha256, 'hex'));
    case 'publisher':
      return sha(prefix, q.publisherKey);
  }
}

/** Does the entry answer the query (field comparison, no hashing)? */
export function naiveMatches(e: Entry, q: IndexQuery): boolean {
  switch (q.kind) {
    case 'package':
      return e.ecosystem === q.ecosystem && e.name === q.name;
    case 'version':
      return e.ecosystem === q.ecosystem && e.name === q.name && e.version === q.version;
    case 'file':
      return e.ecosystem === q.ecosystem && e.name === q.name && e.version === q.version && e.filename === q.filename;
    case 'sha256':
      return e.sha256 === q.sha256;
    case 'publisher':
      return e.publisherKey.equals(q.publisherKey);
  }
}

/** The indices (among the first `size`) of the entries answering the query, by a linear scan. */
export function naiveHistory(entries: Entry[], q: IndexQuery, size = entries.length): number[] {
  const out: number[] = [];
  for (let i = 0; i < size; i++) if (naiveMatches(entries[i]!, q)) out.push(i);
  return out;
}

/** The five queries of an entry. */
export function naiveQueries(e: Entry): IndexQuery[] {
  return [
    { kind: 'package', ecosystem: e.ecosystem, name: e.name },
    { kind: 'version', ecosystem: e.ecosystem, name: e.name, version: e.version },
    { kind: 'file', ecosystem: e.ecosystem, name: e.name, version: e.version, filename: e.filename },
    { kind: 'sha256', sha256: e.sha256 },
    { kind: 'publisher', publisherKey: e.publisherKey },
  ];
}

/** The map value of a non-empty list: pages of 64 indices (8-byte BE each), RFC 6962 tree over the pages. */
export function naiveValue(indices: number[]): Buffer {
  const pages: Buffer[] = [];
  for (let i = 0; i < indices.length; i += 64) {
    const b = Buffer.alloc(8 * Math.min(64, indices.length - i));
    indices.slice(i, i + 64).forEach((x, j) => b.writeBigUInt64BE(BigInt(x), 8 * j));
    pages.push(b);
  }
  const root = ReferenceTree.fromEntries(pages).root();
  const count = Buffer.alloc(8);
  count.writeBigUInt64BE(BigInt(indices.length));
  return sha(Buffer.from('pkglog/index/v1/value\u0000', 'ascii'), count, root);
}

function bitOf(key: Buffer, i: number): number {
  return (key[Math.floor(i / 8)]! >> (7 - (i % 8))) & 1;
}

/** The map root of key → value pairs (hex keys): a binary trie with single-child nodes removed, hashed recursively. */
export function naiveTrie(pairs: Map<string, Buffer>): Buffer {
  const keys = [...pairs.keys()].map((k) => Buffer.from(k, 'hex'));
  if (keys.length === 0) return sha();
  const rec = (ks: Buffer[], depth: number): Buffer => {
    if (ks.length === 1) return sha(Buffer.from([0]), ks[0]!, pairs.get(hex(ks[0]!))!);
    // Skip the bits on which all keys agree (those nodes would have a single child).
    let d = depth;
    while (ks.every((k) => bitOf(k, d) === bitOf(ks[0]!, d))) d++;
    const left = ks.filter((k) => bitOf(k, d) === 0);
    const right = ks.filter((k) => bitOf(k, d) === 1);
    return sha(Buffer.from([1, d]), rec(left, d + 1), rec(right, d + 1));
  };
  return rec(keys, 0);
}

/** The map root of the index over the first `size` entries, from scratch. */
export function naiveMapRoot(entries: Entry[], size = entries.length): Buffer {
  const lists = new Map<string, number[]>();
  for (let i = 0; i < size; i++) {
    for (const q of naiveQueries(entries[i]!)) {
      const k = hex(naiveKey(q));
      const l = lists.get(k) ?? [];
      l.push(i);
      lists.set(k, l);
    }
  }
  return naiveTrie(new Map([...lists].map(([k, l]) => [k, naiveValue(l)])));
}

/** 0x01 ‖ revision (8) ‖ len(origin) ‖ origin ‖ input size (8) ‖ input root ‖ map root. */
export function naiveRevisionLeaf(revision: number, origin: string, size: number, inputRoot: Buffer, mapRoot: Buffer): Buffer {
  const r = Buffer.alloc(8);
  r.writeBigUInt64BE(BigInt(revision));
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(size));
  const o = Buffer.from(origin, 'utf8');
  return Buffer.concat([Buffer.from([1]), r, Buffer.from([o.length]), o, s, inputRoot, mapRoot]);
}

export { bitOf };
