/**
 * The main thread's side of the index worker (server/index-worker.ts): starts it, tells it the log's public size after
 * each commit, signs the output checkpoints it asks for — only while the signing guard allows, never a size below
 * or a root different from one already signed — and hands each committed revision to the read side (the Indexer
 * that serves bundles, the output log's high-water mark and witnessing). A worker that dies is started again; what it
 * committed is in the index database, what it had not committed is redone from there.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { fail, PkglogError } from '../core/errors.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { parseSignedNote, signNote, type Signer } from '../core/note.ts';
import type { IndexHead } from '../log-store/index-store.ts';
import type { Indexer } from './indexer.ts';
import type { IndexWorkerData } from './index-worker.ts';

export interface IndexWriterOptions {
  data: IndexWorkerData;
  signer: Signer;
  /** The read side: adopts each committed revision. */
  indexer: Indexer;
  publicSize(): number;
  /** Why the log may not sign now (undefined: it may). */
  stoppedReason(): string | undefined;
  log(msg: string): void;
}

type Msg = { type: string; id?: number; text?: string; head?: IndexHead; note?: string; msg?: string; error?: string };

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
function headOf(h: IndexHead): IndexHead {
  return { ...h, mapRoot: asBuffer(h.mapRoot), outputRoot: asBuffer(h.outputRoot) };
}

/** The ESM entry of tsx's register API (from its package.json exports), for a worker started from source. */
function tsxEsmApi(): string {
  const pkgFile = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(join(dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

export class IndexWriter {
  private worker: Worker | undefined;
  private closing = false;
  private ready: Promise<void> | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();
  private closed: (() => void) | undefined;
  /** The newest checkpoint this process signed for the index log: never one smaller, never another root at its size. */
  private lastSigned: { treeSize: number; rootHash: Buffer } | undefined;
  restarts = 0;

  constructor(private readonly o: IndexWriterOptions) {
    this.start();
  }

  private start(): void {
    const fromSource = import.meta.url.endsWith('.ts');
    const url = new URL(`./index-worker${fromSource ? '.ts' : '.js'}`, import.meta.url);
    // Shipped: the compiled worker. From source (tests, benchmarks under tsx): register tsx in the worker first.
    const w = fromSource
      ? new Worker(`import(${JSON.stringify(tsxEsmApi())}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true, workerData: this.o.data })
      : new Worker(url, { workerData: this.o.data });
    this.worker = w;
    this.ready = new Promise<void>((resolve) => {
      w.on('message', (m: Msg) => {
        if (m.type === 'ready') {
          if (m.error !== undefined) {
            // Not retried: the index database cannot be used as it is (the message says why); the log keeps running.
            this.o.log(`index: ${m.error}`);
            this.closing = true;
            void w.terminate();
          } else if (m.head !== undefined && m.note !== undefined) this.adopt(m.head, m.note);
          resolve();
        } else this.onMessage(m);
      });
    });
    w.on('error', (e) => this.o.log(`index: worker error: ${e.message}`));
    w.on('exit', (code) => {
      this.worker = undefined;
      for (const p of this.waiting.values()) p.reject(new PkglogError('overloaded', `the index worker exited (${code})`));
      this.waiting.clear();
      if (this.closing) {
        this.closed?.();
        return;
      }
      this.restarts++;
      this.o.log(`index: the worker exited (${code}); starting it again in 1 s`);
      setTimeout(() => {
        if (!this.closing) {
          this.start();
          this.notify();
        }
      }, 1000).unref();
    });
  }

  private adopt(head: IndexHead, note: string): void {
    const h = headOf(head);
    const cp = parseCheckpoint(parseSignedNote(note).text);
    if (this.lastSigned === undefined || cp.treeSize > this.lastSigned.treeSize) this.lastSigned = { treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash) };
    this.o.indexer.adopt(h, note);
  }

  private onMessage(m: Msg): void {
    switch (m.type) {
      case 'sign': {
        let reply: Record<string, unknown>;
        try {
          reply = { type: 'signed', id: m.id, note: this.sign(m.text!) };
        } catch (e) {
          const err = e instanceof PkglogError ? e : new PkglogError('internal', (e as Error).message);
          reply = { type: 'signed', id: m.id, error: { code: err.code, message: err.message } };
        }
        this.worker?.postMessage(reply);
        break;
      }
      case 'revision':
        this.adopt(m.head!, m.note!);
        break;
      case 'caughtUp': {
        const p = this.waiting.get(m.id!);
        this.waiting.delete(m.id!);
        p?.resolve();
        break;
      }
      case 'log':
        this.o.log(m.msg!);
        break;
      case 'closed':
        void this.worker?.terminate();
        break;
    }
  }

  /** Signs the worker's checkpoint text, if the log may sign and it contradicts nothing signed before. */
  private sign(text: string): string {
    const why = this.o.stoppedReason();
    if (why !== undefined) fail('unsafe_state', `the log may not sign: ${why}`);
    const cp = parseCheckpoint(text);
    if (cp.origin !== this.o.signer.name) fail('internal', `the index worker asked to sign for origin ${cp.origin}`);
    const last = this.lastSigned;
    if (last !== undefined && (cp.treeSize < last.treeSize || (cp.treeSize === last.treeSize && !last.rootHash.equals(cp.rootHash)))) {
      fail('unsafe_state', `refusing to sign index checkpoint ${cp.treeSize}: size ${last.treeSize} is already signed${cp.treeSize === last.treeSize ? ' with another root' : ''}`);
    }
    const note = signNote(text, [this.o.signer]);
    this.lastSigned = { treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash) };
    return note;
  }

  /** The log committed a batch: the worker catches up in the background. */
  notify(): void {
    this.worker?.postMessage({ type: 'notify', publicSize: this.o.publicSize() });
  }

  /** Resolves once the index covers the log's public size as of now. */
  async caughtUp(): Promise<void> {
    // A worker being started again (1 s after it died): wait for it.
    for (let i = 0; i < 50 && this.worker === undefined && !this.closing; i++) await new Promise((r) => setTimeout(r, 100));
    await this.ready;
    const w = this.worker;
    if (w === undefined) fail('overloaded', 'the index worker is not running');
    const id = this.nextId++;
    const done = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    w.postMessage({ type: 'caughtUp', id, publicSize: this.o.publicSize() });
    await done;
  }

  /** Stores cosignatures of the output log (the worker is the index database's only writer). */
  addCosignatures(treeSize: number, lines: Array<{ keyName: string; keyId: Buffer; line: string }>): void {
    this.worker?.postMessage({ type: 'cosignatures', treeSize, lines });
  }

  async close(): Promise<void> {
    this.closing = true;
    const w = this.worker;
    if (w === undefined) return;
    const exited = new Promise<void>((resolve) => (this.closed = resolve));
    w.postMessage({ type: 'close' });
    await exited;
  }
}
