/**
 * The log side of C2SP tlog-mirror: push the published checkpoint and the entries up to it to every configured mirror,
 * the way server/witnessing.ts pushes checkpoints to witnesses — never blocking the sequencer (notify() returns at
 * once), one push in flight per mirror, at most one push per mirror per `minIntervalMs` (a burst of checkpoints
 * costs one push), failures backed off exponentially per mirror, resumable (the mirror's 409/202 mirror-info tells
 * where to go on; nothing needs to be remembered across restarts).
 *
 * One push: add-checkpoint (from the size the mirror holds as pending, with a consistency proof; a 409 names that
 * size), then add-entries from the mirror's next entry to the checkpoint's size, 32 packages (8,192 entries) per
 * gzip-compressed request, each package with its subtree consistency proof; 202 → continue from the next entry it
 * names; 200 → the mirror's cosignature lines, verified against its key before they are stored and published with
 * the witnesses' cosignatures.
 */
import { gzipSync } from 'node:zlib';
import { formatAddCheckpointRequest } from '../core/witness-protocol.ts';
import { formatSignatureLine, parseSignedNote, parseVerifierKey, verifyNote, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44, type Verifier } from '../core/note.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { parseDecimal } from '../core/encoding.ts';
import { fail, isPkglogError } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import type { NodeId } from '../core/merkle.ts';
import { hashRanges } from '../core/merkle.ts';
import {
  CLIENT_PACKAGES_PER_REQUEST,
  formatAddEntriesHeader,
  formatEntryPackage,
  packageCount,
  packageRange,
  parseMirrorInfo,
  planSubtreeConsistencyProof,
  MIRROR_INFO_CONTENT_TYPE,
} from '../core/tlog-mirror.ts';
import { request, type HttpResponse } from '../runtime/http.ts';
import { backoffMs } from '../runtime/backoff.ts';
import { realTimers, type Timers } from './witnessing.ts';

export interface MirrorEndpoint {
  url: string;
  /** The mirror's cosigner verifier key (cosignature/v1, type 0x04). */
  vkey: string;
}

export interface MirroringDeps {
  mirrors: MirrorEndpoint[];
  /** What to push: the log's published checkpoint (log signature and the cosignatures collected so far). */
  latest(): { treeSize: number; note: string };
  consistencyProof(oldSize: number, newSize: number): Hash[] | Promise<Hash[]>;
  /** The hash of a complete node of the tree of `treeSize`. */
  node(node: NodeId, treeSize: number): Hash | Promise<Hash>;
  /** The leaf bytes of entries [start, end). */
  entries(start: number, end: number): Buffer[] | Promise<Buffer[]>;
  storeCosignatures(treeSize: number, signatureLines: string[]): void;
  log(msg: string): void;
  fetch?: typeof fetch;
  /** Minimum time between two pushes to one mirror (default 1000 ms). */
  minIntervalMs?: number;
  timeoutMs?: number;
  maxBackoffMs?: number;
  timers?: Timers;
  /**
   * Whether this process pushes at all (default: always). Several front ends on one database: only the lease holder
   * does; the others stay silent, and a holder that loses the lease stops after the push in flight.
   */
  active?: () => boolean;
  /** Packages per add-entries request (default 32, the spec's advice: 8,192 entries). */
  packagesPerRequest?: number;
}

export interface MirrorStatus {
  url: string;
  /** The mirror's pending checkpoint size as last seen (0 before the first answer). */
  pendingSize: number;
  /** The mirror's next entry as last seen (null: not known yet). */
  nextEntry: number | null;
  /** The newest size the mirror cosigned for us, or null. */
  cosignedSize: number | null;
  failures: number;
  lastError: string | null;
  requests: number;
}

interface State extends MirrorStatus {
  verifier: Verifier;
  inFlight: Promise<void> | null;
  timer: unknown;
  nextAllowed: number;
  lastStart: number;
  abort: AbortController | null;
}

/** A mirror's answers are small (cosignature lines, mirror-info, a size). */
const MAX_MIRROR_RESPONSE = 64 * 1024;
/** add-entries requests per push before giving up until the next one (a push of 8,192 entries per request). */
const MAX_REQUESTS_PER_PUSH = 100_000;

export class Mirroring {
  private readonly deps: MirroringDeps;
  private readonly states: State[];
  private readonly timers: Timers;
  private readonly minIntervalMs: number;
  private closed = false;

