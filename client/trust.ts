/**
 * Trust roots: the C2SP tlog-policy (logs, witnesses, quorum) and the registries whose countersignatures the
 * client accepts. Also the checkpoint checks against the policy (log signature, quorum, freshness).
 */
import { readFileSync, statSync } from 'node:fs';
import { fail, isPkglogError, PkglogError } from '../core/errors.ts';
import { parsePublicKey, isPrivateKeyText, PRIVATE_KEY_MESSAGE, type PublicKey, type PublicKeyOptions } from '../core/public-key.ts';
import { parsePolicy, verifyCheckpointWithPolicy, quorumSatisfied, LOG_KEY_TYPES, WITNESS_KEY_TYPES, type Policy, type PolicyLog, type PolicyWitness, type PolicyVerifiedCheckpoint } from '../core/policy.ts';
import { parseVerifierKey, SIG_TYPE_ED25519, verifyNote } from '../core/note.ts';
import { cosignatureTimestamp } from '../core/cosignature.ts';
import { EXIT, Report } from './report.ts';
import { readKeyFile } from '../runtime/key-file.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import { reason } from '../runtime/cli.ts';

export function loadPolicyFile(path: string): Policy {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (e) {
    return fail('not_found', `cannot read policy file ${path}: ${reason(e)}`);
  }
  try {
    return parsePolicy(text);
  } catch (e) {
    if (e instanceof PkglogError) fail(e.code, `policy file ${path}: ${e.message}`);
    throw e;
  }
}

/**
 * A public key from a command-line value: the key itself (vkey or bare base64, core/public-key.ts), or the path of
 * a file holding one (its first non-comment line). A private key, given inline or as a key file, is named as such.
 */
export function publicKeyArg(value: string, options: PublicKeyOptions): PublicKey {
  const what = options.what ?? 'public key';
  try {
    return parsePublicKey(value, options);
  } catch (e) {
    if (!isPkglogError(e) || isPrivateKeyText(value) || !isReadableFile(value)) throw e;
  }
  const text = readKeyFile(value, what);
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#')) ?? '';
  if (isPrivateKeyText(line)) fail('malformed', `${what}: ${value} is a private key file; ${PRIVATE_KEY_MESSAGE.replace(/^this is a private key \([^)]*\); /, '')}`);
  return parsePublicKey(line, { ...options, what: `${what} (file ${value})` });
}

/** How to name a key argument in messages: with its value, unless that is a private key (never echoed). */
export function keyArgName(flag: string, value: string): string {
  if (isPrivateKeyText(value)) return flag;
  return `${flag} ${value.length > 80 ? `${value.slice(0, 80)}…` : value}`;
}

function isReadableFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A policy trusting one log key and no witnesses (quorum none), e.g. from `--log-key VKEY`. */
export function policyForLogKey(vkey: string, url?: string): Policy {
  const k = publicKeyArg(vkey, { type: LOG_KEY_TYPES, what: '--log-key', bare: false });
  const verifier = parseVerifierKey(k.vkey!);
  return { logs: [{ verifier, ...(url !== undefined ? { url } : {}) }], witnesses: [], quorum: { kind: 'none' } };
}

/** Registries by name → 32-byte Ed25519 public key. */
export type RegistryKeys = Map<string, Buffer>;

/** Parses `NAME+hex+base64` (a vkey, its name is the registry name) or `NAME=<base64 32-byte key>`. */
export function parseRegistryKey(s: string, what = 'registry key'): { name: string; key: Buffer } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})=(\S+)$/.exec(s.trim());
  if (m !== null && !isPrivateKeyText(s)) {
    const k = parsePublicKey(m[2]!, { type: SIG_TYPE_ED25519, what: `${what} ${m[1]}`, name: m[1]! });
    return { name: m[1]!, key: k.publicKey };
  }
  const k = parsePublicKey(s, { type: SIG_TYPE_ED25519, what: `${what} (a vkey, or NAME=<base64 key>)`, bare: false });
  return { name: k.name!, key: k.publicKey };
}

