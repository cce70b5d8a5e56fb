/**
 * The witness itself, independent of HTTP: C2SP tlog-witness add-checkpoint (check, cosign, compare-and-swap,
 * persist, answer), and checking any checkpoint signed by a configured log against what this witness has cosigned
 * (gossip), producing fork evidence when the two provably contradict.
 */
import { fail, isPkglogError, PkglogError } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import { parseAddCheckpointRequest, type AddCheckpointRequest } from '../core/witness-protocol.ts';
import {
  formatSignatureLine,
  formatVerifierKey,
  parseSignedNote,
  parseVerifierKey,
  signBytes,
  verifyNote,
  SIG_TYPE_COSIGNATURE_V1,
  type Signer,
  type Verifier,
} from '../core/note.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
import { parseCheckpoint, type Checkpoint } from '../core/checkpoint.ts';
import { cosignatureSigner, cosignatureTimestamp, mldsaCosigner } from '../core/cosignature.ts';
import { LOG_KEY_TYPES } from '../core/policy.ts';
import { verifyConsistency } from '../core/merkle.ts';
import { EMPTY_ROOT } from '../core/hash.ts';
import { buildEvidence, classifyEvidenceProof, formatEvidence, verifyEvidence } from '../core/evidence.ts';
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { CommitQueue } from './commit-queue.ts';
import { LogClient, type Fetch } from './log-client.ts';
import type { AdvanceOp, CosignedCheckpoint, LatestHead, LogConfig, WitnessStore } from './store.ts';

export type LogLevel = 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string) => void;

export interface WitnessHooks {
  /** Called after a request passed every check and was cosigned, before its compare-and-swap (tests park here). */
  afterCheck?: (origin: string, treeSize: number) => Promise<void> | void;
}

export interface WitnessOptions {
  store: WitnessStore;
  name: string;
  /** The cosignature/v1 (Ed25519, type 0x04) key's seed. */
  seed: Uint8Array;
  /** The ML-DSA-44 (type 0x06, subtree/v1) key's seed: with it the witness also cosigns with ML-DSA-44. */
  mldsaSeed?: Uint8Array;
  /** Cosign with the Ed25519 key (default true; false needs mldsaSeed). */
  cosignEd25519?: boolean;
  /** 32 fresh random bytes per ML-DSA-44 signature (hedged signing); without it, deterministic. */
  random?: () => Uint8Array;
  /** Clock in milliseconds (default Date.now). */
  now?: () => number;
  log?: Logger;
  fetch?: Fetch;
  hooks?: WitnessHooks;
  /** At most this many POST /v1/gossip proof fetches at once (default DEFAULT_MAX_GOSSIP_FETCHES). */
  maxGossipFetches?: number;
}

export interface Verdict {
  result: 'consistent' | 'fork' | 'unknown';
  reason: string;
  /** The witness's latest cosigned checkpoint for the origin, if any. */
  latest?: CosignedCheckpoint;
  /** Canonical evidence text (core/evidence.ts) when result is 'fork'. */
  evidence?: string;
}

interface Verified {
  log: LogConfig;
  verifier: Verifier;
  checkpoint: Checkpoint;
  text: string;
  /** The text's bytes (what the log signed and the cosigners sign). */
  textBytes: Buffer;
  /** The note with only the log's verified signature(s). */
  logSigned: string;
}

const MAX_CAS_RETRIES = 8;
/** Gossip verdicts kept (by checkpoint text and the witness's latest size and root). */
const VERDICT_CACHE_SIZE = 4096;
/** An 'unknown' verdict (e.g. the log was unreachable) is recomputed after this long. */
const UNKNOWN_VERDICT_TTL_MS = 30_000;
/** Default cap on proofs fetched from logs at once for POST /v1/gossip (beyond it: 503). */
export const DEFAULT_MAX_GOSSIP_FETCHES = 4;

/** A log key: Ed25519 (type 0x01) or ML-DSA-44 (type 0x06, the log's subtree/v1 cosignature). */
export function validateLogVkey(vkey: string): Verifier {
  return parsePublicKeyVerifier(vkey, { type: LOG_KEY_TYPES, what: 'the log key' });
}