  constructor(deps: MirroringDeps) {
    this.deps = deps;
    this.timers = deps.timers ?? realTimers;
    this.minIntervalMs = deps.minIntervalMs ?? 1000;
    this.states = deps.mirrors.map((m) => {
      const verifier = parseVerifierKey(m.vkey);
      if (verifier.type !== SIG_TYPE_COSIGNATURE_V1 && verifier.type !== SIG_TYPE_MLDSA44) fail('malformed', `mirror key for ${m.url} is not a cosigner key`);
      return {
        url: m.url.replace(/\/+$/, ''), verifier, pendingSize: 0, nextEntry: null, cosignedSize: null, failures: 0, lastError: null, requests: 0,
        inFlight: null, timer: null, nextAllowed: -Infinity, lastStart: -Infinity, abort: null,
      };
    });
  }

  /** A newer checkpoint may be published: push it to every idle mirror when the rules allow. Never blocks. */
  notify(): void {
    for (const s of this.states) this.schedule(s);
  }

  status(): MirrorStatus[] {
    return this.states.map(({ url, pendingSize, nextEntry, cosignedSize, failures, lastError, requests }) => ({ url, pendingSize, nextEntry, cosignedSize, failures, lastError, requests }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.states) {
      if (s.timer !== null) this.timers.clearTimeout(s.timer);
      s.timer = null;
      s.abort?.abort();
    }
    await Promise.all(this.states.map((s) => s.inFlight?.catch(() => {})));
  }

  private schedule(s: State): void {
    if (this.closed || s.inFlight !== null || s.timer !== null) return;
    if (this.deps.active !== undefined && !this.deps.active()) return;
    const target = this.deps.latest();
    if (s.cosignedSize !== null && s.cosignedSize >= target.treeSize) return;
    const now = this.timers.now();
    const at = Math.max(s.nextAllowed, s.lastStart + this.minIntervalMs);
    if (at > now) {
      s.timer = this.timers.setTimeout(() => {
        s.timer = null;
        this.schedule(s);
      }, at - now);
      return;
    }
    s.lastStart = now;
    s.inFlight = this.push(s, target).finally(() => {
      s.inFlight = null;
      this.schedule(s);
    });
  }

  private async push(s: State, target: { treeSize: number; note: string }): Promise<void> {
    try {
      await this.addCheckpoint(s, target);
      await this.addEntries(s, target);
      s.failures = 0;
      s.lastError = null;
      s.nextAllowed = -Infinity;
    } catch (e) {
      if (this.closed) return;
      s.failures++;
      s.lastError = (e as Error).message;
      const backoff = backoffMs(s.failures, this.minIntervalMs, this.deps.maxBackoffMs ?? 60_000);
      s.nextAllowed = this.timers.now() + backoff;
      this.deps.log(`${isPkglogError(e, 'inconsistent') ? 'error: ' : ''}mirror ${s.url}: ${s.lastError} (failure ${s.failures}, retrying in ${backoff} ms)`);
    }
  }

  private async post(s: State, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<HttpResponse> {
    s.abort = new AbortController();
    s.requests++;
    try {
      return await request(`${s.url}/${path}`, { method: 'POST', body, headers, signal: s.abort.signal }, {
        ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}), timeoutMs: this.deps.timeoutMs ?? 60_000, maxBytes: MAX_MIRROR_RESPONSE, errorBodies: 'refuse',
      });
    } finally {
      s.abort = null;
    }
  }

