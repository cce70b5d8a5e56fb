/**
 * The log side of C2SP tlog-witness: ask every configured witness to cosign the log's checkpoints, in rounds.
 *
 * - Rounds: a round picks ONE target, the newest checkpoint signed when it starts, and every witness is asked to
 *   cosign that same checkpoint (from the size it last cosigned, with a consistency proof). So all witnesses cosign
 *   the same few sizes and a quorum can form under steady load. A new round starts only when a newer checkpoint
 *   exists, the current round is complete (`quorum` witnesses cosigned its target, or no request for it is still in
 *   flight) and at least `minIntervalMs` after the previous round started: a burst of checkpoints costs one request
 *   per witness per round. A witness still busy with an older round, or backing off, is asked for the round that is
 *   current when it becomes free.
 * - 409 (text/x.tlog.size): the witness knows another size; retry at once from that size (bounded), since the first
 *   request to a witness assumes `old 0`. If the witness knows a size larger than the round's target, it is asked to
 *   cosign the log's checkpoint of that size again.
 * - Same size, different root (422 in the current tlog-witness text, 409 — maybe without a body — in v1.0.0), and a
 *   consistency proof the witness rejects (422): the witness holds another tree for this log. That is reported as
 *   'inconsistent' (logged, in status()) and retried only after a backoff.
 * - Failures (network, 5xx, 4xx, bad cosignatures) back off exponentially per witness; nothing here ever blocks the
 *   sequencer: notify() returns at once and all work is asynchronous. Witness answers are capped while streaming.
 * - Returned cosignatures are verified against the witness's cosigner keys (cosignature/v1 and ML-DSA-44 alike) before
 *   they are stored; lines by keys not configured for the witness are dropped.
 * Clock and timers are injectable (tests drive rounds without sleeping). Imports core only (plus node built-ins).
 */
import { formatAddCheckpointRequest } from '../core/witness-protocol.ts';
import { formatSignatureLine, parseSignedNote, parseVerifierKey, verifyNote, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44, type Verifier } from '../core/note.ts';
import { decodeBase64, parseDecimal } from '../core/encoding.ts';
import { request, type HttpResponse } from '../runtime/http.ts';
import { backoffMs } from '../runtime/backoff.ts';
import { fail, isPkglogError } from '../core/errors.ts';

export interface WitnessEndpoint {
  url: string;
  /** The witness's cosigner verifier key (type 0x04 cosignature/v1 or 0x06 ML-DSA-44 subtree/v1). */
  vkey: string;
  /** All its cosigner keys (default [vkey]): cosignatures by any of them are kept. */
  vkeys?: string[];
}

/** The clock and timers (real ones by default; tests pass a fake to run rounds deterministically). */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface WitnessingDeps {
  witnesses: WitnessEndpoint[];
  /** The newest checkpoint signed by the log (log signature only). */
  latest(): { treeSize: number; signedNote: string };
  /** The log-signed checkpoint of exactly this size, if the log signed one (to re-cosign a size a witness holds). */
  checkpointAt?(treeSize: number): string | undefined | Promise<string | undefined>;
  /** RFC 6962 consistency proof between two sizes of the log (0 < oldSize ≤ newSize). */
  consistencyProof(oldSize: number, newSize: number): Buffer[] | Promise<Buffer[]>;
  /** Persist verified cosignature lines ("— name base64\n") for the checkpoint of `treeSize`. */
  storeCosignatures(treeSize: number, signatureLines: string[]): void | Promise<void>;
  log(msg: string): void;
  fetch?: typeof fetch;
  /** Cosignatures that complete a round early (the publishing quorum); 0 or absent: a round waits for every witness. */
  quorum?: number;
  /** Minimum time between the starts of two rounds (default 1000 ms). */
  minIntervalMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** Backoff after a failure: starts at minIntervalMs, doubles, capped here (default 1 minute). */
  maxBackoffMs?: number;
  timers?: Timers;
}

export interface WitnessStatus {
  url: string;
  /** The size the witness is believed to hold (from its 200 or 409 answers); 0 before the first answer. */
  knownSize: number;
  /** The newest size this witness cosigned for us, or null. */
  cosignedSize: number | null;
  failures: number;
  lastError: string | null;
  requests: number;
  /** Every failed add-checkpoint exchange since start (failures counts only the consecutive ones). */
  failuresTotal: number;
  /** Cosignatures by this witness received and stored since start. */
  cosignatures: number;
}

export interface RoundStatus {
  /** 1 for the first round since start-up. */
  id: number;
  /** The checkpoint size every witness is asked to cosign in this round. */
  treeSize: number;
  startedAt: number;
}

const MAX_409_RETRIES = 3;
/** A witness answer (signature lines, or a size) is small; anything larger is refused while it streams in. */
export const MAX_WITNESS_RESPONSE = 64 * 1024;

interface Round extends RoundStatus {
  signedNote: string;
}

interface State extends WitnessStatus {
  verifiers: Verifier[];
  inFlight: Promise<void> | null;
  /** The round whose target the request in flight is for. */
  inFlightRound: number | null;
  timer: unknown;
  nextAllowed: number;
  abort: AbortController | null;
}

