/**
 * `pkglog monitor`: follow the log through its tiles from the saved position, verify every new tile against the
 * checkpoint (and the checkpoint against the saved one), decode every entry, and report watched packages and keys,
 * publisher key changes, and second artifacts for already logged files. Resumable; memory bounded (see file-index.ts).
 *
 * State (under <state>/logs/<sha256(origin)>/monitor/): state.json (tree position and right-edge tiles, the last
 * checkpoint fully verified, keys seen per watched package) and index/ (the file index).
 */
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeBase64 } from '../core/encoding.ts';
import { integrate, rightEdgeTiles } from '../core/integrate.ts';
import type { Policy } from '../core/policy.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import type { LogClient } from './http.ts';
import { StateStore, writeFileAtomic } from './state.ts';
import { EXIT, Report } from './report.ts';
import { verifyCheckpoint, CheckpointError, runFollowing, type RegistryKeys } from './trust.ts';
import { checkAgainstSaved } from './consistency.ts';
import { emptyPosition, positionFromJSON, positionToJSON, type TreePosition } from './replay.ts';
import { FileIndex } from './file-index.ts';
import { EntryChecker, type KeySeen, type WatchEvent } from './entry-checker.ts';
import { follow, findingsWithEvidence, type Progress } from './follow.ts';
import type { ForkFinding } from './fork.ts';

export interface MonitorOptions {
  log: LogClient;
  policy: Policy;
  state: StateStore;
  registries: RegistryKeys;
  watchPackages: string[];
  watchKeys: string[];
  nowMs: number;
  sampleRate?: number;
  /** On first run, start at the current checkpoint (verifying its right edge) instead of replaying from entry 0. */
  fromLatest?: boolean;
  onProgress?: (p: Progress) => void;
  onEvent?: (e: WatchEvent) => void;
  flushEvery?: number;
}

interface SavedMonitor {
  position: Record<string, unknown>;
  checkpoint?: string;
  seen: Record<string, KeySeen[]>;
}

function loadSaved(dir: string): SavedMonitor | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as SavedMonitor;
  } catch {
    return undefined;
  }
}

/** The right edge of the tree of `size` from the log's hash tiles, authenticated by recomputing the root. */
async function positionAt(log: LogClient, size: number, root: Buffer): Promise<TreePosition> {
  const edge = new Map<number, { tile: { level: number; index: number; width: number }; data: Buffer }>();
  for (const t of rightEdgeTiles(size)) edge.set(t.level, { tile: t, data: await log.tile(t) });
  const r = integrate(size, (t) => edge.get(t.level)!.data, []);
  if (!r.rootHash.equals(root)) throw new CheckpointError('log-signature', `the log's right-edge hash tiles do not hash to the checkpoint root at size ${size}`);
  return { size, root, edge };
}

export function monitor(opts: MonitorOptions): Promise<Report> {
  return runFollowing((report) => run(opts, report));
}

async function run(opts: MonitorOptions, report: Report): Promise<void> {
  const { log, state } = opts;
  const signed = await log.checkpoint();
  const verdict = verifyCheckpoint(opts.policy, signed, opts.nowMs);
  const cp = verdict.checkpoint;
  report.data.checkpoint = { origin: cp.origin, treeSize: cp.treeSize, rootHash: encodeBase64(cp.rootHash) };
  report.pass('checkpoint', `checkpoint ${cp.origin} size ${cp.treeSize} verified against the policy`);
  const current = { signed, checkpoint: cp };

  const forkOut = (f: ForkFinding, id: string) => {
    const path = f.evidence ? state.saveEvidence(cp.origin, f.evidence, opts.nowMs) : undefined;
    if (path) report.data.evidence = path;
    report.fail(id, `FORK: ${f.message}${path ? `; evidence written to ${path}` : ''}`, EXIT.FORK);
  };
  const c = await checkAgainstSaved(state, current, log);
  if (c.status === 'fork') return forkOut(c.fork, 'consistency');
  report.pass('consistency', c.message);

  const dir = join(state.logDir(cp.origin), 'monitor');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const saved = loadSaved(dir);
  let pos: TreePosition;
  if (saved !== undefined) pos = positionFromJSON(saved.position);
  else if (opts.fromLatest) pos = await positionAt(log, cp.treeSize, cp.rootHash);
  else pos = emptyPosition();
  const seen = saved?.seen ?? {};
  const save = (p: TreePosition, checkpoint?: string) => {
    const s: SavedMonitor = { position: positionToJSON(p), seen, ...(checkpoint ? { checkpoint } : saved?.checkpoint ? { checkpoint: saved.checkpoint } : {}) };
    writeFileAtomic(join(dir, 'state.json'), JSON.stringify(s));
  };
  if (saved === undefined) save(pos, opts.fromLatest ? signed : undefined);
  const startSize = pos.size;
  report.data.from = startSize;
  report.data.to = cp.treeSize;
  if (pos.size > cp.treeSize) {
    report.pass('replay', `already verified up to size ${pos.size} (the log's checkpoint is size ${cp.treeSize})`);
    return;
  }

  const index = new FileIndex(join(dir, 'index'));
  try {
    await replayAndReport(opts, report, { dir, pos, seen, save, signed, cp, startSize, index });
  } finally {
    index.close();
  }
}

