/**
 * Submission signature checking on worker threads, so the event loop (parsing, SQLite, proofs, replies) and Ed25519
 * verification run on different cores. Same semantics as core/entry.ts verifySubmissionSignatures: the publisher
 * signature over publisherMessage, then the registry countersignature over registryMessage; an invalid key or
 * signature is a failed verification, reported with the same 'bad_signature' errors.
 *
 * Calls are coalesced into messages of up to CHUNK entries (a full chunk is sent at once, the rest at the end of the
 * event-loop turn), each one transferred ArrayBuffer, so the per-message cost stays small and the worker starts
 * verifying while the event loop is still parsing the requests that arrived together.
 *
 * No submission ever waits on a dead worker: a worker that exits or errors (or stops answering for `stallMs` while it
 * holds jobs, and is then terminated) is replaced at once (after a short, growing pause if it keeps dying right after
 * it started), and the jobs it held are sent again, once, to a live worker; a job whose second worker dies too is
 * refused with 503 'overloaded'. While no worker is alive, jobs are verified on the event loop (same answers).
 * `restarts` counts replaced workers.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fail, PkglogError } from '../core/errors.ts';
import { publisherMessage, registryMessage, verifySubmissionSignatures, type Submission } from '../core/entry.ts';

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
parentPort.on('message', ({ id, n, data, fault }) => {
  if (fault === 'exit') process.exit(70);
  if (fault === 'hang') for (;;);
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
/** Times a job is sent to a worker before its requests are refused (a worker died holding it each time). */
const MAX_ATTEMPTS = 2;
/** A worker that dies within this long of its start without having answered anything is replaced after a pause. */
const EARLY_DEATH_MS = 1000;
const MAX_RESPAWN_DELAY_MS = 5000;

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  name: string;
  /** Kept for a retry or a verification on the event loop. */
  submission: Submission;
  registryKey: Uint8Array;
}

interface Job {
  /** Six fields per entry (see WORKER_SOURCE). */
  items: Uint8Array[];
  bytes: number;
  waiters: Waiter[];
  attempts: number;
}

interface Slot {
  worker: Worker | undefined;
  /** Entries sent to this worker and not answered yet. */
  load: number;
  startedAt: number;
  /** The last time this worker answered a job, or was given work while idle. */
  lastProgress: number;
  answered: boolean;
  /** Consecutive early deaths (the respawn pause doubles with each). */
  earlyDeaths: number;
  respawnTimer: NodeJS.Timeout | undefined;
  /** The reason a test or the watchdog gave when terminating this worker. */
  terminating: string | undefined;
}

export interface VerifyPoolOptions {
  /** A worker holding jobs that has not answered for this long is terminated and replaced (default 30 s). */
  stallMs?: number;
  log?: (msg: string) => void;
  now?: () => number;
}

export class VerifyPool {
  readonly threads: number;
  /** Workers replaced since the pool started (a worker exited, errored, or stalled). */
  restarts = 0;
  private readonly slots: Slot[] = [];
  private readonly inflight = new Map<number, { job: Job; slot: number }>();
  private queue: Job | undefined;
  private scheduled = false;
  private nextId = 1;
  private closed = false;
  private readonly stallMs: number;
  private readonly log: (msg: string) => void;
  private readonly now: () => number;
  private watchdog: NodeJS.Timeout | undefined;
  private faults: Array<'exit' | 'hang'> = [];

