/**
 * The signature-checking baseline: raw node:crypto Ed25519 verification (KeyObjects built once, as the log caches
 * them) of real submission signatures, on `threads` worker threads at once. Returns verifications per second (total).
 */
import { Worker } from 'node:worker_threads';

export interface VerifyItem {
  publicKey: Buffer;
  message: Buffer;
  signature: Buffer;
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
const items = workerData.items.map((it) => {
  const id = Buffer.from(it.publicKey).toString('hex');
  let k = keys.get(id);
  if (!k) keys.set(id, (k = createPublicKey({ key: Buffer.concat([SPKI, Buffer.from(it.publicKey)]), format: 'der', type: 'spki' })));
  return { k, m: Buffer.from(it.message), s: Buffer.from(it.signature) };
});
parentPort.once('message', ({ durationMs }) => {
  const t0 = performance.now();
  let n = 0, bad = 0;
  while (performance.now() - t0 < durationMs) {
    for (let i = 0; i < 16; i++) {
      const it = items[n % items.length];
      if (!verify(null, it.m, it.k, it.s)) bad++;
      n++;
    }
  }
  parentPort.postMessage({ n, bad, ms: performance.now() - t0 });
});
parentPort.postMessage('ready');
`;

/** Verifications per second on `threads` threads running concurrently. */
export async function verifyRate(items: VerifyItem[], threads: number, durationMs: number): Promise<number> {
  const plain = items.map((i) => ({ publicKey: new Uint8Array(i.publicKey), message: new Uint8Array(i.message), signature: new Uint8Array(i.signature) }));
  const workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true, workerData: { items: plain } }));
  try {
    await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
    const results = await Promise.all(workers.map((w) => new Promise<{ n: number; bad: number; ms: number }>((r) => {
      w.once('message', r);
      w.postMessage({ durationMs });
    })));
    if (results.some((r) => r.bad > 0)) throw new Error('baseline verification failed on a valid signature');
    return results.reduce((a, r) => a + (r.n * 1000) / r.ms, 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
