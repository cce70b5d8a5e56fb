/**
 * `pkglog verify-lock FILE`: every artifact a lockfile pins (client/lockfile.ts) must be in the log under that
 * package and version with that digest (sha256, or npm's sha512 through the entry's native digest, leaf version 2),
 * and pass the checks of `pkglog verify`: signatures, inclusion in a checkpoint that satisfies the policy and is
 * consistent with the saved state, key continuity, --min-age. One report for the whole file.
 *
 * Verified artifacts are remembered per log in the state directory (`verified-artifacts.json`, bounded): the entry's
 * index and leaf hash, the tree size it was proven included in, the time before which a quorum had cosigned it (when
 * --min-age was checked) and whether other publisher keys came before it. All of these are facts about an
 * append-only log: once this run's checkpoint is verified and proven consistent with the saved one, a remembered
 * entry below its size is still included, still signed, still as old. So a warm run checks one checkpoint, not each
 * artifact; a fork fails the whole run.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { isPkglogError } from '../core/errors.ts';
import { leafHash } from '../core/hash.ts';
import type { Entry } from '../core/entry.ts';
import { writeFileAtomic } from './state.ts';
import { verifyCheckpoint, CheckpointError, formatDuration } from './trust.ts';
import { checkAgainstSaved } from './consistency.ts';
import { EXIT, Report, type ExitCode } from './report.ts';
import { verifyArtifact, type LogCheckOptions } from './verify.ts';
import { packageEntries } from './key-continuity.ts';
import type { Lockfile, Pin } from './lockfile.ts';

export interface LockOptions extends LogCheckOptions {
  nowMs: number;
  concurrency?: number;
}

/** One remembered verification: [index, leaf hash hex, tree size, proven cosigned before (s) or null, key change 0/1]. */
type Remembered = [number, string, number, number | null, 0 | 1];

const CACHE_FILE = 'verified-artifacts.json';
export const MAX_REMEMBERED = 200_000;

class VerifiedCache {
  private entries = new Map<string, Remembered>();
  private dirty = false;
  constructor(private readonly path: string | undefined) {
    if (path === undefined) return;
    try {
      const j = JSON.parse(readFileSync(path, 'utf8')) as { version?: number; entries?: Record<string, Remembered> };
      if (j.version === 1 && typeof j.entries === 'object' && j.entries !== null) this.entries = new Map(Object.entries(j.entries));
    } catch {
      // none yet, or unreadable: start empty (it is only a cache)
    }
  }
  get(key: string): Remembered | undefined {
    return this.entries.get(key);
  }
  put(key: string, r: Remembered): void {
    this.entries.delete(key);
    this.entries.set(key, r);
    while (this.entries.size > MAX_REMEMBERED) this.entries.delete(this.entries.keys().next().value!);
    this.dirty = true;
  }
  save(): void {
    if (this.path === undefined || !this.dirty) return;
    writeFileAtomic(this.path, JSON.stringify({ version: 1, entries: Object.fromEntries(this.entries) }));
  }
}

function pinId(p: Pin): string {
  return p.ecosystem === 'pypi' ? `${p.name}==${p.version}` : `${p.name}@${p.version}`;
}

