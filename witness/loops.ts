/**
 * The witness's background work: pull mode (poll configured logs that have a URL) and gossip (fetch each peer's
 * latest cosigned checkpoint of every log and check it against this witness's view). One pass at a time per loop;
 * the configuration is re-read from the store on every pass (the CLI may add logs and peers while running).
 */
import { parseVerifierKey, verifyNote, SIG_TYPE_COSIGNATURE_V1 } from '../core/note.ts';
import { fail } from '../core/errors.ts';
import { MAX_NOTE_SIZE } from '../core/note.ts';
import type { Witness } from './witness.ts';
import type { Fetch } from './log-client.ts';
import type { PeerConfig } from './store.ts';
import { request } from '../runtime/http.ts';
import { Periodic } from '../runtime/periodic.ts';

export interface LoopOptions {
  witness: Witness;
  pollIntervalMs: number;
  gossipIntervalMs: number;
  fetch?: Fetch;
  timeoutMs?: number;
}

export { Periodic };

/** One pull pass over every log with a URL. */
export async function pullOnce(witness: Witness): Promise<void> {
  for (const log of witness.store.listLogs()) {
    if (log.url === null) continue;
    try {
      const what = await witness.pull(log);
      if (what.startsWith('cosigned')) witness.log('info', `pull ${log.origin}: ${what}`);
      else if (what.startsWith('refused') || what.startsWith('log served')) witness.log('warn', `pull ${log.origin}: ${what}`);
    } catch (e) {
      witness.log('warn', `pull ${log.origin} from ${log.url}: ${(e as Error).message}`);
    }
  }
}

/** One gossip pass: every peer × every log. */
export async function gossipOnce(witness: Witness, fetchFn: Fetch = fetch, timeoutMs = 10_000): Promise<void> {
  const logs = witness.store.listLogs();
  for (const peer of witness.store.listPeers()) {
    for (const log of logs) {
      try {
        const note = await fetchPeerCheckpoint(peer, log.originHash, fetchFn, timeoutMs);
        if (note === null) continue;
        const v = await witness.checkCheckpoint(note, `gossip with ${peer.url}`);
        if (v.result === 'unknown') witness.log('info', `gossip ${log.origin} with ${peer.url}: ${v.reason}`);
      } catch (e) {
        witness.log('warn', `gossip ${log.origin} with ${peer.url}: ${(e as Error).message}`);
      }
    }
  }
}

/** The peer's latest cosigned checkpoint of a log (null if it has none), checked to carry the peer's valid cosignature. */
export async function fetchPeerCheckpoint(peer: PeerConfig, originHash: string, fetchFn: Fetch, timeoutMs: number): Promise<Buffer | null> {
  const base = peer.url.replace(/\/+$/, '');
  const res = await request(`${base}/${originHash}/checkpoint`, {}, { fetch: fetchFn, timeoutMs, maxBytes: MAX_NOTE_SIZE, userAgent: 'pkglog-witness' });
  if (res.status === 404) return null;
  if (res.status !== 200) fail('not_found', `HTTP ${res.status}`);
  const b = res.body;
  const pv = parseVerifierKey(peer.vkey);
  if (pv.type !== SIG_TYPE_COSIGNATURE_V1) fail('malformed', `peer key of ${peer.url} is not a cosigner key`);
  verifyNote(b, [pv]); // the peer must have cosigned what it serves (the log signature is checked by the witness)
  return b;
}

export function startLoops(opts: LoopOptions): { stop(): Promise<void> } {
  const { witness } = opts;
  const pull = new Periodic(() => pullOnce(witness), opts.pollIntervalMs).start();
  const gossip = new Periodic(() => gossipOnce(witness, opts.fetch ?? fetch, opts.timeoutMs), opts.gossipIntervalMs).start();
  return {
    async stop() {
      await Promise.all([pull.stop(), gossip.stop()]);
    },
  };
}
