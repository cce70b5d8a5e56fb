/**
 * Gossip: hand the checkpoint the client used to each policy witness (POST <witness>/v1/gossip) and ask whether it is
 * consistent with what that witness cosigned. A reported fork counts only if its evidence verifies against the log key;
 * the witness's own latest checkpoint is also checked against ours when a log is at hand.
 */
import { parseEvidence, verifyEvidence, formatEvidence } from '../core/evidence.ts';
import { verifyNote } from '../core/note.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import type { Policy } from '../core/policy.ts';
import { MAX_GOSSIP_REPLY, type LogClient } from './http.ts';
import { request, normalizeBaseURL, parseJSON } from '../runtime/http.ts';
import { proveConsistent } from './consistency.ts';
import type { ForkFinding } from './fork.ts';

export interface GossipResult {
  witness: string;
  status: 'ok' | 'unknown' | 'fork' | 'error';
  detail: string;
  fork?: ForkFinding;
}

export async function gossipCheckpoint(
  policy: Policy,
  current: { signed: string; checkpoint: Checkpoint },
  log: LogClient | undefined,
): Promise<{ results: GossipResult[] }> {
  const origin = current.checkpoint.origin;
  const logVerifiers = policy.logs.filter((l) => l.verifier.name === origin).map((l) => l.verifier);
  const results: GossipResult[] = [];
  for (const w of policy.witnesses) {
    if (w.url === undefined) continue;
    const url = `${normalizeBaseURL(w.url)}/v1/gossip`;
    let j: Record<string, unknown>;
    try {
      const res = await request(url, { method: 'POST', body: current.signed }, { maxBytes: MAX_GOSSIP_REPLY });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200).trim()}`);
      j = parseJSON(res.body, url);
    } catch (e) {
      results.push({ witness: w.name, status: 'error', detail: (e as Error).message });
      continue;
    }
    const reason = typeof j.reason === 'string' ? j.reason : '';
    if (j.result === 'fork' && j.evidence !== undefined) {
      try {
        const text = typeof j.evidence === 'string' ? j.evidence : JSON.stringify(j.evidence);
        const ev = parseEvidence(text);
        const summary = logVerifiers.map((v) => {
          try {
            return verifyEvidence(ev, v);
          } catch {
            return undefined;
          }
        }).find((s) => s !== undefined);
        if (summary !== undefined) {
          results.push({ witness: w.name, status: 'fork', detail: reason, fork: { origin, message: `witness ${w.name} reports a fork: ${summary.description}`, evidence: formatEvidence(ev) } });
          continue;
        }
        results.push({ witness: w.name, status: 'error', detail: `reported a fork whose evidence does not verify against the log key` });
      } catch (e) {
        results.push({ witness: w.name, status: 'error', detail: `reported a fork with malformed evidence: ${(e as Error).message}` });
      }
      continue;
    }
    // Check the witness's latest cosigned checkpoint against ours ourselves, when it sent one.
    if (typeof j.checkpoint === 'string' && log !== undefined && logVerifiers.length > 0) {
      try {
        const v = verifyNote(j.checkpoint, logVerifiers);
        const theirs = { signed: j.checkpoint, checkpoint: parseCheckpoint(v.note.text) };
        const [a, b] = theirs.checkpoint.treeSize <= current.checkpoint.treeSize ? [theirs, current] : [current, theirs];
        const fork = await proveConsistent(a, b, log);
        if (fork !== undefined) {
          results.push({ witness: w.name, status: 'fork', detail: fork.message, fork: { ...fork, message: `the checkpoint witness ${w.name} cosigned contradicts ours: ${fork.message}` } });
          continue;
        }
      } catch {
        // fall through to the witness's own verdict
      }
    }
    if (j.result === 'consistent') results.push({ witness: w.name, status: 'ok', detail: reason });
    else if (j.result === 'unknown') results.push({ witness: w.name, status: 'unknown', detail: reason });
    else results.push({ witness: w.name, status: 'error', detail: `unexpected answer ${JSON.stringify(j.result)}` });
  }
  return { results };
}