function digestMatches(e: Entry, p: Pin): boolean {
  if (p.algorithm === 'sha256') return e.sha256 === p.digest;
  return e.nativeDigest?.algorithm === p.algorithm && e.nativeDigest.digest.toString('hex') === p.digest;
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

export async function verifyLock(lock: Lockfile, opts: LockOptions): Promise<Report> {
  const report = new Report();
  const results: Array<Record<string, unknown>> = [];
  report.data.kind = lock.kind;
  report.data.artifacts = results;
  const record = (where: string, id: string, status: 'pass' | 'fail', message: string, code: ExitCode = EXIT.OK, extra: Record<string, unknown> = {}) => {
    results.push({ where, id, ok: status === 'pass', message, ...extra });
    if (status === 'pass') report.pass(id, message);
    else report.fail(id, message, code);
  };
  for (const u of lock.unusable) record(u.where, lock.kind === 'requirements' ? `${u.name}==${u.version}` : `${u.name}@${u.version}`, 'fail', u.message, EXIT.VERIFY_FAILED);
  const { log } = opts;

  // 1. This run's checkpoint: the policy, and consistency with the saved state (a fork fails everything).
  let signed: string;
  try {
    signed = await log.checkpoint();
  } catch (e) {
    report.fail('network', msg(e), EXIT.NETWORK);
    return report;
  }
  let current;
  try {
    const v = verifyCheckpoint(opts.policy, signed, opts.nowMs);
    current = { signed, checkpoint: v.checkpoint };
  } catch (e) {
    if (e instanceof CheckpointError) {
      report.fail(e.stage === 'log-signature' ? 'checkpoint-signature' : e.stage, e.message, EXIT.POLICY);
      return report;
    }
    throw e;
  }
  report.data.checkpoint = { origin: current.checkpoint.origin, treeSize: current.checkpoint.treeSize };
  if (opts.state !== undefined) {
    const r = await checkAgainstSaved(opts.state, current, log);
    if (r.status === 'fork') {
      const path = r.fork.evidence ? opts.state.saveEvidence(r.fork.origin, r.fork.evidence, opts.nowMs) : undefined;
      if (path) report.data.evidence = path;
      report.fail('consistency', `FORK: ${r.fork.message}${path ? `; evidence written to ${path}` : ''}`, EXIT.FORK);
      return report;
    }
    report.pass('checkpoint', `checkpoint ${current.checkpoint.origin} size ${current.checkpoint.treeSize} meets the policy; ${r.message}`);
  } else {
    report.pass('checkpoint', `checkpoint ${current.checkpoint.origin} size ${current.checkpoint.treeSize} meets the policy (no state: consistency with earlier checkpoints not checked)`);
  }
  const cache = new VerifiedCache(opts.state !== undefined ? join(opts.state.logDir(current.checkpoint.origin), CACHE_FILE) : undefined);
  const nowSec = Math.floor(opts.nowMs / 1000);

  // 2. Each pin: remembered, or found in the log and verified.
  const packages = new Map<string, Promise<Array<{ index: number; entry: Entry; leaf: Buffer }>>>();
  const entriesOf = (p: Pin) => {
    const k = `${p.ecosystem}/${p.name}`;
    let v = packages.get(k);
    if (v === undefined) {
      v = packageEntries(log, p.ecosystem, p.name).then((r) => r.entries);
      packages.set(k, v);
    }
    return v;
  };
  const outcomes = new Map<Pin, () => void>();
  await pool(lock.pins, opts.concurrency ?? 8, async (pin) => {
    const id = pinId(pin);
    const key = `${pin.ecosystem}\n${pin.name}\n${pin.version}\n${pin.algorithm}:${pin.digest}`;
    const hit = cache.get(key);
    if (
      hit !== undefined && hit[0] < current.checkpoint.treeSize &&
      (!opts.strictKeys || hit[4] === 0) &&
      (opts.minAgeSeconds === undefined || (hit[3] !== null && hit[3] <= nowSec - opts.minAgeSeconds))
    ) {
      outcomes.set(pin, () => record(pin.where, id, 'pass', `entry ${hit[0]} (verified before, in a checkpoint this one extends)`, EXIT.OK, { index: hit[0], cached: true }));
      return;
    }
    let all;
    try {
      all = await entriesOf(pin);
    } catch (e) {
      outcomes.set(pin, () => record(pin.where, id, 'fail', `cannot look up ${pin.ecosystem}/${pin.name}: ${msg(e)}`, isPkglogError(e, 'not_found') ? EXIT.USAGE : EXIT.NETWORK));
      return;
    }
    const found = all.find((x) => x.entry.version === pin.version && digestMatches(x.entry, pin));
    if (found === undefined) {
      const same = all.filter((x) => x.entry.version === pin.version);
      const noNative = pin.algorithm !== 'sha256' && same.length > 0 && same.every((x) => x.entry.nativeDigest === undefined);
      const why = noNative
        ? `the log's entries of ${pin.ecosystem}/${pin.name} ${pin.version} record no ${pin.algorithm} (leaf version 1): this integrity cannot be checked without the file`
        : same.length > 0
          ? `not in the log: ${pin.ecosystem}/${pin.name} ${pin.version} is logged (${same.map((x) => `${x.entry.filename}, entry ${x.index}`).join('; ')}) but with another ${pin.algorithm}: the pinned file is not the published one`
          : `not in the log: no entry for ${pin.ecosystem}/${pin.name} ${pin.version}`;
      outcomes.set(pin, () => record(pin.where, id, 'fail', why, EXIT.VERIFY_FAILED));
      return;
    }
    const r = await verifyArtifact({
      fileSha256: found.entry.sha256,
      want: { ecosystem: pin.ecosystem, name: pin.name, version: pin.version, filename: found.entry.filename },
      policy: opts.policy,
      registries: opts.registries,
      index: found.index,
      log,
      ...(opts.state !== undefined ? { state: opts.state, onFork: (f) => (f.evidence ? opts.state!.saveEvidence(f.origin, f.evidence, opts.nowMs) : undefined) } : {}),
      nowMs: opts.nowMs,
      ...(opts.minAgeSeconds !== undefined ? { minAgeSeconds: opts.minAgeSeconds } : {}),
      strictKeys: opts.strictKeys,
    });
    const failed = r.checks.find((c) => c.status === 'fail');
    if (r.ok || failed === undefined) {
      const keyChange = r.checks.some((c) => c.id === 'key-continuity' && c.status === 'warn');
      const size = (r.data.checkpoint as { treeSize?: number } | undefined)?.treeSize ?? current.checkpoint.treeSize;
      cache.put(key, [found.index, leafHash(found.leaf).toString('hex'), size, opts.minAgeSeconds !== undefined ? nowSec - opts.minAgeSeconds : null, keyChange ? 1 : 0]);
      const warn = keyChange ? ' (warning: earlier versions were signed by other publisher keys)' : '';
      const age = opts.minAgeSeconds !== undefined ? `, older than ${formatDuration(opts.minAgeSeconds)}` : '';
      outcomes.set(pin, () => record(pin.where, id, 'pass', `entry ${found.index} ${found.entry.filename}: verified${age}${warn}`, EXIT.OK, { index: found.index }));
    } else {
      outcomes.set(pin, () => record(pin.where, id, 'fail', `entry ${found.index} ${found.entry.filename}: ${failed.id}: ${failed.message.split('\n')[0]}`, r.exitCode, { index: found.index, check: failed.id }));
    }
  });
  // In file order, whatever order the checks finished in.
  for (const pin of lock.pins) outcomes.get(pin)!();
  cache.save();
  const failedN = results.filter((x) => !x.ok).length;
  report.data.summary = { artifacts: results.length, verified: results.length - failedN, failed: failedN };
  return report;
}
