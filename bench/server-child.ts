/**
 * The server side of the benchmark, run in a child process so the load generator's CPU does not pollute it.
 * Both the bare-handler baseline and the log run here, started the same way, and are measured the same way.
 *
 * The witness (mode 'witness', a prepared data dir) runs here too, against the same bare baseline.
 * IPC: the parent sends {cmd: 'start', mode: 'bare' | 'log' | 'witness', dataDir?, batchIntervalMs?, verifyThreads?}; the child answers
 * {url, startupMs} (startupMs: from calling startLog until it listens). {cmd: 'rss'} → {rss}; {cmd: 'cpu'} → {cpu} (user + system µs so far); {cmd: 'stop'} exits.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { startLog, type RunningLog } from '../server/main.ts';
import { resolveConfig } from '../server/config.ts';
import { MAX_BATCH_BODY, MAX_BODY } from '../server/app.ts';
import { startWitness, type RunningWitness } from '../witness/main.ts';
import { MAX_ADD_CHECKPOINT_BODY } from '../core/witness-protocol.ts';

export interface StartMsg {
  cmd: 'start';
  mode: 'bare' | 'log' | 'witness';
  dataDir?: string;
  batchIntervalMs?: number;
  /** Verification worker threads of the log (default: the server's own default, cores − 1). */
  verifyThreads?: number;
  /** The log also publishes into this directory (--publish-dir; bench/publish.ts). */
  publishDir?: string;
  /** The log keeps the package index (--index; bench/index-server.ts). */
  index?: boolean;
  /** The witness's cosignatures (default: the witness's default, Ed25519 and ML-DSA-44). */
  cosign?: { ed25519: boolean; mldsa: boolean };
}

/** The bare-handler baseline: express, one JSON-parsing POST route and one GET route, each answering a small JSON. */
function bareApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  let n = 0;
  app.post('/v1/entries', express.json({ limit: MAX_BODY, strict: true, type: () => true }), (req, res) => {
    res.json({ index: n++, ok: typeof req.body === 'object' });
  });
  app.post('/v1/entries/batch', express.json({ limit: MAX_BATCH_BODY, strict: true, type: () => true }), (req, res) => {
    res.json({ index: n++, ok: typeof req.body === 'object' });
  });
  app.post('/add-checkpoint', express.raw({ type: () => true, limit: MAX_ADD_CHECKPOINT_BODY }), (req, res) => {
    res.status(200).type('text/plain').send(`— bench.example/bare ${Buffer.isBuffer(req.body) ? req.body.length : 0}\n`);
  });
  app.get(/^\/.*$/, (_req, res) => {
    res.json({ index: n++, ok: true });
  });
  return app;
}

let running: RunningLog | undefined;
let witness: RunningWitness | undefined;
let bare: Server | undefined;

process.on('message', async (msg: StartMsg | { cmd: 'rss' } | { cmd: 'cpu' } | { cmd: 'stop' }) => {
  try {
    if (msg.cmd === 'start') {
      if (msg.mode === 'bare') {
        const app = bareApp();
        const t0 = performance.now();
        bare = await new Promise<Server>((resolve) => {
          const s = app.listen(0, '127.0.0.1', () => resolve(s));
        });
        bare.keepAliveTimeout = 65_000;
        const a = bare.address() as AddressInfo;
        process.send!({ url: `http://127.0.0.1:${a.port}`, startupMs: performance.now() - t0 });
      } else if (msg.mode === 'witness') {
        const t0 = performance.now();
        witness = await startWitness({ dataDir: msg.dataDir!, listen: '127.0.0.1:0', name: 'bench.example/witness', log: () => {}, ...(msg.cosign ? { cosign: msg.cosign } : {}) });
        process.send!({ url: witness.url, startupMs: performance.now() - t0 });
      } else {
        const config = resolveConfig({
          dataDir: msg.dataDir!, listen: '127.0.0.1:0',
          ...(msg.batchIntervalMs !== undefined ? { batchInterval: String(msg.batchIntervalMs) } : {}),
          ...(msg.verifyThreads !== undefined ? { verifyThreads: String(msg.verifyThreads) } : {}),
          ...(msg.publishDir !== undefined ? { publishDir: msg.publishDir } : {}),
          ...(msg.index === true ? { index: true } : {}),
        }, {});
        const t0 = performance.now();
        running = await startLog(config, (m) => console.error(`[log] ${m}`));
        const startupMs = performance.now() - t0;
        process.send!({ url: running.url, startupMs, treeSize: (await running.store.treeState())!.treeSize });
      }
    } else if (msg.cmd === 'rss') {
      process.send!({ rss: process.memoryUsage().rss });
    } else if (msg.cmd === 'cpu') {
      const c = process.cpuUsage();
      process.send!({ cpu: c.user + c.system });
    } else if (msg.cmd === 'stop') {
      await running?.close();
      await witness?.close();
      bare?.closeAllConnections();
      bare?.close();
      process.exit(0);
    }
  } catch (e) {
    process.send!({ error: String((e as Error)?.stack ?? e) });
  }
});
process.send!({ ready: true });
