/**
 * Minimum age (--min-age): the artifact provably existed in the log at least that long ago. Proven when a quorum of
 * witnesses cosigned, at or before the cutoff, a checkpoint that includes the entry (inclusion proof in that old
 * checkpoint) and that is a prefix of the current one (consistency proof). First tried offline with the cosignatures
 * on the current checkpoint, then with each witness's history (GET /v1/history/<sha256(origin)>?before=<cutoff>).
 */
import { createHash } from 'node:crypto';
import { isPkglogError } from '../core/errors.ts';
import { verifyInclusion } from '../core/merkle.ts';
import { verifyNote } from '../core/note.ts';
import { cosignatureTimestamp } from '../core/cosignature.ts';
import { parseCheckpoint, type Checkpoint } from '../core/checkpoint.ts';
import { quorumSatisfied, type Policy, type PolicyWitness } from '../core/policy.ts';
import type { Hash } from '../core/types.ts';
import { MAX_HISTORY_REPLY, type LogClient } from './http.ts';
import { request, normalizeBaseURL } from '../runtime/http.ts';
import { allCosignatures, isoSeconds, formatDuration } from './trust.ts';
import { proveConsistent } from './consistency.ts';
import type { ForkFinding } from './fork.ts';

export interface MinAgeInput {
  policy: Policy;
  index: number;
  leafHash: Hash;
  current: { signed: string; checkpoint: Checkpoint };
  log: LogClient | undefined;
  nowMs: number;
  minAgeSeconds: number;
}

export interface WitnessAge {
  witness: string;
  ok: boolean;
  detail: string;
  timestamp?: number;
  treeSize?: number;
}

export interface MinAgeResult {
  ok: boolean;
  message: string;
  witnesses: WitnessAge[];
  fork?: ForkFinding;
}

async function fetchHistory(w: PolicyWitness, origin: string, before: number): Promise<string | undefined> {
  const url = `${normalizeBaseURL(w.url!)}/v1/history/${createHash('sha256').update(origin, 'utf8').digest('hex')}?before=${before}`;
  const res = await request(url, {}, { maxBytes: MAX_HISTORY_REPLY });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return res.body.toString('utf8');
}

export async function checkMinAge(inp: MinAgeInput): Promise<MinAgeResult> {
  const { policy, index, current } = inp;
  const cutoff = Math.floor(inp.nowMs / 1000) - inp.minAgeSeconds;
  const age = formatDuration(inp.minAgeSeconds);
  const origin = current.checkpoint.origin;
  if (policy.quorum.kind === 'none') {
    return { ok: false, witnesses: [], message: `cannot prove a minimum age: the policy has no witness quorum (quorum none), so no cosignature timestamps vouch for the time` };
  }
  const results = new Map<string, WitnessAge>();
  // 1. Offline: cosignatures on the checkpoint we already hold.
  for (const c of allCosignatures(policy, current.signed)) {
    if (c.timestamp <= cutoff && !results.get(c.witness.name)?.ok) {
      results.set(c.witness.name, { witness: c.witness.name, ok: true, timestamp: c.timestamp, treeSize: current.checkpoint.treeSize, detail: `cosigned size ${current.checkpoint.treeSize} at ${isoSeconds(c.timestamp)}` });
    }
  }
  const qualified = () => new Set([...results.values()].filter((r) => r.ok).map((r) => r.witness));
  const done = (): MinAgeResult => ({
    ok: true,
    witnesses: [...results.values()],
    message: `entry ${index} was in checkpoints cosigned at least ${age} ago (before ${isoSeconds(cutoff)}) by a quorum: ${[...qualified()].join(', ')}`,
  });
  if (quorumSatisfied(policy.quorum, qualified())) return done();
  // 2. Online: each witness's newest cosigned checkpoint at or before the cutoff.
  if (inp.log !== undefined) {
    const logVerifiers = policy.logs.filter((l) => l.verifier.name === origin).map((l) => l.verifier);
    for (const w of policy.witnesses) {
      if (results.get(w.name)?.ok) continue;
      if (w.url === undefined) {
        results.set(w.name, { witness: w.name, ok: false, detail: 'no URL in the policy to ask for its history' });
        continue;
      }
      let signed: string | undefined;
      try {
        signed = await fetchHistory(w, origin, cutoff);
      } catch (e) {
        results.set(w.name, { witness: w.name, ok: false, detail: `history unavailable: ${(e as Error).message}` });
        continue;
      }
      if (signed === undefined) {
        results.set(w.name, { witness: w.name, ok: false, detail: `cosigned no checkpoint of this log before ${isoSeconds(cutoff)}` });
        continue;
      }
      const r = await checkWitnessCheckpoint(inp, w, signed, cutoff, logVerifiers);
      if ('fork' in r) return { ok: false, witnesses: [...results.values()], message: r.fork.message, fork: r.fork };
      results.set(w.name, r);
      if (quorumSatisfied(policy.quorum, qualified())) return done();
    }
  }
  const why = [...results.values()].map((r) => `${r.witness}: ${r.detail}`);
  const hint = inp.log === undefined ? ' (offline: only the proof\'s own cosignatures were considered; give --log to ask the witnesses\' history)' : '';
  return {
    ok: false,
    witnesses: [...results.values()],
    message: `entry ${index} is not provably ${age} old: no quorum of witnesses cosigned a checkpoint containing it before ${isoSeconds(cutoff)}${hint}` +
      (why.length ? `\n${why.join('\n')}` : ''),
  };
}

