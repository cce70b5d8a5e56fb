/**
 * The log side of C2SP tlog-witness: after each new checkpoint, ask every configured witness to cosign it.
 *
 * - Coalescing and rationing: at most one add-checkpoint request in flight per witness, at least `minIntervalMs`
 *   between the starts of two requests to one witness; each request carries the NEWEST checkpoint, so a burst of
 *   notify() calls costs one request per witness (plus 409 corrections).
 * - 409 (text/x.tlog.size): the witness knows another size; retry at once from that size (bounded), since the
 *   first request to a witness assumes `old 0`.
 * - Failures (network, 5xx, 4xx, bad cosignatures) back off exponentially per witness; nothing here ever blocks
 *   the sequencer: notify() returns at once and all work is asynchronous.
 * - Returned cosignatures are verified against the witness's cosigner key before they are stored.
 * Imports core only (plus node built-ins).
 */
import { formatAddCheckpointRequest } from '../core/witness-protocol.ts';
import { formatSignatureLine, parseSignedNote, parseVerifierKey, verifyNote, SIG_TYPE_COSIGNATURE_V1, type Verifier } from '../core/note.ts';
import { parseDecimal } from '../core/encoding.ts';
import { fail } from '../core/errors.ts';

export interface WitnessEndpoint {
  url: string;
  /** The witness's cosigner verifier key (type 0x04). */
  vkey: string;
}

export interface WitnessingDeps {
  witnesses: WitnessEndpoint[];
  /** The newest checkpoint signed by the log (log signature only). */
  latest(): { treeSize: number; signedNote: string };
  /** RFC 6962 consistency proof between two sizes of the log (0 < oldSize ≤ newSize). */
  consistencyProof(oldSize: number, newSize: number): Buffer[];
  /** Persist verified cosignature lines ("— name base64\n") for the checkpoint of `treeSize`. */
  storeCosignatures(treeSize: number, signatureLines: string[]): void;
  log(msg: string): void;
  fetch?: typeof fetch;
  /** Minimum time between the starts of two add-checkpoint requests to one witness (default 1000 ms). */
  minIntervalMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** Backoff after a failure: starts at minIntervalMs, doubles, capped here (default 1 minute). */
  maxBackoffMs?: number;
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
}

const MAX_409_RETRIES = 3;

interface State extends WitnessStatus {
  verifier: Verifier;
  dirty: boolean;
  inFlight: Promise<void> | null;
  timer: NodeJS.Timeout | null;
  lastStart: number;
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
  private closed = false;

  constructor(deps: WitnessingDeps) {
    this.deps = deps;
    this.fetch = deps.fetch ?? fetch;
    this.minIntervalMs = deps.minIntervalMs ?? 1000;
    this.timeoutMs = deps.timeoutMs ?? 10_000;
    this.maxBackoffMs = deps.maxBackoffMs ?? 60_000;
    this.states = deps.witnesses.map((w) => {
      const verifier = parseVerifierKey(w.vkey);
      if (verifier.type !== SIG_TYPE_COSIGNATURE_V1) fail('malformed', `witness key for ${w.url} is not a cosigner key (type 0x04)`);
      return {
        url: w.url.replace(/\/+$/, ''),
        verifier,
        knownSize: 0,
        cosignedSize: null,
        failures: 0,
        lastError: null,
        requests: 0,
        dirty: false,
        inFlight: null,
        timer: null,
        lastStart: -Infinity,
        nextAllowed: -Infinity,
        abort: null,
      };
    });
  }

  /** A new checkpoint exists: schedule (coalesced, rate-limited) add-checkpoint calls. Never blocks. */
  notify(): void {
    if (this.closed) return;
    for (const s of this.states) {
      s.dirty = true;
      this.schedule(s);
    }
  }

