/** `pkglog fsck`: loads the log key and the witnesses, runs log-store/fsck.ts on the database, formats the report. */
import { parseVerifierKey } from '../core/note.ts';
import { fsckStore, formatProblem, type FsckReport } from '../log-store/fsck.ts';
import { LogStore } from '../log-store/store.ts';
import { existsSync } from 'node:fs';
import { loadLogKey, loadLogMlDsaKey } from './keys.ts';
import { loadWitnesses } from './witness-config.ts';

/** Problems printed at most (all are counted). */
export const MAX_PRINTED = 1000;

export function runFsck(o: { dbPath: string; keyFile: string; witnessesFile: string; mldsaKeyFile?: string }): { ok: boolean; text: string; report: FsckReport } {
  const key = loadLogKey(o.keyFile);
  // The log's ML-DSA-44 cosignature on its checkpoints is checked too when its key file is there.
  const pq = o.mldsaKeyFile !== undefined && existsSync(o.mldsaKeyFile) ? loadLogMlDsaKey(o.mldsaKeyFile, key.origin) : undefined;
  const witnessVerifiers = loadWitnesses(o.witnessesFile).flatMap((w) => w.vkeys.map(parseVerifierKey));
  const store = LogStore.open(o.dbPath, { readonly: true, anyVersion: true });
  let report: FsckReport;
  try {
    report = fsckStore(store, { origin: key.origin, logVerifier: parseVerifierKey(key.vkey), ...(pq ? { otherLogVerifiers: [parseVerifierKey(pq.vkey)] } : {}), signer: key.signer, witnessVerifiers });
  } finally {
    store.close();
  }
  const lines = report.problems.slice(0, MAX_PRINTED).map((p) => `fsck: ${formatProblem(p)}\n`);
  if (report.problems.length > MAX_PRINTED) lines.push(`fsck: … and ${report.problems.length - MAX_PRINTED} more problems\n`);
  const counts = `${report.entries} entries, ${report.tiles} tiles, ${report.checkpoints} checkpoints, ${report.cosignatures} cosignatures` +
    (report.unverifiedCosignatures > 0 ? ` (${report.unverifiedCosignatures} by witnesses not in witnesses.txt, not verified)` : '');
  lines.push(report.problems.length === 0 ? `fsck: ${o.dbPath}: OK: ${counts}\n` : `fsck: ${o.dbPath}: ${report.problems.length} problem(s) in ${counts}\n`);
  return { ok: report.problems.length === 0, text: lines.join(''), report };
}
