/**
 * Start-up of the shipped command (npm run bench calls benchStartup): whole-process wall time of
 * `node bin/pkglog.js --version` and of an offline `pkglog verify FILE --proof P --offline` (a real tlog-proof with
 * two cosignatures, checked against a tlog-policy and a registry key), each next to `node -e 0` measured in the same
 * run. The three commands are spawned in turn (A B C A B C …) so a noisy neighbour slows all of them; figures are
 * medians (minimums in the notes). Targets: --version ≤ 3× and offline verify ≤ 5× the median of `node -e 0`.
 * bin/pkglog.js runs the compiled JavaScript in dist/ (`npm run bench` builds it first).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildLog } from './client.ts';
import type { Figure } from './log.ts';

const BIN = fileURLToPath(new URL('../bin/pkglog.js', import.meta.url));

/** Writes an artifact, its tlog-proof, a policy and a registry key for an offline `pkglog verify`; returns its argv. */
function verifyInputs(dir: string): string[] {
  const log = buildLog(300);
  const i = 257;
  // bench/client.ts logs artifact i as pkg-<i>.tar.gz with SHA-256("c<i>"), package pkg<i % 1000> version 1.<i>.
  const artifact = join(dir, `pkg-${i}.tar.gz`);
  writeFileSync(artifact, `c${i}`);
  writeFileSync(join(dir, 'artifact.tlog-proof'), log.proofFor(i));
  writeFileSync(join(dir, 'policy'), log.policyText);
  const registryKey = `pypi.org=${Buffer.from(log.registries.get('pypi.org')!).toString('base64')}`;
  return [
    'verify', artifact, '--ecosystem', 'pypi', '--name', `pkg${i % 1000}`, '--version', `1.${i}`,
    '--proof', join(dir, 'artifact.tlog-proof'), '--offline', '--policy', join(dir, 'policy'),
    '--registry-key', registryKey, '--state-dir', join(dir, 'state'),
  ];
}

/** Wall time of one whole process, ms; throws unless it exits 0. */
function timeProcess(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function benchStartup({ quick = false }: { quick?: boolean } = {}): Promise<Figure[]> {
  if (!existsSync(fileURLToPath(new URL('../dist/client/cli.js', import.meta.url)))) {
    throw new Error('dist/ is missing: run npm run build (npm run bench does)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-startup-'));
  try {
    const commands: Array<[string, string[]]> = [
      ['node -e 0', ['-e', '0']],
      ['pkglog --version', [BIN, '--version']],
      ['pkglog verify --offline', [BIN, ...verifyInputs(dir)]],
    ];
    const runs = quick ? 7 : 25;
    const times = commands.map(() => [] as number[]);
    for (let r = -2; r < runs; r++) {
      // Two warm-up rounds (page cache, the state dir's first write), then the counted rounds.
      commands.forEach(([, args], k) => {
        const ms = timeProcess(args);
        if (r >= 0) times[k]!.push(ms);
      });
    }
    const [base, version, verify] = times.map(median) as [number, number, number];
    const mins = times.map((t) => Math.min(...t));
    const note = (k: number) => `median of ${runs} runs; min ${mins[k]!.toFixed(0)} ms (node -e 0 min ${mins[0]!.toFixed(0)} ms), min ratio ${(mins[k]! / mins[0]!).toFixed(2)}×`;
    return [
      { name: 'start-up: node -e 0 (baseline)', value: base, unit: 'ms', note: `median of ${runs} runs; min ${mins[0]!.toFixed(0)} ms` },
      { name: 'start-up: pkglog --version', value: version, unit: 'ms', baseline: base, target: '≤ 3× node -e 0', pass: version <= 3 * base, note: note(1) },
      { name: 'start-up: pkglog verify --offline (tlog-proof, 2 cosignatures)', value: verify, unit: 'ms', baseline: base, target: '≤ 5× node -e 0', pass: verify <= 5 * base, note: note(2) },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await benchStartup({ quick: process.env.BENCH_QUICK === '1' })) {
    console.log(`${f.name}: ${f.value.toFixed(1)} ${f.unit}${f.baseline !== undefined ? ` (${(f.value / f.baseline).toFixed(2)}× baseline, target ${f.target}: ${f.pass ? 'PASS' : 'FAIL'})` : ''}  [${f.note}]`);
  }
}