export class Witness {
  readonly store: WitnessStore;
  /** The cosignature/v1 (type 0x04) signer, whether or not it cosigns (`signers`). */
  readonly signer: Signer;
  /** What add-checkpoint cosigns with, in this order: Ed25519 cosignature/v1 and/or ML-DSA-44 subtree/v1. */
  readonly signers: Signer[];
  /** The cosigner verifier key served at /vkey: the type-0x04 one, or the ML-DSA-44 one if Ed25519 cosigning is off. */
  readonly vkey: string;
  /** Every cosigning key's vkey (GET /vkeys), in `signers` order. */
  readonly vkeys: string[];
  readonly now: () => number;
  readonly log: Logger;
  private readonly hooks: WitnessHooks;
  private readonly fetch: Fetch | undefined;
  private readonly verifiers = new Map<string, Verifier>();
  private readonly clients = new Map<string, LogClient>();
  private readonly commits: CommitQueue<AdvanceOp>;
  /** Gossip verdicts: a repeated checkpoint costs no tile fetches while the witness's latest is unchanged. */
  private readonly verdicts = new LRUCache<string, Verdict>({ max: VERDICT_CACHE_SIZE });
  /** Comparisons in flight by the same key: concurrent identical gossip shares one round of fetches. */
  private readonly comparing = new Map<string, Promise<Verdict>>();
  private fetchesInFlight = 0;
  private readonly maxGossipFetches: number;

  constructor(opts: WitnessOptions) {
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => {});
    this.hooks = opts.hooks ?? {};
    this.fetch = opts.fetch;
    const clock = () => Math.floor(this.now() / 1000);
    this.signer = cosignatureSigner(opts.name, opts.seed, clock);
    this.signers = [];
    if (opts.cosignEd25519 !== false) this.signers.push(this.signer);
    if (opts.mldsaSeed !== undefined) {
      this.signers.push(mldsaCosigner(opts.name, opts.mldsaSeed, { timestamp: clock, ...(opts.random !== undefined ? { random: opts.random } : {}) }));
    }
    if (this.signers.length === 0) fail('usage', 'the witness needs at least one cosigning key (Ed25519 or ML-DSA-44)');
    this.vkeys = this.signers.map((s) => formatVerifierKey(s.name, s.type, s.publicKey));
    this.vkey = this.vkeys[0]!;
    this.commits = new CommitQueue((ops) => this.store.advance(ops), () => this.store.durable());
    this.maxGossipFetches = opts.maxGossipFetches ?? DEFAULT_MAX_GOSSIP_FETCHES;
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  verifierFor(log: LogConfig): Verifier {
    let v = this.verifiers.get(log.vkey);
    if (v === undefined) {
      v = validateLogVkey(log.vkey);
      this.verifiers.set(log.vkey, v);
    }
    return v;
  }

  clientFor(url: string): LogClient {
    let c = this.clients.get(url);
    if (c === undefined) {
      c = new LogClient(url, this.fetch === undefined ? {} : { fetch: this.fetch });
      this.clients.set(url, c);
    }
    return c;
  }

  /** Parse, find the origin (404), verify the log's signature (403). The note is parsed once on the hot path. */
  verifyLogSigned(note: Uint8Array | string): Verified {
    const bytes = typeof note === 'string' ? Buffer.from(note, 'utf8') : Buffer.from(note.buffer, note.byteOffset, note.byteLength);
    const nl = bytes.indexOf(0x0a);
    const log = nl > 0 ? this.store.getLog(bytes.toString('utf8', 0, nl)) : undefined;
    if (log === undefined) {
      const origin = parseCheckpoint(parseSignedNote(bytes).text).origin; // malformed → 400 before 404
      return fail('not_found', `unknown log origin ${JSON.stringify(origin)}`);
    }
    const verifier = this.verifierFor(log);
    let vn;
    try {
      vn = verifyNote(bytes, [verifier]);
    } catch (e) {
      if (isPkglogError(e, 'bad_signature') || isPkglogError(e, 'unknown_key')) {
        fail('bad_signature', `no valid signature by the key of log ${log.origin}: ${e.message}`);
      }
      throw e;
    }
    const text = vn.note.text;
    const checkpoint = parseCheckpoint(text);
    if (checkpoint.origin !== log.origin) fail('malformed', 'checkpoint origin line is not the first line of the note');
    // formatSignedNote without checking the text again (verifyNote did).
    const logSigned = `${text}\n${vn.verified.map((v) => formatSignatureLine(v.signature)).join('')}`;
    return { log, verifier, checkpoint, text, textBytes: vn.textBytes, logSigned };
  }