/** Registry keys from command-line values; a value naming a readable file is read (one key per line, # comments). */
export function loadRegistryKeys(values: string[]): RegistryKeys {
  const out: RegistryKeys = new Map();
  for (const value of values) {
    let lines = [value];
    let what = keyArgName('--registry-key', value);
    if (!value.includes('+') && !value.includes('=')) {
      if (!isReadableFile(value)) fail('not_found', `registry key ${JSON.stringify(value)} is neither a key nor a readable file`);
      lines = readKeyFile(value, '--registry-key').split('\n');
      what = `--registry-key file ${value}`;
      if (lines.some((l) => isPrivateKeyText(l))) fail('malformed', `${what} is a private key file; ${PRIVATE_KEY_MESSAGE.replace(/^this is a private key \([^)]*\); /, '')}`);
    }
    for (const raw of lines) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const { name, key } = parseRegistryKey(line, what);
      const prev = out.get(name);
      if (prev !== undefined && !prev.equals(key)) fail('malformed', `two different keys given for registry ${name}`);
      out.set(name, key);
    }
  }
  return out;
}

export function policyLogFor(policy: Policy, origin: string): PolicyLog | undefined {
  return policy.logs.find((l) => l.verifier.name === origin);
}

/** The log URL to use: explicit, else the policy's URL for the (single or named) log. */
export function logURLFromPolicy(policy: Policy, origin?: string): string | undefined {
  const logs = origin === undefined ? policy.logs : policy.logs.filter((l) => l.verifier.name === origin);
  return logs.find((l) => l.url !== undefined)?.url;
}

/**
 * verifyCheckpointWithPolicy, memoised per policy for the last few checkpoint notes: verifying many proofs against
 * the same checkpoint (a registry, a mirror) checks its log signature and cosignatures once. Only successes are kept.
 */
const verifiedNotes = new WeakMap<Policy, Map<string, PolicyVerifiedCheckpoint>>();
const MEMO_SIZE = 32;

function verifiedWithPolicy(policy: Policy, signed: string): PolicyVerifiedCheckpoint {
  // A Map in insertion order, the oldest evicted: cheap to create for a policy used once.
  let memo = verifiedNotes.get(policy);
  const hit = memo?.get(signed);
  if (hit !== undefined) return hit;
  const v = verifyCheckpointWithPolicy(policy, signed);
  if (memo === undefined) verifiedNotes.set(policy, (memo = new Map()));
  if (memo.size >= MEMO_SIZE) memo.delete(memo.keys().next().value!);
  memo.set(signed, v);
  return v;
}

export interface CheckpointVerdict {
  checkpoint: Checkpoint;
  signed: string;
  /** Witness cosignatures that verified (newest timestamp per witness, seconds). */
  cosigners: Array<{ witness: PolicyWitness; timestamp: number }>;
}

/** Stages of checkpoint verification that can fail, for exit codes and messages. */
export type CheckpointFailure = 'log-signature' | 'quorum' | 'freshness';

export class CheckpointError extends PkglogError {
  readonly stage: CheckpointFailure;
  constructor(stage: CheckpointFailure, cause: PkglogError | string) {
    const msg = typeof cause === 'string' ? cause : cause.message;
    super(typeof cause === 'string' ? 'quorum_not_met' : cause.code, msg);
    this.stage = stage;
  }
}

/**
 * Verifies a signed checkpoint against the policy: a policy log's signature (key name = origin), the quorum of
 * witness cosignatures, and (maxAgeSeconds) that a quorum of cosignatures is no older than that, against freeze
 * attacks. Throws CheckpointError naming the failed stage.
 */
