/**
 * Before the log signs anything after a start, it asks each configured witness what it last cosigned (C2SP
 * tlog-witness add-checkpoint with `old 0` and our newest checkpoint):
 *   200                   the witness knew nothing of this log (it has now cosigned our checkpoint): fine;
 *   409 size S, S < ours  the witness is behind (the witnessing loop brings it up to date): fine;
 *   409 size S, S > ours  the witness cosigned a larger tree: our database is behind → refuse;
 *   409 size S, S = ours  resend with `old S` and no proof: 200 → the same checkpoint, fine;
 *                         422 (or 409 from older witnesses) → it cosigned a different root for our size → refuse;
 *   anything else, unreachable, timeout: a warning, and the log goes on (liveness: a witness that is down must not stop
 *   the log; the high-water mark and the database checks still hold) unless `requireAll` is set.
 * Bounded: one request (at most two) per witness, all in parallel, each with a timeout and a capped reply.
 */
import { fail, isPkglogError } from '../core/errors.ts';
import { parseDecimal } from '../core/encoding.ts';
import { formatAddCheckpointRequest } from '../core/witness-protocol.ts';
import { request } from '../runtime/http.ts';
import { SAFETY_DOC } from './safety.ts';

export interface CheckedWitness {
  url: string;
}

export interface WitnessCheckOptions {
  witnesses: CheckedWitness[];
  /** Our newest checkpoint (log signature only). */
  treeSize: number;
  note: string;
  log: (msg: string) => void;
  timeoutMs?: number;
  /** Refuse to start when a witness cannot be asked (default: warn and go on). */
  requireAll?: boolean;
  fetch?: typeof fetch;
}

const MAX_REPLY = 64 * 1024;

type Answer = { status: number; size?: number; text: string };

async function addCheckpoint(o: WitnessCheckOptions, url: string, oldSize: number): Promise<Answer> {
  const body = formatAddCheckpointRequest({ oldSize, consistencyProof: [], checkpoint: Buffer.from(o.note, 'utf8') });
  const res = await request(`${url.replace(/\/+$/, '')}/add-checkpoint`, { method: 'POST', body }, { ...(o.fetch ? { fetch: o.fetch } : {}), timeoutMs: o.timeoutMs ?? 5000, maxBytes: MAX_REPLY, errorBodies: 'refuse' });
  const text = res.body.toString('utf8');
  if (res.status === 409) {
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (type === 'text/x.tlog.size' && text.endsWith('\n')) return { status: 409, size: parseDecimal(text.slice(0, -1), 'witness tree size'), text };
  }
  return { status: res.status, text };
}

/** Asks one witness; returns a refusal message, a warning, or undefined when all is well. */
async function checkOne(o: WitnessCheckOptions, url: string): Promise<{ refuse?: string; warn?: string }> {
  const first = await addCheckpoint(o, url, 0);
  if (first.status === 200) return {};
  if (first.status === 409 && first.size !== undefined) {
    const s = first.size;
    if (s < o.treeSize) return {};
    if (s > o.treeSize) {
      return { refuse: `witness ${url} has cosigned size ${s} of this log, but the database is at size ${o.treeSize}` };
    }
    const again = await addCheckpoint(o, url, s);
    if (again.status === 200) return {};
    if (again.status === 422 || again.status === 409) {
      return { refuse: `witness ${url} has cosigned a different root for size ${s}, the size of this log's database (HTTP ${again.status})` };
    }
    return { warn: `witness ${url}: add-checkpoint old ${s}: HTTP ${again.status} ${again.text.slice(0, 200).trim()}` };
  }
  return { warn: `witness ${url}: add-checkpoint old 0: HTTP ${first.status} ${first.text.slice(0, 200).trim()}` };
}

/** Throws 'unsafe_state' when a witness knows a larger size or another root for ours; warns about the others. */
export async function checkWitnesses(o: WitnessCheckOptions): Promise<void> {
  const results = await Promise.all(o.witnesses.map(async (w) => {
    try {
      return await checkOne(o, w.url);
    } catch (e) {
      const why = isPkglogError(e, 'network') && typeof e.details?.reason === 'string' ? e.details.reason : (e as Error).message;
      return { warn: `witness ${w.url} could not be asked what it cosigned (${why})` };
    }
  }));
  const refusals = results.flatMap((r) => (r.refuse ? [r.refuse] : []));
  const warnings = results.flatMap((r) => (r.warn ? [r.warn] : []));
  if (refusals.length > 0) {
    fail('unsafe_state', `refusing to sign: ${refusals.join('; ')}. This log already published more than its database holds ` +
      `(a restored backup or snapshot, a deleted or wrong database?). Bring the database up to the witnessed checkpoint ` +
      `(the newest database copy, a mirror or the published tiles) before starting the log (see ${SAFETY_DOC}).`);
  }
  for (const w of warnings) o.log(`warning: ${w}`);
  if (o.requireAll && warnings.length > 0) {
    fail('unsafe_state', `refusing to sign until every witness was asked what it cosigned: ${warnings.join('; ')}`);
  }
}