  /** add-checkpoint from the mirror's pending size (learnt from a 409), a few retries. */
  private async addCheckpoint(s: State, target: { treeSize: number; note: string }): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      if (s.pendingSize > target.treeSize) fail('conflict', `the mirror holds a pending size ${s.pendingSize}, larger than the checkpoint pushed (${target.treeSize}); retrying with a newer one`);
      const oldSize = s.pendingSize;
      const proof = oldSize === 0 || oldSize === target.treeSize ? [] : await this.deps.consistencyProof(oldSize, target.treeSize);
      const res = await this.post(s, 'add-checkpoint', formatAddCheckpointRequest({ oldSize, consistencyProof: proof, checkpoint: Buffer.from(target.note, 'utf8') }));
      const text = res.body.toString('utf8');
      if (res.status === 200) {
        s.pendingSize = target.treeSize;
        return;
      }
      if (res.status === 409) {
        const size = sizeBody(res, text);
        if (size === undefined) fail('malformed', 'add-checkpoint 409 without a text/x.tlog.size body');
        if (size === oldSize) fail('conflict', `add-checkpoint 409 naming the size we sent (${size})`);
        s.pendingSize = size;
        continue;
      }
      if (res.status === 422) fail('inconsistent', `the mirror refused checkpoint ${target.treeSize} (422: ${text.slice(0, 200).trim()})`);
      fail('network', `add-checkpoint: HTTP ${res.status}: ${text.slice(0, 200).trim()}`);
    }
    fail('conflict', 'add-checkpoint: still 409 after retries');
  }

  /** add-entries from the mirror's next entry to target.treeSize; stores the verified cosignatures. */
  private async addEntries(s: State, target: { treeSize: number; note: string }): Promise<void> {
    const end = target.treeSize;
    let start = Math.min(s.nextEntry ?? end, end);
    const origin = parseCheckpoint(parseSignedNote(target.note).text).origin;
    for (let n = 0; n < MAX_REQUESTS_PER_PUSH && !this.closed; n++) {
      const count = Math.min(this.deps.packagesPerRequest ?? CLIENT_PACKAGES_PER_REQUEST, packageCount(start, end));
      const parts = [formatAddEntriesHeader({ origin, uploadStart: start, uploadEnd: end, ticket: Buffer.alloc(0) })];
      for (let i = 0; i < count; i++) {
        const r = packageRange(start, end, i);
        const ranges = planSubtreeConsistencyProof(r.subtreeStart, r.end, end);
        const nodes = new Map<string, Hash>();
        for (const range of ranges) for (const nd of range.nodes) nodes.set(`${nd.level}/${nd.index}`, await this.deps.node(nd, end));
        const proof = hashRanges(ranges, (nd) => nodes.get(`${nd.level}/${nd.index}`)!);
        parts.push(formatEntryPackage(await this.deps.entries(r.start, r.end), proof));
      }
      const res = await this.post(s, 'add-entries', gzipSync(Buffer.concat(parts)), { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' });
      const text = res.body.toString('utf8');
      if (res.status === 200) {
        const lines = verifiedCosignatures(s.verifier, target.note, text);
        s.nextEntry = end;
        s.cosignedSize = Math.max(s.cosignedSize ?? 0, end);
        this.deps.storeCosignatures(end, lines);
        return;
      }
      if (res.status === 202 || res.status === 409) {
        const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== MIRROR_INFO_CONTENT_TYPE) fail('malformed', `add-entries ${res.status} without a ${MIRROR_INFO_CONTENT_TYPE} body`);
        const info = parseMirrorInfo(res.body);
        s.nextEntry = info.nextEntry;
        if (res.status === 409 && info.treeSize !== end) {
          // The mirror no longer takes our upload_end as valid (or moved past it): start over with add-checkpoint.
          s.pendingSize = info.treeSize;
          fail('conflict', `add-entries 409: the mirror's pending size is ${info.treeSize}, next entry ${info.nextEntry}`);
        }
        if (info.nextEntry > end) fail('conflict', `the mirror's next entry ${info.nextEntry} is past ${end}`);
        if (res.status === 409 && info.nextEntry === start && count > 0) fail('conflict', `add-entries 409 at next entry ${start}: ${text.slice(0, 200).trim()}`);
        start = info.nextEntry;
        continue;
      }
      if (res.status === 422) fail('inconsistent', `the mirror refused our entries (422: ${text.slice(0, 200).trim()})`);
      fail('network', `add-entries: HTTP ${res.status}: ${text.slice(0, 200).trim()}`);
    }
  }
}

/** The mirror's signature lines over our checkpoint, verified with its key (others are ignored). */
function verifiedCosignatures(verifier: Verifier, note: string, body: string): string[] {
  if (!/^(— [^\n]+\n)+$/.test(body)) fail('malformed', 'add-entries response is not a list of signature lines');
  const v = verifyNote(parseSignedNote(note).text + '\n' + body, [verifier]);
  return v.verified.map((x) => formatSignatureLine(x.signature));
}

function sizeBody(res: HttpResponse, text: string): number | undefined {
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'text/x.tlog.size' || !text.endsWith('\n')) return undefined;
  try {
    return parseDecimal(text.slice(0, -1), 'mirror pending size');
  } catch {
    return undefined;
  }
}
