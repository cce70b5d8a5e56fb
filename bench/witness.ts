/**
 * Witness throughput: add-checkpoint requests per second on ONE process (client and server share the core), with
 * consistency proofs of typical length (~20 hashes: sizes around 2^19 in a tree of 2^20 leaves), many logs pushing
 * concurrently (each log sequentially, as a real log does), every cosignature persisted durably before the reply.
 * Baseline: the same client against a bare express handler on the same kind of server, in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { integrate } from '../core/integrate.ts';
import { nodeHashFromTiles, type Tile } from '../core/tiles.ts';
import { hashRanges, planConsistencyProof, planRoot } from '../core/merkle.ts';
import { ed25519Signer, formatVerifierKey, signNote, SIG_TYPE_ED25519 } from '../core/note.ts';
import { formatCheckpoint } from '../core/checkpoint.ts';
import { formatAddCheckpointRequest } from '../core/witness-protocol.ts';
import type { Hash } from '../core/types.ts';
import { WitnessStore } from '../witness/store.ts';
import { mldsa44BackendName } from '../core/mldsa.ts';

import { startChild, type Figure } from './log.ts';

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();

/** A tree of `n` leaves held as tiles (built with core/integrate.ts), able to answer roots and proofs for any size ≤ n. */
function buildTree(n: number) {
  const tiles = new Map<string, Buffer>();
  const read = (t: Tile): Buffer => tiles.get(`${t.level}/${t.index}`)!.subarray(0, t.width * 32);
  const chunk = 1 << 16;
  let size = 0;
  for (let start = 0; start < n; start += chunk) {
    const hashes: Hash[] = [];
    for (let i = start; i < Math.min(n, start + chunk); i++) hashes.push(sha(`leaf ${i}`));
    const r = integrate(size, read, hashes);
    for (const { tile, data } of r.tiles) tiles.set(`${tile.level}/${tile.index}`, data);
    size = r.treeSize;
  }
  const node = (sz: number) => (id: { level: number; index: number }) => nodeHashFromTiles(id, sz, read);
  return {
    root: (sz: number): Hash => hashRanges([planRoot(sz)], node(sz))[0]!,
    proof: (a: number, b: number): Hash[] => hashRanges(planConsistencyProof(a, b), node(b)),
  };
}

