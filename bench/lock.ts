/**
 * `pkglog verify-lock` on a 1,000-entry package-lock.json (npm run bench calls benchLock): a real `pkglog serve`
 * holding 1,000 npm entries with their sha512 (leaf version 2, submitted in one batch), a lockfile pinning all of
 * them; one cold run fills the client's remembered verifications, then the whole-process wall time of warm runs is
 * measured next to `pkglog --help` (the same process start-up, nothing checked), spawned in turn (A B A B …) so a
 * noisy neighbour slows both. Medians. Target: the warm run ≤ 2 s.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyPairFromSeed, ed25519Sign } from '../core/ed25519.ts';
import { formatSubmission, publisherMessage, registryMessage, type Artifact } from '../core/entry.ts';
import { formatVerifierKey, SIG_TYPE_ED25519 } from '../core/note.ts';
import type { Figure } from './log.ts';

const BIN = fileURLToPath(new URL('../bin/pkglog.js', import.meta.url));
const N = 1000;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function timeProcess(args: string[], expectExit = 0): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  if (r.status !== expectExit) throw new Error(`pkglog ${args.slice(0, 2).join(' ')} exited with ${r.status ?? r.signal}\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  return ms;
}

export async function benchLock({ quick = false }: { quick?: boolean } = {}): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-lock-'));
  const seed = (s: string) => createHash('sha256').update(s).digest();
  const registry = keyPairFromSeed(seed('bench registry'));
  const publisher = keyPairFromSeed(seed('bench publisher'));
  const regVkey = formatVerifierKey('registry.npmjs.org', SIG_TYPE_ED25519, registry.publicKey);
  const add = spawnSync(process.execPath, [BIN, 'registry', 'add', 'registry.npmjs.org', regVkey, '--ecosystem', 'npm', '--data-dir', join(dir, 'log')], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(add.stderr);
  const log = spawn(process.execPath, [BIN, 'serve', '--data-dir', join(dir, 'log'), '--listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const { url, vkey } = await new Promise<{ url: string; vkey: string }>((resolve, reject) => {
      let out = '';
      log.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const u = /listening on (http:\/\/\S+)/.exec(out);
        const k = /vkey (\S+)/.exec(out);
        if (u && k) resolve({ url: u[1]!, vkey: k[1]! });
      });
      log.once('exit', (c) => reject(new Error(`pkglog serve exited with ${c}`)));
    });
    const packages: Record<string, unknown> = { '': { name: 'bench-app', version: '1.0.0' } };
    const entries = [];
    for (let i = 0; i < N; i++) {
      const bytes = Buffer.from(`bench tarball ${i}\n`);
      const name = `pkg-${i}`;
      const sha512 = createHash('sha512').update(bytes).digest();
      const a: Artifact = {
        ecosystem: 'npm', name, version: `1.0.${i}`, filename: `${name}-1.0.${i}.tgz`,
        sha256: createHash('sha256').update(bytes).digest('hex'), nativeDigest: { algorithm: 'sha512', digest: sha512 },
      };
      const ps = ed25519Sign(publisher, publisherMessage(a));
      const rs = ed25519Sign(registry, registryMessage(a, publisher.publicKey, ps));
      entries.push(formatSubmission({ ...a, publisherKey: publisher.publicKey, publisherSignature: ps, registryName: 'registry.npmjs.org', registrySignature: rs }));
      packages[`node_modules/${name}`] = { version: a.version, resolved: `https://registry.npmjs.org/${name}/-/${a.filename}`, integrity: `sha512-${sha512.toString('base64')}` };
    }
    const res = await fetch(`${url}/v1/entries/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ entries }) });
    const body = (await res.json()) as { results?: Array<Record<string, unknown>> };
    if (res.status !== 200 || body.results?.some((r) => typeof r.index !== 'number')) throw new Error(`batch submission failed: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ name: 'bench-app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }));
    writeFileSync(join(dir, 'policy'), `log ${vkey} ${url}\nquorum none\n`);
    const lockArgs = ['verify-lock', join(dir, 'package-lock.json'), '--policy', join(dir, 'policy'), '--registry-key', regVkey, '--state-dir', join(dir, 'state'), '--json'];
    const cold = timeProcess(lockArgs);
    const warm: number[] = [];
    const help: number[] = [];
    for (let i = 0; i < (quick ? 3 : 7); i++) {
      help.push(timeProcess(['--help']));
      warm.push(timeProcess(lockArgs));
    }
    const w = median(warm);
    const h = median(help);
    return [
      {
        name: `verify-lock ${N.toLocaleString('en')}-entry package-lock.json, warm (whole process, ms)`,
        value: w, unit: 'ms', baseline: h, target: '≤ 2000 ms', pass: w <= 2000,
        note: `median of ${warm.length} warm runs (min ${Math.min(...warm).toFixed(0)} ms) vs \`pkglog --help\` (median ${h.toFixed(0)} ms) in turn; the cold run that verified every entry against the log took ${cold.toFixed(0)} ms`,
      },
      { name: `verify-lock ${N.toLocaleString('en')} entries, cold (every entry checked online, ms)`, value: cold, unit: 'ms', baseline: w, note: 'baseline: the warm run' },
    ];
  } finally {
    log.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
