/**
 * The package index's map function (docs/index-format.md, "Map keys"): the five map keys of an entry, each
 * SHA-256 of a distinct ASCII domain prefix ending in NUL, then the key material:
 *
 *   package    "pkglog/index/v1/package\0"   ‖ ecosystem "\n" name
 *   version    "pkglog/index/v1/version\0"   ‖ ecosystem "\n" name "\n" version
 *   file       "pkglog/index/v1/file\0"      ‖ ecosystem "\n" name "\n" version "\n" filename
 *   sha256     "pkglog/index/v1/sha256\0"    ‖ the artifact's 32-byte SHA-256
 *   publisher  "pkglog/index/v1/publisher\0" ‖ the publisher's 32-byte Ed25519 key
 *
 * (UTF-8; the text fields never contain "\n", core/entry.ts refuses whitespace.) A key's value is the ordered list of
 * input-log indices of the entries that map to it (core/index-list.ts commits to it).
 */
import { hash as oneShot } from 'node:crypto';
import type { Hash } from './types.ts';
import type { Entry } from './entry.ts';
import { validateArtifact } from './entry.ts';
import { fail } from './errors.ts';
import { decodeBase64, decodeHex } from './encoding.ts';

export const INDEX_KEY_KINDS = ['package', 'version', 'file', 'sha256', 'publisher'] as const;
export type IndexKeyKind = (typeof INDEX_KEY_KINDS)[number];

/** What a client asks the index about. */
export type IndexQuery =
  | { kind: 'package'; ecosystem: string; name: string }
  | { kind: 'version'; ecosystem: string; name: string; version: string }
  | { kind: 'file'; ecosystem: string; name: string; version: string; filename: string }
  | { kind: 'sha256'; sha256: string }
  | { kind: 'publisher'; publisherKey: Buffer };

const PREFIX: Record<IndexKeyKind, Buffer> = Object.fromEntries(
  INDEX_KEY_KINDS.map((k) => [k, Buffer.from(`pkglog/index/v1/${k}\0`, 'ascii')]),
) as Record<IndexKeyKind, Buffer>;

function keyHash(kind: IndexKeyKind, material: Uint8Array): Hash {
  return oneShot('sha256', Buffer.concat([PREFIX[kind], material]), 'buffer') as Hash;
}

/** The key material of a query (the bytes after the prefix). Validates the fields; throws 'malformed'. */
export function indexKeyMaterial(q: IndexQuery): Buffer {
  switch (q?.kind) {
    case 'package':
    case 'version':
    case 'file': {
      // Reuse the artifact grammar with placeholders for the fields the query does not have.
      const version = q.kind === 'package' ? 'x' : q.version;
      const filename = q.kind === 'file' ? q.filename : 'x';
      validateArtifact({ ecosystem: q.ecosystem, name: q.name, version, filename, sha256: '0'.repeat(64) });
      const fields = q.kind === 'package' ? [q.ecosystem, q.name] : q.kind === 'version' ? [q.ecosystem, q.name, q.version] : [q.ecosystem, q.name, q.version, q.filename];
      return Buffer.from(fields.join('\n'), 'utf8');
    }
    case 'sha256':
      return decodeHex(q.sha256, 'sha256', 32);
    case 'publisher':
      if (!(q.publisherKey instanceof Uint8Array) || q.publisherKey.length !== 32) fail('malformed', 'publisher key must be 32 bytes');
      return Buffer.from(q.publisherKey);
    default:
      return fail('malformed', `unknown index query kind ${JSON.stringify((q as { kind?: unknown })?.kind)}`);
  }
}

/** The map key of a query. */
export function indexKey(q: IndexQuery): Hash {
  return keyHash(q.kind, indexKeyMaterial(q));
}

/** The five queries an entry answers, in the order of INDEX_KEY_KINDS. */
export function entryQueries(e: Entry): IndexQuery[] {
  return [
    { kind: 'package', ecosystem: e.ecosystem, name: e.name },
    { kind: 'version', ecosystem: e.ecosystem, name: e.name, version: e.version },
    { kind: 'file', ecosystem: e.ecosystem, name: e.name, version: e.version, filename: e.filename },
    { kind: 'sha256', sha256: e.sha256 },
    { kind: 'publisher', publisherKey: e.publisherKey },
  ];
}

/**
 * The map function: the five map keys of an entry (distinct, by their prefixes), in the order of INDEX_KEY_KINDS.
 * The entry's fields are taken as valid (a decoded leaf or a validated submission): the same bytes as indexKey.
 */
export function entryIndexKeys(e: Entry): Hash[] {
  const pkg = `${e.ecosystem}\n${e.name}`;
  const version = `${pkg}\n${e.version}`;
  return [
    keyHash('package', Buffer.from(pkg, 'utf8')),
    keyHash('version', Buffer.from(version, 'utf8')),
    keyHash('file', Buffer.from(`${version}\n${e.filename}`, 'utf8')),
    keyHash('sha256', Buffer.from(e.sha256, 'hex')),
    keyHash('publisher', e.publisherKey),
  ];
}

/** True when the entry maps to `key` (a bundle's entries must). */
export function entryHasIndexKey(e: Entry, key: Uint8Array): boolean {
  return entryIndexKeys(e).some((k) => k.equals(key));
}

/** One key's new indices in a batch, ascending. */
export interface IndexKeyAppend {
  key: Hash;
  indices: number[];
}

/**
 * The map function over a batch: entries with their input-log indices (ascending, as sequenced) → for each key
 * touched, the indices to append, keys in first-touched order. Throws 'malformed' when the indices do not increase.
 */
export function mapBatch(entries: Array<{ index: number; entry: Entry }>): IndexKeyAppend[] {
  const byKey = new Map<string, IndexKeyAppend>();
  let prev = -1;
  for (const { index, entry } of entries) {
    if (!Number.isSafeInteger(index) || index <= prev) fail('malformed', 'batch indices must be increasing non-negative integers');
    prev = index;
    for (const key of entryIndexKeys(entry)) {
      const k = key.toString('latin1');
      let a = byKey.get(k);
      if (a === undefined) byKey.set(k, (a = { key, indices: [] }));
      a.indices.push(index);
    }
  }
  return [...byKey.values()];
}

/** Parses the base64 publisher key of a query (GET /v1/index/publisher/<base64>). Throws 'malformed'. */
export function publisherQuery(base64Key: string): IndexQuery {
  return { kind: 'publisher', publisherKey: decodeBase64(base64Key, 'publisher key', 32) };
}
