/**
 * ML-DSA-44 benchmarks (npm run bench calls benchMlDsa), all in the same run and on the same thread:
 *   - ML-DSA-44 sign/s and verify/s through core (core/mldsa.ts: @noble/post-quantum, pure JavaScript) next to
 *     Ed25519 sign/s and verify/s through node:crypto (the baselines);
 *   - offline verification of a tlog-proof whose checkpoint carries the log's ML-DSA-44 cosignature and 3 ML-DSA-44
 *     witness cosignatures, under a policy that lists only those keys (every proof's checkpoint re-verified: 4
 *     ML-DSA verifications + the entry's 2 Ed25519 ones; and with the client's memo when proofs share a checkpoint).
 *     Target ≥ 500/s for the re-verified case.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { mldsa44BackendName, mldsa44KeyPairFromSeed, mldsa44Sign, mldsa44Verify, useMlDsa44Backend, MLDSA44_BACKENDS } from '../core/mldsa.ts';
import { mldsaCosigner } from '../core/cosignature.ts';
import { formatVerifierKey, parseSignedNote, signNote, SIG_TYPE_MLDSA44 } from '../core/note.ts';
import { parseTlogProof, formatTlogProof } from '../core/tlog-proof.ts';
import { parsePolicy } from '../core/policy.ts';
import { verifyArtifact } from '../client/verify.ts';
import { buildLog, perSecond, type BenchResult } from './client.ts';

const BACKEND_WORDS = { native: 'pqclean native addon (PQClean C)', wasm: 'pqclean WebAssembly (PQClean C)', noble: '@noble/post-quantum (pure JS)' } as const;

const seed = (s: string) => createHash('sha256').update(s).digest();

export async function benchMlDsa(opts: { quick?: boolean } = {}): Promise<BenchResult[]> {
  const ms = opts.quick ? 1000 : 3000;
  const results: BenchResult[] = [];
  const msg = randomBytes(120); // about a subtree/v1 message's size
  const ed = generateKeyPairSync('ed25519');
  const edSig = sign(null, msg, ed.privateKey);
  const kp = mldsa44KeyPairFromSeed(seed('bench ml-dsa'));
  const pqSig = mldsa44Sign(kp, msg);
  const chosen = mldsa44BackendName();

  const edSign = await perSecond(ms, () => void sign(null, msg, ed.privateKey));
  const edVerify = await perSecond(ms, () => void verify(null, msg, ed.publicKey, edSig));
  const verifyRate = new Map<string, number>();
  for (const backend of MLDSA44_BACKENDS) {
    try {
      useMlDsa44Backend(backend);
    } catch (e) {
      results.push({ name: `ML-DSA-44 ${backend}: not available (${(e as Error).message})`, value: NaN, unit: '' });
      continue;
    }
    const what = BACKEND_WORDS[backend];
    const pqSign = await perSecond(ms, () => void mldsa44Sign(kp, msg, randomBytes(32)));
    const pqVerify = await perSecond(ms, () => {
      if (!mldsa44Verify(kp.publicKey, msg, pqSig)) throw new Error('bench ML-DSA signature did not verify');
    });
    verifyRate.set(backend, pqVerify);
    const mark = backend === chosen ? ' [the default here]' : '';
    results.push({ name: `ML-DSA-44 sign, ${what}, hedged${mark}`, value: Math.round(pqSign), unit: 'signatures/s', baseline: Math.round(edSign) });
    results.push({ name: `ML-DSA-44 verify, ${what}${mark}`, value: Math.round(pqVerify), unit: 'verifications/s', baseline: Math.round(edVerify) });
  }
  useMlDsa44Backend(chosen);
  results.push({ name: 'Ed25519 sign (node:crypto, baseline)', value: Math.round(edSign), unit: 'signatures/s' });
  results.push({ name: 'Ed25519 verify (node:crypto, baseline)', value: Math.round(edVerify), unit: 'verifications/s' });

  // A tlog-proof with the log's ML-DSA cosignature and 3 ML-DSA witness cosignatures.
  const log = buildLog(opts.quick ? 1000 : 4096);
  const now = Math.floor(Date.now() / 1000);
  const origin = 'bench.example/log';
  const logPq = mldsaCosigner(origin, seed('bench log pq'), { timestamp: () => now });
  const witnesses = ['pq0', 'pq1', 'pq2'].map((w) => mldsaCosigner(w, seed(w), { timestamp: () => now }));
  const policy = parsePolicy(
    `log ${formatVerifierKey(origin, SIG_TYPE_MLDSA44, logPq.publicKey)}\n` +
      witnesses.map((w) => `witness ${w.name} ${formatVerifierKey(w.name, SIG_TYPE_MLDSA44, w.publicKey)}\n`).join('') +
      'group all-w all pq0 pq1 pq2\nquorum all-w\n',
  );
  const text = parseSignedNote(parseTlogProof(log.proofFor(0)).checkpoint).text;
  const checkpoint = signNote(text, [logPq, ...witnesses]);
  const proofs = Array.from({ length: 32 }, (_, k) => {
    const i = (k * 7919) % log.size;
    const p = parseTlogProof(log.proofFor(i));
    return { text: formatTlogProof({ ...p, checkpoint }), sha: createHash('sha256').update(`c${i}`).digest('hex'), i };
  });
  let k = 0;
  const verifyOnce = async (pol: typeof policy) => {
    const p = proofs[k++ % proofs.length]!;
    const r = await verifyArtifact({
      fileSha256: p.sha,
      want: { ecosystem: 'pypi', name: `pkg${p.i % 1000}`, version: `1.${p.i}` },
      policy: pol,
      registries: log.registries,
      proofText: p.text,
      nowMs: now * 1000,
    });
    if (!r.ok) throw new Error(`bench ML-DSA proof did not verify: ${JSON.stringify(r.toJSON())}`);
  };
  const cold = await perSecond(ms, () => verifyOnce({ ...policy }));
  useMlDsa44Backend('noble');
  const coldNoble = await perSecond(Math.min(ms, 1500), () => verifyOnce({ ...policy }));
  useMlDsa44Backend(chosen);
  results.push({
    name: `offline tlog-proof verify, ML-DSA log + 3 ML-DSA cosignatures (checkpoint re-verified each time; ${chosen})`,
    value: Math.round(cold * 10) / 10,
    unit: 'verifications/s',
    baseline: Math.round(coldNoble * 10) / 10,
    target: '≥ 500/s',
    pass: cold >= 500,
    note: `baseline: the same with @noble/post-quantum (pure JS); ${Math.round(verifyRate.get(chosen) ?? NaN)} ML-DSA verifications/s alone bound it at ${Math.round((verifyRate.get(chosen) ?? NaN) / 4)}/s`,
  });
  const shared = await perSecond(ms, () => verifyOnce(policy));
  results.push({ name: 'offline tlog-proof verify, ML-DSA checkpoint shared by the proofs (memoised)', value: Math.round(shared), unit: 'verifications/s' });
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await benchMlDsa({ quick: process.env.BENCH_QUICK === '1' })) {
    console.log(`${r.name}: ${r.value} ${r.unit}${r.baseline !== undefined ? ` (baseline ${r.baseline})` : ''}${r.pass === undefined ? '' : r.pass ? ' PASS' : ' FAIL'}`);
  }
}