  status(): WitnessStatus[] {
    return this.states.map(({ url, knownSize, cosignedSize, failures, lastError, requests }) => ({ url, knownSize, cosignedSize, failures, lastError, requests }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.states) {
      if (s.timer !== null) clearTimeout(s.timer);
      s.timer = null;
      s.abort?.abort();
    }
    await Promise.all(this.states.map((s) => s.inFlight?.catch(() => {})));
  }

  private schedule(s: State): void {
    if (this.closed || !s.dirty || s.inFlight !== null || s.timer !== null) return;
    const now = Date.now();
    const at = Math.max(s.lastStart + this.minIntervalMs, s.nextAllowed);
    if (at > now) {
      s.timer = setTimeout(() => {
        s.timer = null;
        this.schedule(s);
      }, at - now);
      s.timer.unref?.();
      return;
    }
    s.dirty = false;
    s.lastStart = now;
    s.inFlight = this.submit(s).finally(() => {
      s.inFlight = null;
      this.schedule(s);
    });
  }

  private async submit(s: State): Promise<void> {
    try {
      for (let attempt = 0; attempt <= MAX_409_RETRIES && !this.closed; attempt++) {
        const { treeSize, signedNote } = this.deps.latest();
        if (s.cosignedSize === treeSize) return; // already cosigned the newest checkpoint
        if (s.knownSize > treeSize) fail('inconsistent', `witness holds size ${s.knownSize}, larger than this log's ${treeSize}`);
        const outcome = await this.request(s, treeSize, signedNote);
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
      s.lastError = (e as Error).message;
      const backoff = Math.min(this.maxBackoffMs, this.minIntervalMs * 2 ** Math.min(s.failures - 1, 20));
      s.nextAllowed = Date.now() + backoff;
      s.dirty = true; // try again after the backoff
      this.deps.log(`witness ${s.url}: ${s.lastError} (failure ${s.failures}, retrying in ${backoff} ms)`);
    }
  }

  /** One add-checkpoint call. 'retry' after a 409 that changed our idea of the witness's size. */
  private async request(s: State, treeSize: number, signedNote: string): Promise<'done' | 'retry'> {
    const oldSize = s.knownSize;
    const proof = oldSize === 0 || oldSize === treeSize ? [] : this.deps.consistencyProof(oldSize, treeSize);
    const body = formatAddCheckpointRequest({ oldSize, consistencyProof: proof, checkpoint: Buffer.from(signedNote, 'utf8') });
    s.abort = new AbortController();
    s.requests++;
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(`${s.url}/add-checkpoint`, {
        method: 'POST',
        body,
        signal: AbortSignal.any([s.abort.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      text = await res.text();
    } finally {
      s.abort = null;
    }
    if (text.length > 64 * 1024) fail('too_large', 'witness response is too large');
    if (res.status === 409) {
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
      if (type !== 'text/x.tlog.size' || !text.endsWith('\n')) fail('malformed', `409 without a text/x.tlog.size body`);
      const size = parseDecimal(text.slice(0, -1), 'witness tree size');
      if (size === oldSize) fail('conflict', `409 naming the size we sent (${size})`);
      s.knownSize = size;
      return 'retry';
    }
    if (res.status !== 200) fail('internal', `add-checkpoint: HTTP ${res.status}: ${text.slice(0, 200).trim()}`);
    const lines = this.verifiedCosignatures(s, signedNote, text);
    this.deps.storeCosignatures(treeSize, lines);
    s.knownSize = treeSize;
    s.cosignedSize = treeSize;
    return 'done';
  }

  /** The response's signature lines by this witness's key, verified over our checkpoint (others are ignored). */
  private verifiedCosignatures(s: State, signedNote: string, body: string): string[] {
    if (!/^(— [^\n]+\n)+$/.test(body)) fail('malformed', 'add-checkpoint response is not a list of signature lines');
    const text = parseSignedNote(signedNote).text;
    const v = verifyNote(text + '\n' + body, [s.verifier]); // throws unless a cosignature by this witness verifies
    return v.verified.map((x) => formatSignatureLine(x.signature));
  }
}
