/**
 * Mirror catch-up (npm run bench calls benchMirror): a fresh `pkglog mirror` store pulls a whole log through its tiles
 * (mirror/mirror.ts pull: entry bundles, a subtree consistency proof per 256 entries read from tiles authenticated
 * against the signed root and verified again, tiles rebuilt with core/integrate, 8,192 entries per durable SQLite
 * commit, then the cosignature), entries per second. Baseline, in the same run and on the same in-memory log:
 * `pkglog audit` catch-up (client/audit.ts: every tile recomputed and compared, signatures sampled at 1%).
 * PKGLOG_BENCH_MIRROR_ENTRIES sets the size (default 1,000,000; BENCH_QUICK: 20,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cosignatureSigner } from '../core/cosignature.ts';
import { formatVerifierKey } from '../core/note.ts';
import { MirrorStore } from '../mirror/store.ts';
import { Mirror } from '../mirror/mirror.ts';
import { audit } from '../client/audit.ts';
import { buildLog } from './client.ts';
import type { Figure } from './log.ts';

export async function benchMirror(opts: { quick?: boolean } = {}): Promise<Figure[]> {
  const entries = Number(process.env.PKGLOG_BENCH_MIRROR_ENTRIES ?? (opts.quick || process.env.BENCH_QUICK ? 20_000 : 1_000_000));
  const built0 = performance.now();
  const log = buildLog(entries);
  const buildSeconds = (performance.now() - built0) / 1000;
  const origin = 'bench.example/log';
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-mirror-'));
  try {
    const store = MirrorStore.open(dir);
    const mirror = new Mirror({ store, signers: [cosignatureSigner('bench.example/mirror', Buffer.alloc(32, 9), () => Math.floor(Date.now() / 1000))] });
    const vkey = log.policy.logs[0]!.verifier;
    const l = store.addLog(origin, formatVerifierKey(vkey.name, vkey.type, vkey.publicKey), 'http://bench.invalid', true, 0, 0);
    const t0 = performance.now();
    const what = await mirror.pull(l.id, log.source);
    const seconds = (performance.now() - t0) / 1000;
    if (what !== `cosigned ${entries}`) throw new Error(`bench mirror pull: ${what}`);
    store.close();
    const mirrorRate = entries / seconds;
    const work = mkdtempSync(join(tmpdir(), 'pkglog-bench-mirror-audit-'));
    let auditRate: number;
    try {
      const r = await audit({ source: log.source, policy: log.policy, registries: log.registries, nowMs: Date.now(), sampleRate: 0.01, workDir: work });
      if (!r.ok) throw new Error(`bench audit failed: ${JSON.stringify(r.toJSON())}`);
      auditRate = Number(r.data.entriesPerSecond);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return [
      {
        name: `mirror: catch-up from a ${entries.toLocaleString('en')}-entry log (pull, proofs verified, durable commits)`,
        value: Math.round(mirrorRate),
        unit: 'entries/s',
        baseline: Math.round(auditRate),
        note: `baseline: audit catch-up (1% signatures) on the same log in the same run; the mirror took ${seconds.toFixed(1)} s (building the in-memory log: ${buildSeconds.toFixed(0)} s)`,
      },
      { name: `mirror: audit catch-up on the same log (baseline)`, value: Math.round(auditRate), unit: 'entries/s' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await benchMirror()) console.log(`${f.name}: ${f.value} ${f.unit}${f.baseline !== undefined ? ` (baseline ${f.baseline})` : ''}`);
}
