/**
 * Publisher key continuity (trust on first use, like ssh): which publisher keys signed a package's entries in the
 * log, and when each first appeared. Entries come from the log's lookup API; each is decoded from its leaf bytes,
 * checked to belong to the package, and its publisher signature verified (entries failing that are counted, not used).
 */
import { decodeBase64, encodeBase64 } from '../core/encoding.ts';
import { decodeLeaf, publisherMessage, type Entry } from '../core/entry.ts';
import { ed25519Verify } from '../core/ed25519.ts';
import { leafHash } from '../core/hash.ts';
import type { LogClient } from './http.ts';

export interface KeyInfo {
  key: string;
  firstIndex: number;
  firstTime: number;
  firstVersion: string;
  entries: number;
}

export interface KeyHistory {
  keys: KeyInfo[];
  /** Lookup results that were not valid signed entries of this package. */
  rejected: number;
}

/** Decodes one lookup/entry JSON object into (index, entry); throws on anything inconsistent. */
export function entryFromJSON(o: Record<string, unknown>): { index: number; entry: Entry; leaf: Buffer } {
  if (typeof o.index !== 'number' || !Number.isSafeInteger(o.index) || o.index < 0) throw new Error('entry has no valid index');
  const leaf = decodeBase64(o.leaf as string, 'entry leaf');
  if (typeof o.leafHash === 'string' && !decodeBase64(o.leafHash, 'leafHash', 32).equals(leafHash(leaf))) {
    throw new Error('entry leafHash does not match its leaf');
  }
  return { index: o.index, entry: decodeLeaf(leaf), leaf };
}

/**
 * A package's entries from the log's lookup API, each decoded from its leaf; `rejected` counts the results that were
 * not (consistent) entries of this package.
 */
export async function packageEntries(log: LogClient, ecosystem: string, name: string): Promise<{ entries: Array<{ index: number; entry: Entry; leaf: Buffer }>; rejected: number }> {
  const raw = await log.lookup(`${encodeURIComponent(ecosystem)}/${encodeURIComponent(name)}`);
  const entries: Array<{ index: number; entry: Entry; leaf: Buffer }> = [];
  let rejected = 0;
  for (const o of raw) {
    let x;
    try {
      x = entryFromJSON(o);
    } catch {
      rejected++;
      continue;
    }
    if (x.entry.ecosystem === ecosystem && x.entry.name === name) entries.push(x);
    else rejected++;
  }
  return { entries, rejected };
}

export async function publisherKeyHistory(log: LogClient, ecosystem: string, name: string): Promise<KeyHistory> {
  const found = await packageEntries(log, ecosystem, name);
  const byKey = new Map<string, KeyInfo>();
  let rejected = found.rejected;
  for (const { index, entry } of found.entries) {
    if (!ed25519Verify(entry.publisherKey, publisherMessage(entry), entry.publisherSignature)) {
      rejected++;
      continue;
    }
    const key = encodeBase64(entry.publisherKey);
    const k = byKey.get(key);
    if (k === undefined) {
      byKey.set(key, { key, firstIndex: index, firstTime: entry.integratedTime, firstVersion: entry.version, entries: 1 });
    } else {
      k.entries++;
      if (index < k.firstIndex) Object.assign(k, { firstIndex: index, firstTime: entry.integratedTime, firstVersion: entry.version });
    }
  }
  return { keys: [...byKey.values()].sort((a, b) => a.firstIndex - b.firstIndex), rejected };
}

/**
 * The key history of entries already proven to be the package's complete history (the verifiable index): entries
 * whose publisher signature does not verify are counted as rejected, as for lookups.
 */
export function keyHistoryFromEntries(entries: Array<{ index: number; entry: Entry }>): KeyHistory {
  const byKey = new Map<string, KeyInfo>();
  let rejected = 0;
  for (const { index, entry } of entries) {
    if (!ed25519Verify(entry.publisherKey, publisherMessage(entry), entry.publisherSignature)) {
      rejected++;
      continue;
    }
    const key = encodeBase64(entry.publisherKey);
    const k = byKey.get(key);
    if (k === undefined) byKey.set(key, { key, firstIndex: index, firstTime: entry.integratedTime, firstVersion: entry.version, entries: 1 });
    else k.entries++;
  }
  return { keys: [...byKey.values()].sort((a, b) => a.firstIndex - b.firstIndex), rejected };
}

export function describeKey(k: KeyInfo): string {
  return `${k.key} first used for version ${k.firstVersion} (entry ${k.firstIndex}, ${new Date(k.firstTime).toISOString()}; ${k.entries} entr${k.entries === 1 ? 'y' : 'ies'})`;
}
