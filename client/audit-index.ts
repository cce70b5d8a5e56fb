/**
 * `pkglog audit --index`: rebuild the index's map from the input log and check every revision the output log
 * published. Reads the output log (checkpoint verified against the policy, every revision leaf from its entry
 * bundles, each proven included) and the input log's entry bundles up to its verified checkpoint (every leaf
 * authenticated: the recomputed root must be the checkpoint's), then replays the map function revision by revision
 * (core/index-memory.ts, keeping one revision) and compares each revision's input tree head and map root. A wrong
 * map root is written as pkglog-index-evidence/v1 (core/index-evidence.ts), which `pkglog evidence verify` checks.
 */
import { fail } from '../core/errors.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { leafHash } from '../core/hash.ts';
import { verifyInclusion } from '../core/merkle.ts';
import { decodeLeaf, type Entry } from '../core/entry.ts';
import { parseEntryBundle, tileWidth, TILE_WIDTH } from '../core/tiles.ts';
import { parseIndexRevision, type IndexRevision } from '../core/index-revision.ts';
import { MemoryIndex } from '../core/index-memory.ts';
import { CompactRange, formatIndexEvidence } from '../core/index-evidence.ts';
import type { Policy } from '../core/policy.ts';
import type { Hash } from '../core/types.ts';
import type { LogClient } from './http.ts';
import type { StateStore } from './state.ts';
import { EXIT, Report } from './report.ts';
import { verifyCheckpoint, runFollowing } from './trust.ts';
import { indexPolicy } from './index-history.ts';

export interface IndexAuditOptions {
  log: LogClient;
  outputLog: LogClient;
  policy: Policy;
  state?: StateStore;
  nowMs: number;
}

export function auditIndex(opts: IndexAuditOptions): Promise<Report> {
  return runFollowing((report) => run(opts, report));
}

/** Reads the leaves of [start, end) of a tree of `treeSize` from its entry bundles. */
async function* leaves(log: LogClient, start: number, end: number, treeSize: number): AsyncGenerator<Buffer> {
  for (let b = Math.floor(start / TILE_WIDTH); b * TILE_WIDTH < end; b++) {
    const width = tileWidth(0, b, treeSize);
    const bundle = parseEntryBundle(await log.tile({ level: -1, index: b, width }));
    if (bundle.length !== width) fail('invalid_proof', `${log.base}: entry bundle ${b} has ${bundle.length} entries, not ${width}`, { tile: `tile/entries/${b}` });
    for (let i = Math.max(0, start - b * TILE_WIDTH); i < width && b * TILE_WIDTH + i < end; i++) yield bundle[i]!;
  }
}

