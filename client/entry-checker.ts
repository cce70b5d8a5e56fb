/**
 * Per-entry checks of a replay (monitor and audit): decode, signatures (all or a random sample), the
 * one-artifact-per-file rule (through the on-disk FileIndex), and the monitor's watch list.
 */
import { decodeLeaf, fileKey, publisherMessage, registryMessage, type Entry } from '../core/entry.ts';
import { ed25519Verify } from '../core/ed25519.ts';
import { encodeBase64 } from '../core/encoding.ts';
import type { Hash } from '../core/types.ts';
import { FileIndex, fileKeyHash, type FileConflict } from './file-index.ts';
import type { RegistryKeys } from './trust.ts';
import { entrySummary } from './artifact.ts';

export interface EntryProblem {
  kind: 'malformed-entry' | 'bad-publisher-signature' | 'bad-registry-signature';
  index: number;
  message: string;
}

export interface WatchEvent {
  kind: 'watched-entry' | 'key-change';
  index: number;
  package: string;
  entry: Record<string, unknown>;
  message: string;
}

export interface KeySeen {
  key: string;
  firstIndex: number;
  firstTime: number;
  firstVersion: string;
}

export interface WatchConfig {
  packages: Set<string>; // "ecosystem/name"
  keys: Set<string>; // base64 publisher keys
  /** Keys seen so far per watched package (persisted by the monitor). */
  seen: Record<string, KeySeen[]>;
}

export interface CheckStats {
  entries: number;
  signaturesChecked: number;
  unknownRegistries: Record<string, number>;
}

export class EntryChecker {
  readonly problems: EntryProblem[] = [];
  readonly events: WatchEvent[] = [];
  readonly conflicts: FileConflict[] = [];
  readonly stats: CheckStats = { entries: 0, signaturesChecked: 0, unknownRegistries: {} };
  private readonly shaScratch = Buffer.alloc(32);

  constructor(
    private readonly index: FileIndex,
    private readonly registries: RegistryKeys,
    private readonly sampleRate = 1,
    private readonly watch?: WatchConfig,
    private readonly maxProblems = 1000,
  ) {}

  private problem(p: EntryProblem): void {
    if (this.problems.length < this.maxProblems) this.problems.push(p);
  }

  /** Checks one entry (the file-index batch is flushed when full). */
  check(index: number, leaf: Buffer, _hash: Hash): void {
    this.stats.entries++;
    let e: Entry;
    try {
      e = decodeLeaf(leaf);
    } catch (err) {
      this.problem({ kind: 'malformed-entry', index, message: `entry ${index} is not a valid pkglog leaf: ${(err as Error).message}` });
      return;
    }
    if (this.sampleRate >= 1 || Math.random() < this.sampleRate) this.checkSignatures(index, e);
    this.shaScratch.write(e.sha256, 'hex');
    this.index.add(fileKeyHash(fileKey(e)), this.shaScratch, index);
    if (this.index.full) this.flushIndex();
    if (this.watch !== undefined) this.checkWatch(index, e);
  }

  private checkSignatures(index: number, e: Entry): void {
    this.stats.signaturesChecked++;
    if (!ed25519Verify(e.publisherKey, publisherMessage(e), e.publisherSignature)) {
      this.problem({ kind: 'bad-publisher-signature', index, message: `entry ${index} (${e.ecosystem}/${e.name} ${e.version} ${e.filename}): publisher signature does not verify` });
      return;
    }
    const rk = this.registries.get(e.registryName);
    if (rk === undefined) {
      this.stats.unknownRegistries[e.registryName] = (this.stats.unknownRegistries[e.registryName] ?? 0) + 1;
      return;
    }
    if (!ed25519Verify(rk, registryMessage(e, e.publisherKey, e.publisherSignature), e.registrySignature)) {
      this.problem({ kind: 'bad-registry-signature', index, message: `entry ${index} (${e.ecosystem}/${e.name} ${e.version} ${e.filename}): countersignature of registry ${e.registryName} does not verify` });
    }
  }

  private checkWatch(index: number, e: Entry): void {
    const w = this.watch!;
    const pkg = `${e.ecosystem}/${e.name}`;
    const key = encodeBase64(e.publisherKey);
    const watchedPkg = w.packages.has(pkg);
    if (!watchedPkg && !w.keys.has(key)) return;
    const summary = entrySummary(e, index);
    const why = watchedPkg ? `watched package ${pkg}` : `watched key ${key}`;
    this.events.push({ kind: 'watched-entry', index, package: pkg, entry: summary, message: `entry ${index}: ${pkg} ${e.version} ${e.filename} (sha256 ${e.sha256}) signed by ${key} [${why}]` });
    if (!watchedPkg) return;
    const seen = (w.seen[pkg] ??= []);
    if (seen.some((k) => k.key === key)) return;
    if (seen.length > 0) {
      const before = seen.map((k) => `${k.key} (since entry ${k.firstIndex}, version ${k.firstVersion}, ${new Date(k.firstTime).toISOString()})`).join(', ');
      this.events.push({ kind: 'key-change', index, package: pkg, entry: summary, message: `publisher key change for ${pkg}: entry ${index} (version ${e.version}) is signed by new key ${key}; earlier keys: ${before}` });
    }
    seen.push({ key, firstIndex: index, firstTime: e.integratedTime, firstVersion: e.version });
  }

  /** Checks the buffered file identities against the on-disk index; conflicts accumulate in `conflicts`. */
  flushIndex(): void {
    for (const c of this.index.flush()) {
      if (this.conflicts.length < this.maxProblems) this.conflicts.push({ firstIndex: Math.min(c.firstIndex, c.index), index: Math.max(c.firstIndex, c.index) });
    }
  }
}
