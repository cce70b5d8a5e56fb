/**
 * `pkglog audit`: replay the whole log from its tiles (entry 0 to the current checkpoint), recompute every hash
 * tile and the root, check every entry's signatures (or a random sample) and the one-artifact-per-file rule, and
 * report violations as evidence. Uses a throw-away file index; nothing is trusted from earlier runs.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBase64 } from '../core/encoding.ts';
import type { Policy } from '../core/policy.ts';
import type { StateStore } from './state.ts';
import { EXIT, Report } from './report.ts';
import { verifyCheckpoint, runFollowing, type RegistryKeys } from './trust.ts';
import { emptyPosition, type TileSource } from './replay.ts';
import { FileIndex } from './file-index.ts';
import { EntryChecker } from './entry-checker.ts';
import { follow, findingsWithEvidence, type Progress } from './follow.ts';

export interface AuditOptions {
  source: TileSource & { checkpoint(): Promise<string> };
  policy: Policy;
  registries: RegistryKeys;
  nowMs: number;
  sampleRate?: number;
  /** Where to write evidence (the client state); without it evidence is only in the report. */
  state?: StateStore;
  workDir?: string;
  onProgress?: (p: Progress) => void;
  skipHashTiles?: boolean;
}

export function audit(opts: AuditOptions): Promise<Report> {
  return runFollowing((report) => run(opts, report));
}

async function run(opts: AuditOptions, report: Report): Promise<void> {
  const signed = await opts.source.checkpoint();
  const cp = verifyCheckpoint(opts.policy, signed, opts.nowMs).checkpoint;
  report.data.checkpoint = { origin: cp.origin, treeSize: cp.treeSize, rootHash: encodeBase64(cp.rootHash) };
  report.pass('checkpoint', `checkpoint ${cp.origin} size ${cp.treeSize} verified against the policy`);
  const work = mkdtempSync(join(opts.workDir ?? tmpdir(), 'pkglog-audit-'));
  const index = new FileIndex(join(work, 'index'));
  const sampleRate = opts.sampleRate ?? 1;
  try {
    const checker = new EntryChecker(index, opts.registries, sampleRate);
    const r = await follow(opts.source, emptyPosition(), cp, checker, { onProgress: opts.onProgress, skipHashTiles: opts.skipHashTiles });
    report.data.entries = r.entries;
    report.data.seconds = Number(r.seconds.toFixed(3));
    report.data.entriesPerSecond = r.seconds > 0 ? Math.round(r.entries / r.seconds) : null;
    report.data.stats = checker.stats;
    const save = (text: string) => opts.state?.saveEvidence(cp.origin, text, opts.nowMs);
    if (r.violation !== undefined) {
      const text = JSON.stringify({ format: 'pkglog-violation-evidence/v1', kind: r.violation.kind, origin: cp.origin, message: r.violation.message, checkpoint: signed, tile: r.violation.tile ?? null, entries: [] }, null, 2) + '\n';
      const path = save(text);
      report.fail('tiles', `${r.violation.message}${path ? ` (report written to ${path})` : ''}`, EXIT.LOG_MISBEHAVED);
      return;
    }
    report.pass('tiles', `recomputed ${cp.treeSize} entries into every hash tile and the root: all match the log's tiles and checkpoint`);
    const findings = await findingsWithEvidence(opts.source, signed, cp, checker);
    const evidence: unknown[] = [];
    for (const f of findings) {
      const path = f.evidence ? save(f.evidence) : undefined;
      if (f.evidence) evidence.push(JSON.parse(f.evidence));
      report.fail(f.kind, `${f.message}${path ? ` (evidence: ${path})` : ''}`, EXIT.LOG_MISBEHAVED);
    }
    if (evidence.length) report.data.evidence = evidence;
    const sigs = sampleRate >= 1 ? 'all signatures checked' : `signatures checked on a ${(sampleRate * 100).toFixed(2)}% sample (${checker.stats.signaturesChecked} entries)`;
    if (findings.length === 0) report.pass('entries', `${r.entries} entries decoded, ${sigs}, every file has exactly one artifact`);
    const unknown = Object.keys(checker.stats.unknownRegistries);
    if (unknown.length) report.warn('registries', `countersignatures not checked for registries without a key: ${unknown.join(', ')} (add --registry-key)`);
  } finally {
    index.destroy();
  }
}