  constructor(threads = defaultVerifyThreads(), options: VerifyPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(threads));
    this.stallMs = options.stallMs ?? 30_000;
    this.log = options.log ?? (() => {});
    this.now = options.now ?? Date.now;
    for (let i = 0; i < this.threads; i++) {
      this.slots.push({
        worker: undefined, load: 0, startedAt: 0, lastProgress: 0, answered: false, earlyDeaths: 0, respawnTimer: undefined, terminating: undefined,
      });
      this.spawn(i);
    }
  }

  /** Resolves if both signatures of `s` verify (registryKey: the registry's Ed25519 key); else rejects 'bad_signature'. */
  verify(s: Submission, registryKey: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new PkglogError('overloaded', 'the log is shutting down'));
    const pm = publisherMessage(s);
    const rm = registryMessage(s, s.publisherKey, s.publisherSignature);
    return new Promise<void>((resolve, reject) => {
      if (this.queue === undefined) {
        this.queue = { items: [], bytes: 0, waiters: [], attempts: 0 };
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(() => {
            this.scheduled = false;
            this.dispatchQueued();
          });
        }
      }
      const q = this.queue;
      q.items.push(s.publisherKey, pm, s.publisherSignature, registryKey, rm, s.registrySignature);
      q.bytes += 24 + s.publisherKey.length + pm.length + s.publisherSignature.length + registryKey.length + rm.length + s.registrySignature.length;
      q.waiters.push({ resolve, reject, name: s.registryName, submission: s, registryKey });
      // Full chunks go at once (the worker verifies them while this thread parses the next requests).
      if (q.waiters.length >= CHUNK) this.dispatchQueued();
    });
  }

  /** The thread id of worker `i` (undefined while it is being replaced): lets a test see a replacement. */
  threadId(i: number): number | undefined {
    return this.slots[i]?.worker?.threadId;
  }

  /** Submissions sent to workers and not answered yet. */
  get inFlight(): number {
    return this.slots.reduce((n, s) => n + s.load, 0);
  }

  /** Workers alive now. */
  get alive(): number {
    return this.slots.filter((s) => s.worker !== undefined).length;
  }

  /**
   * Test hook: terminates worker `i` as a crash would (the pool is not told why: it sees the worker exit). Resolves
   * once the worker is gone: true, or false if there was no live worker `i` (it is being replaced).
   */
  async terminateWorker(i = 0): Promise<boolean> {
    const w = this.slots[i]?.worker;
    if (w === undefined) return false;
    await w.terminate();
    return true;
  }

  /** Test hook: the next `count` jobs make the worker that receives them exit (or hang, spinning) instead of answering. */
  failNextJobs(count: number, how: 'exit' | 'hang' = 'exit'): void {
    for (let i = 0; i < count; i++) this.faults.push(how);
  }

  private spawn(i: number): void {
    const slot = this.slots[i]!;
    slot.respawnTimer = undefined;
    if (this.closed) return;
    let w: Worker;
    try {
      w = new Worker(WORKER_SOURCE, { eval: true });
    } catch (e) {
      this.log(`signature worker ${i} could not start: ${(e as Error)?.message ?? String(e)}`);
      this.scheduleRespawn(i);
      return;
    }
    w.unref();
    const t = this.now();
    Object.assign(slot, { worker: w, load: 0, startedAt: t, lastProgress: t, answered: false, terminating: undefined });
    let error: unknown;
    w.on('message', (m: { id: number; out: Uint8Array }) => {
      if (slot.worker !== w) return;
      slot.answered = true;
      slot.earlyDeaths = 0;
      slot.lastProgress = this.now();
      this.done(m.id, m.out);
    });
    w.on('error', (e) => {
      error = e;
    });
    w.on('exit', (code) => {
      if (slot.worker !== w) return;
      const why = slot.terminating ?? (error !== undefined ? `failed: ${(error as Error)?.message ?? String(error)}` : `exited with code ${code}`);
      this.workerDied(i, why);
    });
  }

  private scheduleRespawn(i: number): void {
    const slot = this.slots[i]!;
    if (this.closed || slot.respawnTimer !== undefined) return;
    const delay = Math.min(MAX_RESPAWN_DELAY_MS, 100 * 2 ** Math.max(0, slot.earlyDeaths - 1));
    slot.respawnTimer = setTimeout(() => this.spawn(i), delay);
    slot.respawnTimer.unref();
  }

  /** Worker i is gone: replace it and send its jobs again (or refuse them after MAX_ATTEMPTS). */
  private workerDied(i: number, why: string): void {
    const slot = this.slots[i]!;
    slot.worker = undefined;
    slot.load = 0;
    const orphans: Job[] = [];
    for (const [id, f] of this.inflight) {
      if (f.slot !== i) continue;
      this.inflight.delete(id);
      orphans.push(f.job);
    }
    if (this.closed) {
      for (const job of orphans) this.refuse(job, 'the log is shutting down');
      return;
    }
    this.restarts++;
    const early = !slot.answered && this.now() - slot.startedAt < EARLY_DEATH_MS;
    slot.earlyDeaths = early ? slot.earlyDeaths + 1 : 0;
    const entries = orphans.reduce((n, j) => n + j.waiters.length, 0);
    this.log(`signature worker ${i} ${why}; replacing it (restart ${this.restarts}), ${entries} submission(s) it held are retried`);
    if (slot.earlyDeaths > 0) this.scheduleRespawn(i);
    else this.spawn(i);
    for (const job of orphans) {
      if (job.attempts >= MAX_ATTEMPTS) this.refuse(job, 'signature verification failed: its worker stopped twice; retry');
      else this.send(job);
    }
  }

  private refuse(job: Job, message: string): void {
    const err = new PkglogError('overloaded', message);
    for (const w of job.waiters) w.reject(err);
  }

  /** Sends the queued entries as one job. */
  private dispatchQueued(): void {
    const q = this.queue;
    this.queue = undefined;
    if (q === undefined || q.waiters.length === 0) return;
    this.send(q);
  }

  /** Sends a job to the least loaded live worker, or verifies it here if none is alive. */
  private send(job: Job): void {
    let best = -1;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (s.worker !== undefined && (best < 0 || s.load < this.slots[best]!.load)) best = i;
    }
    if (best < 0) {
      this.verifyHere(job);
      return;
    }
    const slot = this.slots[best]!;
    const data = new ArrayBuffer(job.bytes);
    const buf = Buffer.from(data);
    let off = 0;
    for (const it of job.items) {
      buf.writeUInt32BE(it.length, off);
      buf.set(it, off + 4);
      off += 4 + it.length;
    }
    const id = this.nextId++;
    job.attempts++;
    this.inflight.set(id, { job, slot: best });
    if (slot.load === 0) slot.lastProgress = this.now();
    slot.load += job.waiters.length;
    const fault = this.faults.shift();
    slot.worker!.postMessage({ id, n: job.waiters.length, data, ...(fault ? { fault } : {}) }, [data]);
    this.armWatchdog();
  }

  /** The same checks as the workers', on the event loop (only while no worker is alive). */
  private verifyHere(job: Job): void {
    for (const w of job.waiters) {
      try {
        verifySubmissionSignatures(w.submission, w.registryKey);
        w.resolve();
      } catch (e) {
        w.reject(e);
      }
    }
  }

  private armWatchdog(): void {
    if (this.watchdog !== undefined || this.closed) return;
    this.watchdog = setInterval(() => this.checkStalls(), Math.max(10, Math.floor(this.stallMs / 4)));
    this.watchdog.unref();
  }

  /** Terminates workers that hold jobs and have not answered for stallMs (their exit replaces them). */
  private checkStalls(): void {
    if (this.inflight.size === 0) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
      return;
    }
    const t = this.now();
    for (const slot of this.slots) {
      if (slot.worker === undefined || slot.load === 0 || slot.terminating !== undefined) continue;
      if (t - slot.lastProgress < this.stallMs) continue;
      slot.terminating = `did not answer for ${t - slot.lastProgress} ms`;
      void slot.worker.terminate();
    }
  }

  private done(id: number, out: Uint8Array): void {
    const f = this.inflight.get(id);
    if (f === undefined) return;
    this.inflight.delete(id);
    this.slots[f.slot]!.load -= f.job.waiters.length;
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.dispatchQueued();
    this.closed = true;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    for (const s of this.slots) clearTimeout(s.respawnTimer);
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
    const orphans = [...this.inflight.values()];
    this.inflight.clear();
    for (const f of orphans) this.refuse(f.job, 'the log is shutting down');
  }
}
