/**
 * Composes a running witness: data dir → store and key → Witness → HTTP app → listen, plus the pull and gossip loops.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fail } from '../core/errors.ts';
import { WitnessStore } from './store.ts';
import { loadOrCreateWitnessKey } from './keys.ts';
import { Witness, type Logger, type WitnessHooks } from './witness.ts';
import { createApp } from './app.ts';
import { startLoops } from './loops.ts';
import type { Fetch } from './log-client.ts';

export interface WitnessConfig {
  dataDir: string;
  /** host:port (port 0: any free port). */
  listen: string;
  name?: string;
  keyFile?: string;
  gossipIntervalMs?: number;
  pollIntervalMs?: number;
  log?: Logger;
  fetch?: Fetch;
  now?: () => number;
  hooks?: WitnessHooks;
}

export interface RunningWitness {
  url: string;
  vkey: string;
  witness: Witness;
  store: WitnessStore;
  server: Server;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(listen);
  if (m === null || Number(m[2]) > 65535) fail('malformed', `listen address must be host:port, got ${JSON.stringify(listen)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export const DEFAULT_GOSSIP_INTERVAL_MS = 60_000;
export const DEFAULT_POLL_INTERVAL_MS = 30_000;

export async function startWitness(cfg: WitnessConfig): Promise<RunningWitness> {
  const { host, port } = parseListen(cfg.listen);
  const store = WitnessStore.open(cfg.dataDir);
  let witness: Witness;
  try {
    const key = loadOrCreateWitnessKey(cfg.keyFile ?? join(cfg.dataDir, 'witness.key'), cfg.name);
    witness = new Witness({
      store,
      name: key.name,
      seed: key.seed,
      ...(cfg.now ? { now: cfg.now } : {}),
      ...(cfg.log ? { log: cfg.log } : {}),
      ...(cfg.fetch ? { fetch: cfg.fetch } : {}),
      ...(cfg.hooks ? { hooks: cfg.hooks } : {}),
    });
  } catch (e) {
    store.close();
    throw e;
  }
  const server = createServer({ keepAliveTimeout: 65_000 }, createApp({ witness }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const loops = startLoops({
    witness,
    pollIntervalMs: cfg.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    gossipIntervalMs: cfg.gossipIntervalMs ?? DEFAULT_GOSSIP_INTERVAL_MS,
    ...(cfg.fetch ? { fetch: cfg.fetch } : {}),
  });
  let closed: Promise<void> | undefined;
  return {
    url: `http://${h}:${addr.port}`,
    vkey: witness.vkey,
    witness,
    store,
    server,
    close() {
      closed ??= (async () => {
        await loops.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        store.close();
      })();
      return closed;
    },
  };
}