export class Witnessing {
  private readonly deps: WitnessingDeps;
  private readonly states: State[];
  private readonly fetch: typeof fetch;
  private readonly minIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly maxBackoffMs: number;
  private readonly timers: Timers;
  private readonly need: number;
  private round: Round | null = null;
  private roundTimer: unknown = null;
  private closed = false;

  constructor(deps: WitnessingDeps) {
    this.deps = deps;
    this.fetch = deps.fetch ?? fetch;
    this.minIntervalMs = deps.minIntervalMs ?? 1000;
    this.timeoutMs = deps.timeoutMs ?? 10_000;
    this.maxBackoffMs = deps.maxBackoffMs ?? 60_000;
    this.timers = deps.timers ?? realTimers;
    this.need = deps.quorum !== undefined && deps.quorum > 0 ? deps.quorum : deps.witnesses.length;
    this.states = deps.witnesses.map((w) => {
      const verifiers = (w.vkeys ?? [w.vkey]).map((k) => {
        const v = parseVerifierKey(k);
        if (v.type !== SIG_TYPE_COSIGNATURE_V1 && v.type !== SIG_TYPE_MLDSA44) fail('malformed', `witness key for ${w.url} is not a cosigner key (type 0x04 or 0x06)`);
        return v;
      });
      return {
        url: w.url.replace(/\/+$/, ''),
        verifiers,
        knownSize: 0,
        cosignedSize: null,
        failures: 0,
        lastError: null,
        requests: 0,
        failuresTotal: 0,
        cosignatures: 0,
        inFlight: null,
        inFlightRound: null,
        timer: null,
        nextAllowed: -Infinity,
        abort: null,
      };
    });
  }

  /** A new checkpoint exists: start a round when the rules allow (coalesced, rationed). Never blocks. */
  notify(): void {
    this.maybeStartRound();
  }

  status(): WitnessStatus[] {
    return this.states.map(({ url, knownSize, cosignedSize, failures, lastError, requests, failuresTotal, cosignatures }) => ({ url, knownSize, cosignedSize, failures, lastError, requests, failuresTotal, cosignatures }));
  }