async function run(opts: IndexAuditOptions, report: Report): Promise<void> {
  const inputSigned = await opts.log.checkpoint();
  const input = verifyCheckpoint(opts.policy, inputSigned, opts.nowMs).checkpoint;
  const outputSigned = await opts.outputLog.checkpoint();
  const output = verifyCheckpoint(indexPolicy(opts.policy, input.origin, outputSigned), outputSigned, opts.nowMs).checkpoint;
  if (output.origin === input.origin) fail('usage', `the index log ${opts.outputLog.base} has the log's own origin ${input.origin}`);
  report.data.checkpoint = { origin: input.origin, treeSize: input.treeSize, rootHash: encodeBase64(input.rootHash) };
  report.data.index = { origin: output.origin, treeSize: output.treeSize, rootHash: encodeBase64(output.rootHash) };
  report.pass('checkpoint', `log ${input.origin} size ${input.treeSize} and index log ${output.origin} size ${output.treeSize} verified against the policy`);

  // Every revision, proven in the output log.
  const revisions: Array<{ revision: IndexRevision; leaf: Buffer; proof: Hash[] }> = [];
  let i = 0;
  for await (const leaf of leaves(opts.outputLog, 0, output.treeSize, output.treeSize)) {
    const proof = await opts.outputLog.inclusionProof(i, output.treeSize, output.rootHash);
    verifyInclusion(i, output.treeSize, leafHash(leaf), proof, output.rootHash);
    let revision: IndexRevision;
    try {
      revision = parseIndexRevision(leaf);
    } catch (e) {
      report.fail('revisions', `index log entry ${i} is not a revision leaf: ${(e as Error).message}`, EXIT.LOG_MISBEHAVED);
      return;
    }
    const prev = revisions[revisions.length - 1]?.revision;
    const problem =
      revision.revision !== i ? `names revision ${revision.revision}` :
      revision.inputOrigin !== input.origin ? `is of log "${revision.inputOrigin}", not "${input.origin}"` :
      revision.inputTreeSize > input.treeSize ? `covers ${revision.inputTreeSize} entries, more than the log's checkpoint (${input.treeSize})` :
      prev !== undefined && revision.inputTreeSize < prev.inputTreeSize ? `covers ${revision.inputTreeSize} entries, fewer than revision ${prev.revision} (${prev.inputTreeSize})` :
      undefined;
    if (problem !== undefined) {
      report.fail('revisions', `index revision ${i} ${problem}`, EXIT.LOG_MISBEHAVED);
      return;
    }
    revisions.push({ revision, leaf, proof });
    i++;
  }
  report.pass('revisions', `${revisions.length} revision leaves read and proven in the index log`);

  // Replay the input log through the map function, revision by revision.
  const index = new MemoryIndex({ keepRevisions: 1 });
  const range = new CompactRange();
  let r = 0;
  let pending: Entry[] = [];
  const checkRevisions = async (): Promise<boolean> => {
    while (r < revisions.length && revisions[r]!.revision.inputTreeSize === range.size) {
      const { revision, leaf, proof } = revisions[r]!;
      if (!range.root().equals(revision.inputRootHash)) {
        report.fail('index', `index revision ${r}: its input root for size ${revision.inputTreeSize} is not the log's (the index signed a tree head the log never had)`, EXIT.LOG_MISBEHAVED);
        return false;
      }
      const mapRoot = pending.length > 0 || r === 0 ? index.appendBatch(pending).mapRoot : index.mapRoot;
      pending = [];
      if (!mapRoot.equals(revision.mapRoot)) {
        // The evidence carries the revision's input entries (read again: nothing is kept while replaying).
        const evidenceLeaves: Buffer[] = [];
        for await (const l of leaves(opts.log, 0, revision.inputTreeSize, input.treeSize)) evidenceLeaves.push(l);
        const evidence = formatIndexEvidence({ origin: output.origin, checkpoint: outputSigned, revisionLeaf: leaf, revisionProof: proof, leaves: evidenceLeaves });
        const path = opts.state?.saveEvidence(output.origin, evidence, opts.nowMs);
        if (path !== undefined) report.data.evidence = path;
        report.fail(
          'index',
          `index revision ${r} has map root ${revision.mapRoot.toString('hex')}, but the map of the log's first ${revision.inputTreeSize} entries has root ${mapRoot.toString('hex')}${path ? `; evidence written to ${path}` : ''}`,
          EXIT.LOG_MISBEHAVED,
        );
        return false;
      }
      r++;
    }
    return true;
  };
  const last = revisions.length > 0 ? revisions[revisions.length - 1]!.revision.inputTreeSize : 0;
  if (!(await checkRevisions())) return;
  for await (const leaf of leaves(opts.log, 0, input.treeSize, input.treeSize)) {
    range.push(leafHash(leaf));
    if (range.size <= last) {
      try {
        pending.push(decodeLeaf(leaf));
      } catch (e) {
        report.fail('entries', `entry ${range.size - 1} is not a pkglog entry: ${(e as Error).message}`, EXIT.LOG_MISBEHAVED);
        return;
      }
    }
    if (!(await checkRevisions())) return;
  }
  if (!range.root().equals(input.rootHash)) {
    report.fail('tiles', `the log's entry bundles do not hash to its checkpoint's root (size ${input.treeSize})`, EXIT.LOG_MISBEHAVED);
    return;
  }
  report.pass('index', `rebuilt the map from ${last} log entries: all ${revisions.length} revision map roots match`);
}