export function verifyCheckpoint(policy: Policy, signed: string, nowMs: number, maxAgeSeconds?: number): CheckpointVerdict {
  let verdict: PolicyVerifiedCheckpoint;
  try {
    verdict = verifiedWithPolicy(policy, signed);
  } catch (e) {
    if (!isPkglogError(e)) throw e;
    if (e.code === 'quorum_not_met') throw new CheckpointError('quorum', e);
    throw new CheckpointError('log-signature', new PkglogError(e.code, `checkpoint signature check failed: ${e.message}`));
  }
  // A copy: the verdict is memoised, the caller owns what it gets.
  const checkpoint = { ...verdict.checkpoint, rootHash: Buffer.from(verdict.checkpoint.rootHash), extensions: [...verdict.checkpoint.extensions] };
  if (maxAgeSeconds !== undefined) {
    const nowSec = Math.floor(nowMs / 1000);
    const notBefore = nowSec - maxAgeSeconds;
    const newest = verdict.cosigners.reduce((m, c) => Math.max(m, c.timestamp), -1);
    const describe = newest < 0 ? 'it has no witness cosignature' : `its newest cosignature is from ${isoSeconds(newest)}`;
    if (newest < notBefore) {
      throw new CheckpointError('freshness', `checkpoint is stale: ${describe}, older than the maximum age of ${formatDuration(maxAgeSeconds)} (possible freeze attack)`);
    }
    const fresh = verdict.cosigners.filter((c) => c.timestamp >= notBefore).map((c) => c.witness.name);
    if (!quorumSatisfied(policy.quorum, new Set(fresh))) {
      throw new CheckpointError('freshness', `checkpoint is stale: fewer than a quorum of cosignatures are newer than ${formatDuration(maxAgeSeconds)} (fresh cosignatures from: ${fresh.join(', ') || 'none'})`);
    }
  }
  return { checkpoint, signed, cosigners: verdict.cosigners };
}

/**
 * Every verified cosignature on a checkpoint with its timestamp, per policy witness (all of them, not only the
 * newest): what min-age needs. Assumes the log signature was already checked.
 */
export function allCosignatures(policy: Policy, signed: string): Array<{ witness: PolicyWitness; timestamp: number }> {
  const witnesses = policy.witnesses.filter((w) => WITNESS_KEY_TYPES.includes(w.verifier.type));
  const logs = policy.logs.map((l) => l.verifier);
  const verified = verifyNote(signed, [...logs, ...witnesses.map((w) => w.verifier)]);
  const out: Array<{ witness: PolicyWitness; timestamp: number }> = [];
  for (const sig of verified.note.signatures) {
    const w = witnesses.find((x) => x.verifier.name === sig.name && x.verifier.keyId.equals(sig.keyId));
    if (w !== undefined) out.push({ witness: w, timestamp: cosignatureTimestamp(sig) });
  }
  return out;
}

export function isoSeconds(sec: number): string {
  return new Date(sec * 1000).toISOString().replace('.000Z', 'Z');
}

const UNITS: Array<[string, number]> = [
  ['w', 7 * 86400],
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

/** Parses durations like 90d, 12h, 30m, 45s, 2w, or a bare number of seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d{1,10})([wdhms]?)$/.exec(s);
  if (m === null) return fail('malformed', `bad duration ${JSON.stringify(s)} (use e.g. 90d, 12h, 30m, 45s)`);
  const unit = UNITS.find(([u]) => u === m[2])?.[1] ?? 1;
  return Number(m[1]) * unit;
}

export function formatDuration(sec: number): string {
  for (const [u, n] of UNITS) if (sec >= n && sec % n === 0) return `${sec / n}${u}`;
  return `${sec}s`;
}

/**
 * Runs a follow-the-log job (monitor, audit) into a report: network failures exit 7, checkpoint failures exit 3, a
 * served tile that does not match the signed root (runtime/tiles.ts) exits 8.
 */
export async function runFollowing(job: (report: Report) => Promise<void>): Promise<Report> {
  const report = new Report();
  try {
    await job(report);
  } catch (e) {
    if (isPkglogError(e, 'network')) report.fail('network', (e as Error).message, EXIT.NETWORK);
    else if (e instanceof CheckpointError) report.fail('checkpoint', e.message, EXIT.POLICY);
    else if (isPkglogError(e, 'invalid_proof') && typeof e.details?.tile === 'string') report.fail('tiles', e.message, EXIT.LOG_MISBEHAVED);
    else throw e;
  }
  return report;
}