async function checkWitnessCheckpoint(
  inp: MinAgeInput,
  w: PolicyWitness,
  signed: string,
  cutoff: number,
  logVerifiers: ReturnType<typeof verifyNote>['verified'][number]['verifier'][],
): Promise<WitnessAge | { fork: ForkFinding }> {
  const bad = (detail: string): WitnessAge => ({ witness: w.name, ok: false, detail });
  let cp: Checkpoint;
  let ts = -1;
  try {
    const v = verifyNote(signed, [...logVerifiers, w.verifier]);
    if (!v.verified.some((x) => logVerifiers.includes(x.verifier))) return bad('its historical checkpoint is not signed by the log');
    for (const sig of v.note.signatures) {
      if (sig.name === w.verifier.name && sig.keyId.equals(w.verifier.keyId)) {
        const t = cosignatureTimestamp(sig);
        if (t <= cutoff) ts = Math.max(ts, t);
      }
    }
    cp = parseCheckpoint(v.note.text);
  } catch (e) {
    return bad(`its historical checkpoint does not verify: ${(e as Error).message}`);
  }
  if (ts < 0) return bad(`its historical checkpoint has no cosignature of it dated before ${isoSeconds(cutoff)}`);
  if (cp.origin !== inp.current.checkpoint.origin) return bad('its historical checkpoint is for another origin');
  if (cp.treeSize <= inp.index) {
    return { witness: w.name, ok: false, timestamp: ts, treeSize: cp.treeSize, detail: `newest checkpoint it cosigned before the cutoff (size ${cp.treeSize}, ${isoSeconds(ts)}) does not yet contain entry ${inp.index}` };
  }
  const log = inp.log!;
  try {
    verifyInclusion(inp.index, cp.treeSize, inp.leafHash, await log.inclusionProof(inp.index, cp.treeSize, cp.rootHash), cp.rootHash);
  } catch (e) {
    if (isPkglogError(e, 'invalid_proof')) return bad(`the entry's inclusion in its size-${cp.treeSize} checkpoint does not verify`);
    return bad(`cannot get an inclusion proof for size ${cp.treeSize}: ${(e as Error).message}`);
  }
  const old = { signed, checkpoint: cp };
  const [a, b] = cp.treeSize <= inp.current.checkpoint.treeSize ? [old, inp.current] : [inp.current, old];
  const fork = await proveConsistent(a, b, log);
  if (fork !== undefined) return { fork };
  return { witness: w.name, ok: true, timestamp: ts, treeSize: cp.treeSize, detail: `cosigned size ${cp.treeSize} (includes the entry, consistent with the current tree) at ${isoSeconds(ts)}` };
}