interface Ctx {
  dir: string;
  pos: TreePosition;
  seen: Record<string, KeySeen[]>;
  save: (p: TreePosition, checkpoint?: string) => void;
  signed: string;
  cp: Checkpoint;
  startSize: number;
  index: FileIndex;
}

async function replayAndReport(opts: MonitorOptions, report: Report, ctx: Ctx): Promise<void> {
  const { pos, seen, save, signed, cp, startSize, index } = ctx;
  const { log, state } = opts;
  const checker = new EntryChecker(index, opts.registries, opts.sampleRate ?? 1, {
    packages: new Set(opts.watchPackages),
    keys: new Set(opts.watchKeys),
    seen,
  });
  let emitted = 0;
  const emit = () => {
    for (; emitted < checker.events.length; emitted++) opts.onEvent?.(checker.events[emitted]!);
  };
  const r = await follow(log, pos, cp, checker, {
    flushEvery: opts.flushEvery,
    onProgress: (p) => {
      emit();
      opts.onProgress?.(p);
    },
    onFlush: (p) => {
      emit();
      if (checker.conflicts.length === 0 && checker.problems.length === 0) save(p);
    },
  });
  emit();
  report.data.entries = r.entries;
  report.data.seconds = Number(r.seconds.toFixed(3));
  report.data.events = checker.events;
  report.data.stats = checker.stats;
  if (r.violation !== undefined) {
    const text = JSON.stringify({ format: 'pkglog-violation-evidence/v1', kind: r.violation.kind, origin: cp.origin, message: r.violation.message, checkpoint: signed, tile: r.violation.tile ?? null, entries: [] }, null, 2) + '\n';
    const path = state.saveEvidence(cp.origin, text, opts.nowMs);
    report.fail('tiles', `${r.violation.message} (report written to ${path})`, EXIT.LOG_MISBEHAVED);
    return;
  }
  report.pass('tiles', `replayed entries ${startSize}…${cp.treeSize - 1}: every tile matches and the recomputed root equals the checkpoint's`);
  const findings = await findingsWithEvidence(log, signed, cp, checker);
  for (const f of findings) {
    const path = f.evidence ? state.saveEvidence(cp.origin, f.evidence, opts.nowMs) : undefined;
    report.fail(f.kind, `${f.message}${path ? ` (evidence: ${path})` : ''}`, EXIT.LOG_MISBEHAVED);
  }
  if (findings.length === 0) {
    const unknown = Object.keys(checker.stats.unknownRegistries);
    report.pass('entries', `${r.entries} new entries decoded; ${checker.stats.signaturesChecked} signature-checked; no file has a second artifact`);
    if (unknown.length) report.warn('registries', `countersignatures not checked for untrusted registries: ${unknown.join(', ')} (add --registry-key)`);
  }
  const changes = checker.events.filter((e) => e.kind === 'key-change');
  for (const k of changes) report.fail('key-change', k.message, EXIT.KEY_CHANGE);
  const watched = checker.events.filter((e) => e.kind === 'watched-entry').length;
  report.pass('watch', `${watched} new entr${watched === 1 ? 'y' : 'ies'} for watched packages or keys`);
  // Save the position and the checkpoint even after findings: they are reported once, with evidence on disk.
  save(r.pos, signed);
}
