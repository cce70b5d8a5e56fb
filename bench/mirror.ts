/**
 * Mirror catch-up (npm run bench calls benchMirror): a fresh `pkglog mirror` store pulls a whole log through its tiles
 * (mirror/mirror.ts pull: entry bundles, a subtree consistency proof per 256 entries read from tiles authenticated
 * against the signed root and verified again, tiles rebuilt with core/integrate, 8,192 entries per durable SQLite
 * commit, then the root check and the cosignature), entries per second of wall time and per CPU second. Baseline, in
 * the same run and on the same in-memory log: `pkglog audit` catch-up (client/audit.ts: every tile recomputed and
 * compared, signatures sampled at 1%).
 * PKGLOG_BENCH_MIRROR_ENTRIES sets the size (default 1,000,000; BENCH_QUICK: 20,000). The log's leaves (two real
 * Ed25519 signatures each: most of the cost of building it) are cached under the system temp directory
 * (`pkglog-bench-cache/mirror-leaves-v1-<N>.bin`, BENCH_CACHE_DIR overrides; remove it to rebuild); the tiles and the
 * signed checkpoint are rebuilt from them in every run.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cosignatureSigner } from '../core/cosignature.ts';
import { formatVerifierKey } from '../core/note.ts';
import { MirrorStore } from '../mirror/store.ts';
import { Mirror } from '../mirror/mirror.ts';
import { audit } from '../client/audit.ts';
import { buildLog } from './client.ts';
import type { Figure } from './log.ts';

/** Bump when bench/client.ts buildLog changes the leaves it makes. */
const LEAVES_VERSION = 1;

/** buildLog(n), its leaves read from the cache when there (else built and cached: uint16 length ‖ leaf, each). */
function cachedBuildLog(n: number, say: (m: string) => void): { log: ReturnType<typeof buildLog>; cached: boolean } {
  const dir = process.env.BENCH_CACHE_DIR ?? join(tmpdir(), 'pkglog-bench-cache');
  const file = join(dir, `mirror-leaves-v${LEAVES_VERSION}-${n}.bin`);
  if (existsSync(file)) {
    const data = readFileSync(file);
    const leaves: Buffer[] = [];
    for (let at = 0; at < data.length; ) {
      const len = data.readUInt16BE(at);
      leaves.push(data.subarray(at + 2, at + 2 + len));
      at += 2 + len;
    }
    if (leaves.length === n) return { log: buildLog(n, leaves), cached: true };
  }
  say(`building a ${n.toLocaleString('en')}-entry log with signed entries (once; its leaves are cached in ${file}) …`);
  const log = buildLog(n);
  mkdirSync(dir, { recursive: true });
  const parts: Buffer[] = [];
  for (const leaf of log.leaves) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(leaf.length);
    parts.push(len, leaf);
  }
  writeFileSync(`${file}.tmp`, Buffer.concat(parts));
  renameSync(`${file}.tmp`, file);
  return { log, cached: false };
}

/** Wall seconds and CPU seconds (user + system, this process) of `fn`. */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; cpuSeconds: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { value, seconds, cpuSeconds: (c.user + c.system) / 1e6 };
}

export async function benchMirror(opts: { quick?: boolean } = {}): Promise<Figure[]> {
  const entries = Number(process.env.PKGLOG_BENCH_MIRROR_ENTRIES ?? (opts.quick || process.env.BENCH_QUICK ? 20_000 : 1_000_000));
  const built0 = performance.now();
  const { log, cached } = cachedBuildLog(entries, (m) => process.stderr.write(m + '\n'));
  const buildSeconds = (performance.now() - built0) / 1000;
  const origin = 'bench.example/log';
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-mirror-'));
  try {
    const store = MirrorStore.open(dir);
    const mirror = new Mirror({ store, signers: [cosignatureSigner('bench.example/mirror', Buffer.alloc(32, 9), () => Math.floor(Date.now() / 1000))] });
    const vkey = log.policy.logs[0]!.verifier;
    const l = store.addLog(origin, formatVerifierKey(vkey.name, vkey.type, vkey.publicKey), 'http://bench.invalid', true, 0, 0);
    const pulled = await timed(() => mirror.pull(l.id, log.source));
    if (pulled.value !== `cosigned ${entries}`) throw new Error(`bench mirror pull: ${pulled.value}`);
    store.close();
    const work = mkdtempSync(join(tmpdir(), 'pkglog-bench-mirror-audit-'));
    let audited;
    try {
      audited = await timed(() => audit({ source: log.source, policy: log.policy, registries: log.registries, nowMs: Date.now(), sampleRate: 0.01, workDir: work }));
      if (!audited.value.ok) throw new Error(`bench audit failed: ${JSON.stringify(audited.value.toJSON())}`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const mirrorRate = entries / pulled.seconds;
    const auditRate = entries / audited.seconds;
    const size = entries.toLocaleString('en');
    return [
      {
        name: `mirror: catch-up from a ${size}-entry log (pull, proofs verified, durable commits)`,
        value: Math.round(mirrorRate),
        unit: 'entries/s',
        baseline: Math.round(auditRate),
        note: `baseline: audit catch-up (1% signatures) of the same log in the same run; the mirror took ${pulled.seconds.toFixed(1)} s, the audit ${audited.seconds.toFixed(1)} s (${cached ? 'leaves from the cache, tiles rebuilt' : 'building the log'}: ${buildSeconds.toFixed(0)} s)`,
      },
      {
        name: `mirror: catch-up per CPU second (${size} entries)`,
        value: Math.round(entries / pulled.cpuSeconds),
        unit: 'entries/CPU-s',
        baseline: Math.round(entries / audited.cpuSeconds),
        note: 'user + system CPU time of the process (robust to other load on the machine); baseline: the audit, same run',
      },
      { name: `mirror: audit catch-up of the same log (baseline)`, value: Math.round(auditRate), unit: 'entries/s' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await benchMirror()) console.log(`${f.name}: ${f.value} ${f.unit}${f.baseline !== undefined ? ` (baseline ${f.baseline}, ratio ${(f.value / f.baseline).toFixed(2)})` : ''}${f.note ? ` — ${f.note}` : ''}`);
}
