/**
 * Submission signature checking on worker threads, so the event loop (parsing, SQLite, proofs, replies) and Ed25519
 * verification run on different cores. Same semantics as core/entry.ts verifySubmissionSignatures: the publisher
 * signature over publisherMessage, then the registry countersignature over registryMessage; an invalid key or
 * signature is a failed verification, reported with the same 'bad_signature' errors.
 *
 * Calls made in the same event-loop turn are coalesced into one message per worker (a batch request's 1,000 entries
 * travel as a few messages, single-entry requests arriving together share one), so the per-message cost stays small.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fail, PkglogError } from '../core/errors.ts';
import { publisherMessage, registryMessage, type Submission } from '../core/entry.ts';

/** Worker threads by default: one core is left to the event loop. */
export function defaultVerifyThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

// Plain JS (no TypeScript loader needed in the worker). Keys are cached as KeyObjects, as core/ed25519.ts does.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
function key(raw) {
  const id = Buffer.from(raw).toString('latin1');
  let k = keys.get(id);
  if (k === undefined) {
    if (raw.length !== 32) return null;
    try { k = createPublicKey({ key: Buffer.concat([SPKI, raw]), format: 'der', type: 'spki' }); } catch { k = null; }
    if (keys.size >= 4096) keys.clear();
    keys.set(id, k);
  }
  return k;
}
function ok(raw, msg, sig) {
  if (sig.length !== 64) return false;
  const k = key(raw);
  if (k === null) return false;
  try { return verify(null, msg, k, sig); } catch { return false; }
}
parentPort.on('message', ({ id, items }) => {
  // items: [publisherKey, publisherMessage, publisherSignature, registryKey, registryMessage, registrySignature] per entry
  const out = new Uint8Array(items.length / 6);
  for (let i = 0, j = 0; j < out.length; i += 6, j++) {
    out[j] = !ok(items[i], items[i + 1], items[i + 2]) ? 1 : !ok(items[i + 3], items[i + 4], items[i + 5]) ? 2 : 0;
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

interface Job {
  items: Uint8Array[];
  waiters: Array<{ resolve: () => void; reject: (e: unknown) => void; name: string }>;
}

export class VerifyPool {
  readonly threads: number;
  private readonly workers: Worker[];
  private readonly inflight = new Map<number, { job: Job; worker: number }>();
  private readonly load: number[];
  private queue: Job | undefined;
  private nextId = 1;
  private closed = false;

  constructor(threads = defaultVerifyThreads()) {
    this.threads = Math.max(1, Math.floor(threads));
    this.workers = [];
    this.load = [];
    for (let i = 0; i < this.threads; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on('message', (m: { id: number; out: Uint8Array }) => this.done(m.id, m.out));
      w.on('error', (e) => this.failWorker(i, e));
      this.workers.push(w);
      this.load.push(0);
    }
  }

  /** Resolves if both signatures of `s` verify (registryKey: the registry's Ed25519 key); else rejects 'bad_signature'. */
  verify(s: Submission, registryKey: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new PkglogError('overloaded', 'the log is shutting down'));
    const pm = publisherMessage(s);
    const rm = registryMessage(s, s.publisherKey, s.publisherSignature);
    return new Promise<void>((resolve, reject) => {
      if (this.queue === undefined) {
        this.queue = { items: [], waiters: [] };
        setImmediate(() => this.dispatch());
      }
      this.queue.items.push(s.publisherKey, pm, s.publisherSignature, registryKey, rm, s.registrySignature);
      this.queue.waiters.push({ resolve, reject, name: s.registryName });
    });
  }

  /** Sends the queued entries, split evenly over the workers (least loaded first). */
  private dispatch(): void {
    const q = this.queue;
    this.queue = undefined;
    if (q === undefined || q.waiters.length === 0) return;
    const n = q.waiters.length;
    const parts = Math.min(this.threads, Math.ceil(n / 64));
    const per = Math.ceil(n / parts);
    for (let p = 0; p < parts; p++) {
      const from = p * per;
      const to = Math.min(n, from + per);
      if (from >= to) break;
      const job: Job = { items: q.items.slice(from * 6, to * 6), waiters: q.waiters.slice(from, to) };
      let w = 0;
      for (let i = 1; i < this.threads; i++) if (this.load[i]! < this.load[w]!) w = i;
      const id = this.nextId++;
      this.inflight.set(id, { job, worker: w });
      this.load[w]! += to - from;
      this.workers[w]!.postMessage({ id, items: job.items });
    }
  }

  private done(id: number, out: Uint8Array): void {
    const f = this.inflight.get(id);
    if (f === undefined) return;
    this.inflight.delete(id);
    this.load[f.worker]! -= f.job.waiters.length;
    f.job.waiters.forEach((w, i) => {
      try {
        if (out[i] === 1) fail('bad_signature', 'publisher signature does not verify');
        if (out[i] === 2) fail('bad_signature', `registry signature by ${w.name} does not verify`);
        w.resolve();
      } catch (e) {
        w.reject(e);
      }
    });
  }

  private failWorker(worker: number, e: unknown): void {
    for (const [id, f] of this.inflight) {
      if (f.worker !== worker) continue;
      this.inflight.delete(id);
      for (const w of f.job.waiters) w.reject(e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dispatch();
    await Promise.all(this.workers.map((w) => w.terminate()));
    const err = new Error('verify pool closed');
    for (const f of this.inflight.values()) for (const w of f.job.waiters) w.reject(err);
    this.inflight.clear();
  }
}