  /** The current round (null before the first). */
  currentRound(): RoundStatus | null {
    return this.round && { id: this.round.id, treeSize: this.round.treeSize, startedAt: this.round.startedAt };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.roundTimer !== null) this.timers.clearTimeout(this.roundTimer);
    this.roundTimer = null;
    for (const s of this.states) {
      if (s.timer !== null) this.timers.clearTimeout(s.timer);
      s.timer = null;
      s.abort?.abort();
    }
    await Promise.all(this.states.map((s) => s.inFlight?.catch(() => {})));
  }

  /** Complete: enough witnesses cosigned the target (or something larger), or no request for it is still in flight. */
  private roundComplete(r: Round): boolean {
    const cosigned = this.states.filter((s) => s.cosignedSize !== null && s.cosignedSize >= r.treeSize).length;
    return cosigned >= this.need || !this.states.some((s) => s.inFlightRound === r.id);
  }

  private maybeStartRound(): void {
    if (this.closed || this.roundTimer !== null) return;
    const latest = this.deps.latest();
    const r = this.round;
    if (r !== null && (latest.treeSize <= r.treeSize || !this.roundComplete(r))) return; // re-checked when a request ends
    const now = this.timers.now();
    const at = r === null ? now : r.startedAt + this.minIntervalMs;
    if (at > now) {
      this.roundTimer = this.timers.setTimeout(() => {
        this.roundTimer = null;
        this.maybeStartRound();
      }, at - now);
      return;
    }
    this.round = { id: (r?.id ?? 0) + 1, treeSize: latest.treeSize, signedNote: latest.signedNote, startedAt: now };
    for (const s of this.states) this.schedule(s);
  }

  private schedule(s: State): void {
    const r = this.round;
    if (this.closed || r === null || s.inFlight !== null || s.timer !== null) return;
    if (s.cosignedSize !== null && s.cosignedSize >= r.treeSize) return; // nothing to do in this round
    const now = this.timers.now();
    if (s.nextAllowed > now) {
      s.timer = this.timers.setTimeout(() => {
        s.timer = null;
        this.schedule(s);
      }, s.nextAllowed - now);
      return;
    }
    s.inFlightRound = r.id;
    s.inFlight = this.submit(s, r).finally(() => {
      s.inFlight = null;
      s.inFlightRound = null;
      this.schedule(s);
      this.maybeStartRound();
    });
  }

  private async submit(s: State, r: Round): Promise<void> {
    try {
      for (let attempt = 0; attempt <= MAX_409_RETRIES && !this.closed; attempt++) {
        const target = s.knownSize <= r.treeSize ? r : await this.targetFor(s, r); // no await in the common case
        const outcome = await this.request(s, target.treeSize, target.signedNote);
        if (outcome === 'retry') continue;
        s.failures = 0;
        s.lastError = null;
        s.nextAllowed = -Infinity;
        return;
      }
      if (!this.closed) fail('conflict', `still 409 after ${MAX_409_RETRIES} retries`);
    } catch (e) {
      if (this.closed) return;
      s.failures++;
      s.failuresTotal++;
      s.lastError = (e as Error).message;
      const backoff = backoffMs(s.failures, this.minIntervalMs, this.maxBackoffMs);
      s.nextAllowed = this.timers.now() + backoff;
      const alarm = isPkglogError(e, 'inconsistent') ? 'error: ' : '';
      this.deps.log(`${alarm}witness ${s.url}: ${s.lastError} (failure ${s.failures}, retrying in ${backoff} ms)`);
    }
  }

  /** The round's target, or — when the witness already holds a larger size — the log's checkpoint of that size. */
  private async targetFor(s: State, r: Round): Promise<{ treeSize: number; signedNote: string }> {
    if (s.knownSize <= r.treeSize) return r;
    const newest = this.deps.latest().treeSize;
    if (s.knownSize > newest) fail('inconsistent', `the witness holds size ${s.knownSize}, larger than this log's ${newest}`);
    const note = await this.deps.checkpointAt?.(s.knownSize);
    if (note === undefined) fail('inconsistent', `the witness holds size ${s.knownSize}, for which this log has no checkpoint`);
    return { treeSize: s.knownSize, signedNote: note };
  }

  /** One add-checkpoint call. 'retry' after a 409 that changed our idea of the witness's size. */
  private async request(s: State, treeSize: number, signedNote: string): Promise<'done' | 'retry'> {
    const oldSize = s.knownSize;
    const proof = oldSize === 0 || oldSize === treeSize ? [] : await this.deps.consistencyProof(oldSize, treeSize);
    const body = formatAddCheckpointRequest({ oldSize, consistencyProof: proof, checkpoint: Buffer.from(signedNote, 'utf8') });
    s.abort = new AbortController();
    s.requests++;
    let res: HttpResponse;
    let text: string;
    try {
      res = await request(`${s.url}/add-checkpoint`, { method: 'POST', body, signal: s.abort.signal }, { fetch: this.fetch, timeoutMs: this.timeoutMs, maxBytes: MAX_WITNESS_RESPONSE, errorBodies: 'refuse' });
      text = res.body.toString('utf8');
    } finally {
      s.abort = null;
    }
    if (res.status === 409) {
      const size = parseSizeBody(res, text);
      if (size !== undefined && size !== oldSize) {
        s.knownSize = size;
        return 'retry';
      }
      // v1.0.0 of tlog-witness answers "same size, different root" with 409 (no body required).
      if (oldSize === treeSize) fail('inconsistent', `the witness holds a different root for size ${treeSize} (409): it saw another tree for this log`);
      if (size === undefined) fail('malformed', '409 without a text/x.tlog.size body');
      fail('conflict', `409 naming the size we sent (${size})`);
    }
    if (res.status === 422) {
      const what = oldSize === treeSize ? `a different root for size ${treeSize}` : `a tree that our consistency proof from ${oldSize} to ${treeSize} does not extend`;
      fail('inconsistent', `the witness refused checkpoint ${treeSize} (422: ${text.slice(0, 200).trim()}): it holds ${what}`);
    }
    if (res.status !== 200) fail('network', `add-checkpoint: HTTP ${res.status}: ${text.slice(0, 200).trim()}`);
    const lines = this.verifiedCosignatures(s, signedNote, text);
    s.knownSize = treeSize; // the witness now holds this size, whether or not storing below succeeds
    await this.deps.storeCosignatures(treeSize, lines);
    s.cosignatures++;
    s.cosignedSize = Math.max(s.cosignedSize ?? 0, treeSize);
    return 'done';
  }

  /**
   * The response's signature lines by this witness's keys (Ed25519 and ML-DSA-44 alike), verified over our checkpoint
   * (lines by other keys are ignored).
   */
  private verifiedCosignatures(s: State, signedNote: string, body: string): string[] {
    if (!/^(— [^\n]+\n)+$/.test(body)) fail('malformed', 'add-checkpoint response is not a list of signature lines');
    const text = parseSignedNote(signedNote).text;
    const v = verifyNote(text + '\n' + body, s.verifiers); // throws unless a cosignature by this witness verifies
    return v.verified.map((x) => formatSignatureLine(x.signature));
  }
}

/** The size in a `text/x.tlog.size` body (`<decimal>\n`), or undefined if the 409 has none. */
function parseSizeBody(res: HttpResponse, text: string): number | undefined {
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'text/x.tlog.size' || !text.endsWith('\n')) return undefined;
  try {
    return parseDecimal(text.slice(0, -1), 'witness tree size');
  } catch {
    return undefined;
  }
}

/** A verified cosignature line `— <name> <base64(keyId ‖ …)>` as a store row. */
export function cosignatureRow(line: string): { keyName: string; keyId: Buffer; line: string } {
  const m = /^— (\S+) (\S+)\n?$/.exec(line);
  if (m === null) return fail('malformed', 'not a signature line');
  return { keyName: m[1]!, keyId: decodeBase64(m[2]!, 'signature').subarray(0, 4), line: `— ${m[1]} ${m[2]}` };
}