function post(agent: Agent, port: number, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/add-checkpoint', method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs every worker's bodies sequentially, workers concurrently; returns requests per second. Throws on a non-200. */
async function drive(port: number, bodies: Buffer[][]): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: bodies.length });
  const start = process.hrtime.bigint();
  let total = 0;
  await Promise.all(
    bodies.map(async (list) => {
      for (const b of list) {
        const status = await post(agent, port, b);
        if (status !== 200) throw new Error(`add-checkpoint returned ${status}`);
        total++;
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  return total / secs;
}

export async function benchWitness(opts: { quick?: boolean } = {}): Promise<Figure[]> {
  const quick = opts.quick ?? process.env.BENCH_QUICK === '1';
  const treeSize = quick ? 1 << 17 : 1 << 18;
  const logs = 32; // a witness serves many logs at once; each log's checkpoints arrive in order
  const perLog = quick ? 25 : 120;
  const tree = buildTree(treeSize);
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-witness-'));
  const edDir = mkdtempSync(join(tmpdir(), 'pkglog-bench-witness-ed-'));
  // The logs are configured in data dirs prepared here (one per witness measured: each run advances its state); the
  // witnesses and the bare baseline are served by child processes (bench/server-child.ts), so this process's HTTP
  // client does not compete with them for a core.
  for (const d of [dir, edDir]) {
    const st = WitnessStore.open(d);
    try {
      for (let i = 0; i < logs; i++) {
        const origin = `bench.example/log-${i}`;
        st.addLog(origin, formatVerifierKey(origin, SIG_TYPE_ED25519, ed25519Signer(origin, sha(origin)).publicKey), null, 0);
      }
    } finally {
      st.close();
    }
  }
  const warmups: Buffer[][] = [];
  const bodies: Buffer[][] = [];
  let proofHashes = 0;
  let proofs = 0;
  {
    // Each log: the same tree contents under its own origin and key; sizes grow by a few leaves per checkpoint.
    for (let i = 0; i < logs; i++) {
      const origin = `bench.example/log-${i}`;
      const signer = ed25519Signer(origin, sha(origin));
      const cp = (size: number) => Buffer.from(signNote(formatCheckpoint({ origin, treeSize: size, rootHash: tree.root(size), extensions: [] }), [signer]));
      let size = Math.floor(treeSize / 2) + 1 + i * 977;
      warmups.push([formatAddCheckpointRequest({ oldSize: 0, consistencyProof: [], checkpoint: cp(size) })]);
      const list: Buffer[] = [];
      for (let j = 0; j < perLog; j++) {
        const next = size + 3 + ((i * 31 + j * 17) % 250);
        const proof = tree.proof(size, next);
        proofHashes += proof.length;
        proofs++;
        list.push(formatAddCheckpointRequest({ oldSize: size, consistencyProof: proof, checkpoint: cp(next) }));
        size = next;
      }
      bodies.push(list);
    }
  }
  // The default witness (Ed25519 cosignature/v1 + ML-DSA-44 subtree/v1), an Ed25519-only one, and the bare baseline.
  const w = await startChild({ cmd: 'start', mode: 'witness', dataDir: dir });
  const we = await startChild({ cmd: 'start', mode: 'witness', dataDir: edDir, cosign: { ed25519: true, mldsa: false } });
  const b = await startChild({ cmd: 'start', mode: 'bare' });
  try {
    await drive(port(w.url), warmups);
    await drive(port(we.url), warmups);
    await drive(port(b.url), warmups); // warm the baseline's connections and JIT too
    const n = bodies.reduce((a, l) => a + l.length, 0);
    // Requests per second, and the server child's CPU time per request (robust to other load on the machine).
    const measure = async (c: typeof b): Promise<[number, number]> => {
      const cpu0 = await c.cpuMicros();
      const r = await drive(port(c.url), bodies);
      return [r, ((await c.cpuMicros()) - cpu0) / n];
    };
    const [baseline, baseCpu] = await measure(b);
    const [edRps, edCpu] = await measure(we);
    const [rps, cpu] = await measure(w);
    return [
      {
        name: `witness add-checkpoint, Ed25519 + ML-DSA-44 cosigning (the default; ML-DSA ${mldsa44BackendName()})`,
        value: rps,
        unit: 'req/s',
        baseline: edRps,
        ratio: rps / edRps,
        target: '≥ 500 req/s',
        pass: rps >= 500,
        note: `${logs} logs × ${perLog} sequential checkpoints (Ed25519 log signatures); each witness in its own child process (one core); baseline: the same witness cosigning with Ed25519 only`,
      },
      {
        name: 'witness add-checkpoint, Ed25519 cosigning only (verify, cosign, durable CAS)',
        value: edRps,
        unit: 'req/s',
        baseline,
        ratio: edRps / baseline,
        target: '≥ 1,000 req/s',
        pass: edRps >= 1000,
        note: 'baseline: a bare express handler in a child process, same client',
      },
      { name: 'witness add-checkpoint CPU time per request, Ed25519 + ML-DSA-44 cosigning', value: cpu, unit: 'µs/req', baseline: edCpu, ratio: cpu / edCpu, target: '≤ 2,000 µs (500/s on one core)', pass: cpu <= 2000, note: 'user + system time of the witness child during the run ÷ requests; baseline: the Ed25519-only witness' },
      { name: 'witness add-checkpoint CPU time per request, Ed25519 only', value: edCpu, unit: 'µs/req', baseline: baseCpu, ratio: edCpu / baseCpu, target: '≤ 1,000 µs (1,000/s on one core)', pass: edCpu <= 1000, note: 'baseline: the bare express handler child' },
      { name: 'witness add-checkpoint proof length (mean)', value: proofHashes / proofs, unit: 'hashes' },
    ];
  } finally {
    await w.stop();
    await we.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(edDir, { recursive: true, force: true });
  }
}

const port = (url: string) => Number(new URL(url).port);

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await benchWitness()) console.log(JSON.stringify(f));
}
