/**
 * Submission signature checking on worker threads, so the event loop (parsing, SQLite, proofs, replies) and Ed25519
 * verification run on different cores. Same semantics as core/entry.ts verifySubmissionSignatures: the publisher
 * signature over publisherMessage, then the registry countersignature over registryMessage; an invalid key or
 * signature is a failed verification, reported with the same 'bad_signature' errors.
 *
 * Calls are coalesced into messages of up to CHUNK entries (a full chunk is sent at once, the rest at the end of the
 * event-loop turn), each one transferred ArrayBuffer, so the per-message cost stays small and the worker starts
 * verifying while the event loop is still parsing the requests that arrived together.
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
// A job is ONE transferred ArrayBuffer (no structured clone of thousands of small Buffers, each of which would drag its
// whole pooled backing store along): per entry, six fields — publisher key, publisher message, publisher signature,
// registry key, registry message, registry signature — each a u32 (big-endian) length and its bytes.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
function key(buf, off, len) {
  const id = buf.toString('latin1', off, off + len);
  let k = keys.get(id);
  if (k === undefined) {
    if (len !== 32) return null;
    try { k = createPublicKey({ key: Buffer.concat([SPKI, buf.subarray(off, off + len)]), format: 'der', type: 'spki' }); } catch { k = null; }
    if (keys.size >= 4096) keys.clear();
    keys.set(id, k);
  }
  return k;
}
parentPort.on('message', ({ id, n, data }) => {
  const buf = Buffer.from(data);
  const out = new Uint8Array(n);
  const at = new Array(12); // [start, length] of the six fields of one entry
  let off = 0;
  const ok = (f) => {
    const [k, kl, m, ml, s, sl] = [at[f], at[f + 1], at[f + 2], at[f + 3], at[f + 4], at[f + 5]];
    if (sl !== 64) return false;
    const kk = key(buf, k, kl);
    if (kk === null) return false;
    try { return verify(null, buf.subarray(m, m + ml), kk, buf.subarray(s, s + sl)); } catch { return false; }
  };
  for (let j = 0; j < n; j++) {
    for (let f = 0; f < 12; f += 2) {
      const len = buf.readUInt32BE(off);
      at[f] = off + 4;
      at[f + 1] = len;
      off += 4 + len;
    }
    out[j] = !ok(0) ? 1 : !ok(6) ? 2 : 0;
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

/** Entries per message: the worker starts on the first ones while the event loop is still parsing later requests. */
const CHUNK = 32;

interface Job {
  /** Six fields per entry (see WORKER_SOURCE). */
  items: Uint8Array[];
  bytes: number;
  waiters: Array<{ resolve: () => void; reject: (e: unknown) => void; name: string }>;
}

export class VerifyPool {
  readonly threads: number;
  private readonly workers: Worker[];
  private readonly inflight = new Map<number, { waiters: Job['waiters']; worker: number }>();
  private readonly load: number[];
  private queue: Job | undefined;
  private scheduled = false;
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
        this.queue = { items: [], bytes: 0, waiters: [] };
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(() => {
            this.scheduled = false;
            this.dispatch();
          });
        }
      }
      const q = this.queue;
      q.items.push(s.publisherKey, pm, s.publisherSignature, registryKey, rm, s.registrySignature);
      q.bytes += 24 + s.publisherKey.length + pm.length + s.publisherSignature.length + registryKey.length + rm.length + s.registrySignature.length;
      q.waiters.push({ resolve, reject, name: s.registryName });
      // Full chunks go at once (the worker verifies them while this thread parses the next requests).
      if (q.waiters.length >= CHUNK) this.dispatch();
    });
  }

  /** Sends the queued entries as one job to the least loaded worker. */
  private dispatch(): void {
    const q = this.queue;
    this.queue = undefined;
    if (q === undefined || q.waiters.length === 0) return;
    const data = new ArrayBuffer(q.bytes);
    const buf = Buffer.from(data);
    let off = 0;
    for (const it of q.items) {
      buf.writeUInt32BE(it.length, off);
      buf.set(it, off + 4);
      off += 4 + it.length;
    }
    let w = 0;
    for (let i = 1; i < this.threads; i++) if (this.load[i]! < this.load[w]!) w = i;
    const id = this.nextId++;
    this.inflight.set(id, { waiters: q.waiters, worker: w });
    this.load[w]! += q.waiters.length;
    this.workers[w]!.postMessage({ id, n: q.waiters.length, data }, [data]);
  }

  private done(id: number, out: Uint8Array): void {
    const f = this.inflight.get(id);
    if (f === undefined) return;
    this.inflight.delete(id);
    this.load[f.worker]! -= f.waiters.length;
    f.waiters.forEach((w, i) => {
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
      for (const w of f.waiters) w.reject(e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dispatch();
    await Promise.all(this.workers.map((w) => w.terminate()));
    const err = new Error('verify pool closed');
    for (const f of this.inflight.values()) for (const w of f.waiters) w.reject(err);
    this.inflight.clear();
  }
}