  /** C2SP tlog-witness add-checkpoint on a raw request body; returns the cosignature line(s). */
  async addCheckpoint(body: Uint8Array): Promise<string> {
    return this.cosign(parseAddCheckpointRequest(body));
  }

  /** add-checkpoint on a parsed request. Throws PkglogError; 'stale_size' carries details.treeSize (the 409 body). */
  async cosign(req: AddCheckpointRequest): Promise<string> {
    const v = this.verifyLogSigned(req.checkpoint);
    const { checkpoint: cp } = v;
    if (req.oldSize > cp.treeSize) fail('out_of_range', `old size ${req.oldSize} is larger than the checkpoint size ${cp.treeSize}`);
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const log = attempt === 0 ? v.log : this.store.getLog(cp.origin)!;
      const latest = this.store.latestHead(cp.origin);
      this.check(log, v, req, latest);
      const sigs = this.signers.map((s) => signBytes(v.textBytes, s));
      const lines = sigs.map(formatSignatureLine).join('');
      const cosigned: CosignedCheckpoint = {
        origin: cp.origin,
        treeSize: cp.treeSize,
        root: cp.rootHash,
        cosignedAt: cosignatureTimestamp(sigs[0]!),
        note: v.logSigned + lines,
      };
      if (this.hooks.afterCheck !== undefined) await this.hooks.afterCheck(cp.origin, cp.treeSize);
      if (await this.commits.submit({ expectedSize: latest?.treeSize ?? null, checkpoint: cosigned })) return lines;
      // Lost the race: someone else advanced this log in between. Re-check against the new state.
    }
    return fail('overloaded', `too much contention on log ${cp.origin}; retry`);
  }

  /** The add-checkpoint checks against the current state, in the spec's order. */
  private check(log: LogConfig, v: Verified, req: AddCheckpointRequest, latest: LatestHead | undefined): void {
    const cp = v.checkpoint;
    const known = latest?.treeSize ?? 0;
    if (req.oldSize !== known) {
      if (latest !== undefined && cp.treeSize <= latest.treeSize) this.checkAgainstHistory(v, 'add-checkpoint');
      fail('stale_size', `old size ${req.oldSize} does not match the latest cosigned size ${known}`, { treeSize: known });
    }
    if (req.oldSize === 0 && req.consistencyProof.length !== 0) fail('invalid_proof', 'the consistency proof must be empty when old is 0');
    if (cp.treeSize === 0 && !cp.rootHash.equals(EMPTY_ROOT)) fail('invalid_proof', 'a checkpoint of size 0 must have the empty-tree root');
    if (latest === undefined) return;
    if (cp.treeSize === latest.treeSize) {
      if (cp.rootHash.equals(latest.root)) return; // resubmission: cosigned again with a fresh timestamp
      this.recordFork(buildEvidence(this.latestNote(cp.origin, latest), v.logSigned), 'add-checkpoint');
      fail('inconsistent', `tree size ${cp.treeSize} was already cosigned with a different root hash`);
    }
    try {
      verifyConsistency(latest.treeSize, cp.treeSize, latest.root, cp.rootHash, req.consistencyProof);
    } catch (e) {
      if (isPkglogError(e, 'invalid_proof')) this.evidenceFromRequestProof(v, latest, req.consistencyProof);
      throw e;
    }
  }

  /**
   * A consistency proof that does not verify may still prove a fork: when the old size is not a power of two the
   * RFC 9162 proof is itself an evidence proof (core/evidence.ts). If it hashes to the signed new root but implies
   * another root for the cosigned size, the log signed a checkpoint that is not an extension of the one this witness
   * cosigned: record it. (The request is refused with 422 either way.)
   */
  private evidenceFromRequestProof(v: Verified, latest: LatestHead, proof: Hash[]): void {
    const cp = v.checkpoint;
    if (proof.length === 0 || latest.treeSize === 0 || (latest.treeSize & (latest.treeSize - 1)) === 0) return;
    const smaller = { ...cp, treeSize: latest.treeSize, rootHash: latest.root };
    let kind;
    try {
      kind = classifyEvidenceProof(smaller, cp, proof);
    } catch {
      return;
    }
    if (kind === 'fork') this.recordFork(buildEvidence(this.latestNote(cp.origin, latest), v.logSigned, proof), 'add-checkpoint');
  }

  /** The note of the latest cosigned checkpoint whose head the checks used (the fork paths need it; rare). */
  private latestNote(origin: string, head: LatestHead): string {
    const latest = this.store.latest(origin);
    if (latest === undefined || latest.treeSize !== head.treeSize || !latest.root.equals(head.root)) fail('overloaded', `log ${origin} advanced meanwhile; retry`);
    return latest.note;
  }

  /** A smaller checkpoint than the latest: if this witness cosigned that exact size with another root, that is a fork. */
  private checkAgainstHistory(v: Verified, source: string): Verdict | undefined {
    const old = this.store.historyAt(v.checkpoint.origin, v.checkpoint.treeSize);
    if (old === undefined) return undefined;
    if (old.root.equals(v.checkpoint.rootHash)) return { result: 'consistent', reason: `this witness cosigned the same root for tree size ${old.treeSize}` };
    const evidence = this.recordFork(buildEvidence(old.note, v.logSigned), source);
    return { result: 'fork', reason: `this witness cosigned a different root for tree size ${old.treeSize}`, evidence };
  }

  /** Verifies evidence (never record anything unverifiable), stores it, logs at error level once. Returns its text. */
  recordFork(evidence: ReturnType<typeof buildEvidence>, source: string): string {
    const log = this.store.getLog(evidence.origin);
    if (log === undefined) fail('internal', 'evidence for an unknown log');
    const summary = verifyEvidence(evidence, this.verifierFor(log));
    const text = formatEvidence(evidence);
    const { id, isNew } = this.store.recordEvidence(evidence.origin, text, source, this.nowSeconds());
    if (isNew) {
      const latest = this.store.latest(evidence.origin);
      this.log(
        'error',
        `FORK DETECTED (evidence #${id} at /v1/evidence/${id}, via ${source}): ${summary.description}; ` +
          `still cosigning only checkpoints of ${evidence.origin} consistent with the cosigned size ${latest?.treeSize ?? 0}`,
      );
    }
    return text;
  }

  /**
   * Checks a checkpoint signed by a configured log against this witness's view (what it cosigned), fetching the
   * proof from the log's tiles when needed. Throws for unknown origins (404), bad signatures (403), bad input (400).
   */
  async checkCheckpoint(note: Uint8Array | string, source: string, opts: { bounded?: boolean } = {}): Promise<Verdict> {
    const v = this.verifyLogSigned(note);
    const cp = v.checkpoint;
    const latest = this.store.latest(cp.origin);
    const key = latest === undefined ? undefined : `${createHash('sha256').update(v.text).digest('hex')} ${latest.treeSize} ${latest.root.toString('hex')}`;
    let verdict = key === undefined ? undefined : this.verdicts.get(key);
    if (verdict === undefined) {
      let p = key === undefined ? undefined : this.comparing.get(key);
      if (p === undefined) {
        p = this.compare(v, latest, source, opts.bounded === true);
        if (key !== undefined) {
          this.comparing.set(key, p);
          p.then(
            (r) => this.verdicts.set(key, r, r.result === 'unknown' ? { ttl: UNKNOWN_VERDICT_TTL_MS } : {}),
            () => {},
          ).finally(() => this.comparing.delete(key));
        }
      }
      verdict = await p;
    }
    return latest === undefined ? verdict : { ...verdict, latest };
  }

  private async compare(v: Verified, latest: CosignedCheckpoint | undefined, source: string, bounded = false): Promise<Verdict> {
    const cp = v.checkpoint;
    if (latest === undefined) return { result: 'unknown', reason: `this witness has not cosigned any checkpoint of ${cp.origin}` };
    if (cp.treeSize === latest.treeSize) {
      if (cp.rootHash.equals(latest.root)) return { result: 'consistent', reason: 'same tree size and root as the latest cosigned checkpoint' };
      const evidence = this.recordFork(buildEvidence(latest.note, v.logSigned), source);
      return { result: 'fork', reason: `this witness cosigned a different root for tree size ${cp.treeSize}`, evidence };
    }
    if (cp.treeSize < latest.treeSize) {
      const h = this.checkAgainstHistory(v, source);
      if (h !== undefined) return h;
    }
    const [smaller, smallerNote, larger, largerNote] =
      cp.treeSize < latest.treeSize
        ? [cp, v.logSigned, { ...cp, treeSize: latest.treeSize, rootHash: latest.root }, latest.note]
        : [{ ...cp, treeSize: latest.treeSize, rootHash: latest.root }, latest.note, cp, v.logSigned];
    if (smaller.treeSize === 0) {
      return smaller.rootHash.equals(EMPTY_ROOT)
        ? { result: 'consistent', reason: 'the empty tree is a prefix of every tree' }
        : { result: 'unknown', reason: 'a size-0 checkpoint with a non-empty root' };
    }
    if (v.log.url === null) return { result: 'unknown', reason: `no URL configured for ${cp.origin}: cannot fetch a consistency proof` };
    if (bounded && this.fetchesInFlight >= this.maxGossipFetches) {
      fail('overloaded', `this witness is already fetching ${this.fetchesInFlight} proofs for gossip; retry later`);
    }
    const client = this.clientFor(v.log.url);
    let proof: Hash[];
    let kind: ReturnType<typeof classifyEvidenceProof>;
    this.fetchesInFlight++;
    try {
      proof = await client.evidenceProof(smaller.treeSize, larger.treeSize, larger.rootHash);
      kind = classifyEvidenceProof(smaller, larger, proof);
      if (kind !== 'consistent') {
        // Not from stale cached tiles: decide on fresh ones.
        client.clearCache();
        proof = await client.evidenceProof(smaller.treeSize, larger.treeSize, larger.rootHash);
        kind = classifyEvidenceProof(smaller, larger, proof);
      }
    } catch (e) {
      return { result: 'unknown', reason: `cannot build a proof from the log's tiles: ${(e as Error).message}` };
    } finally {
      this.fetchesInFlight--;
    }
    switch (kind) {
      case 'consistent':
        return { result: 'consistent', reason: `tree size ${smaller.treeSize} is a prefix of tree size ${larger.treeSize}` };
      case 'fork': {
        const evidence = this.recordFork(buildEvidence(smallerNote, largerNote, proof), source);
        return { result: 'fork', reason: `tree size ${smaller.treeSize} is not a prefix of tree size ${larger.treeSize}`, evidence };
      }
      default:
        return { result: 'unknown', reason: `the log's tiles do not match its checkpoint of size ${larger.treeSize}` };
    }
  }

  /**
   * Pull mode: fetch the log's checkpoint, build the consistency proof from its tiles, and cosign it through the
   * same add-checkpoint path. Returns what happened (for logs and tests).
   */
  async pull(log: LogConfig): Promise<string> {
    if (log.url === null) return 'no URL';
    const client = this.clientFor(log.url);
    const note = await client.checkpoint();
    const v = this.verifyLogSigned(note);
    if (v.log.origin !== log.origin) fail('malformed', `${log.url}/checkpoint is for origin ${v.log.origin}, not ${log.origin}`);
    const latest = this.store.latest(log.origin);
    const known = latest?.treeSize ?? 0;
    if (latest !== undefined && v.checkpoint.treeSize < known) {
      const verdict = await this.compare(v, latest, `pull ${log.url}`);
      return `log served an older checkpoint (${v.checkpoint.treeSize} < ${known}): ${verdict.result}`;
    }
    if (latest !== undefined && v.checkpoint.treeSize === known && v.checkpoint.rootHash.equals(latest.root)) return 'up to date';
    const attempt = async () => {
      const proof = latest === undefined ? [] : await client.consistencyProof(known, v.checkpoint.treeSize, v.checkpoint.rootHash);
      await this.cosign({ oldSize: known, consistencyProof: proof, checkpoint: note });
    };
    try {
      try {
        await attempt();
      } catch (e) {
        if (!isPkglogError(e, 'invalid_proof') || latest === undefined) throw e;
        client.clearCache(); // once more from fresh tiles, in case cached ones are stale
        await attempt();
      }
      return `cosigned ${v.checkpoint.treeSize}`;
    } catch (e) {
      if (!(e instanceof PkglogError) || e.code !== 'invalid_proof') throw e;
      // The tiles do not prove the new checkpoint extends the cosigned one: find out whether it is a provable fork.
      const verdict = await this.compare(v, this.store.latest(log.origin), `pull ${log.url}`);
      return `refused ${v.checkpoint.treeSize}: ${e.message} (${verdict.result}: ${verdict.reason})`;
    }
  }
}
