/**
 * C2SP tlog-policy: trusted logs, witnesses, groups and the quorum a checkpoint must meet.
 *
 * Parsing follows the spec's grammar: lines end in "\n" (also the last one), items are separated by spaces and tabs,
 * blank and "#" comment lines are ignored, allowed octets are 0x09, 0x0A, 0x20-0x7E and 0x80-0xFF. Names (witnesses
 * and groups share one namespace, `none` is predefined) are compared as exact octet strings; this implementation
 * additionally requires names and URLs to be valid UTF-8 (so they can be JS strings without collisions).
 * Limits: MAX_POLICY_SIZE bytes, MAX_POLICY_ENTITIES logs, witnesses and groups each ('too_large' beyond).
 * Everything else that is wrong is 'malformed'.
 *
 * Key types: a log key is Ed25519 (0x01, a plain note signature) or ML-DSA-44 (0x06, the log's subtree/v1
 * cosignature, as tlog-checkpoint recommends); a witness key is cosignature/v1 (0x04) or ML-DSA-44 (0x06). A log or
 * witness rolling out an ML-DSA key next to its Ed25519 one is listed twice (two log lines with the same origin;
 * two witness names). Post-quantum only (`requirePostQuantum`): only 0x06 log signatures and 0x06 witness
 * cosignatures count. A vkey of a type core cannot check (0x02 ECDSA, a future type) does not make the policy
 * invalid: the line is kept in `unsupported` and never counted (the witness name stays usable in groups), so only a
 * quorum that cannot be met without it fails — as signed-note ignores signatures of unknown keys.
 */
import type { Verifier, VerifiedNote } from './note.ts';
import { parsePublicKeyVerifier } from './public-key.ts';
import { formatVerifierKey, isValidKeyName, parseSignedNote, verifyNote, SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44 } from './note.ts';
import { parseCheckpoint, type Checkpoint } from './checkpoint.ts';
import { cosignatureTimestamp } from './cosignature.ts';
import { fail, isPkglogError } from './errors.ts';
import { decodeBase64, decodeUtf8, parseDecimal, utf8 } from './encoding.ts';

/** Largest policy file accepted (bytes): room for MAX_POLICY_ENTITIES ML-DSA-44 witnesses (≈1.8 kB per vkey). Added export. */
export const MAX_POLICY_SIZE = 1024 * 1024;
/** Signature types a policy accepts for log keys and for witness keys. */
export const LOG_KEY_TYPES: readonly number[] = [SIG_TYPE_ED25519, SIG_TYPE_MLDSA44];
export const WITNESS_KEY_TYPES: readonly number[] = [SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44];
/** The post-quantum signature types (ML-DSA-44 subtree/v1). */
export const POST_QUANTUM_KEY_TYPES: readonly number[] = [SIG_TYPE_MLDSA44];
/** Most logs, witnesses and groups (each) in one policy; the spec recommends supporting at least 32. Added export. */
export const MAX_POLICY_ENTITIES = 256;

export interface PolicyLog {
  verifier: Verifier; // type 0x01 or 0x06, name = origin
  url?: string;
}

export interface PolicyWitness {
  name: string;
  verifier: Verifier; // type 0x04 or 0x06
  url?: string;
}

export type QuorumRule =
  | { kind: 'none' }
  | { kind: 'witness'; name: string }
  | { kind: 'group'; name: string; threshold: number; members: QuorumRule[] };

export interface Policy {
  logs: PolicyLog[];
  witnesses: PolicyWitness[];
  quorum: QuorumRule;
  /**
   * Log and witness lines whose vkey has a signature type this implementation cannot check (e.g. 0x02 ECDSA, a
   * future type): kept (a witness name stays defined for groups and the quorum) but never counted, so a checkpoint
   * fails only if the quorum cannot be met without them. Absent when there are none.
   */
  unsupported?: UnsupportedKey[];
}

export interface UnsupportedKey {
  kind: 'log' | 'witness';
  /** The witness's name in the policy (witness lines). */
  name?: string;
  /** The vkey as written, its key name and signature type byte. */
  vkey: string;
  keyName: string;
  type: number;
  url?: string;
}

/** Signature types core can verify (signed-note Ed25519, cosignature/v1, ML-DSA-44 subtree/v1). */
const CHECKABLE_TYPES: readonly number[] = [SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44];

/**
 * A well-formed vkey (`name+<8 hex>+<canonical base64 of type ‖ key>`) of a type core cannot check, or undefined
 * (then the vkey is parsed, and refused if wrong, by the usual parser). Its key ID is kept as written: how it is
 * derived depends on the type (0x02's is a hash of the DER key).
 */
function unsupportedVkey(vkey: string): { keyName: string; type: number; key: Buffer } | undefined {
  const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+={0,2})$/.exec(vkey);
  if (m === null || !isValidKeyName(m[1]!)) return undefined;
  let raw: Buffer;
  try {
    raw = decodeBase64(m[3]!, 'vkey');
  } catch {
    return undefined;
  }
  if (raw.length < 2 || CHECKABLE_TYPES.includes(raw[0]!)) return undefined;
  return { keyName: m[1]!, type: raw[0]!, key: Buffer.from(raw.subarray(1)) };
}


function token(bytes: string, what: string): string {
  // `bytes` holds one octet per char (latin1); names and URLs must be UTF-8.
  return decodeUtf8(Buffer.from(bytes, 'latin1'), what);
}

/**
 * Strict parse (names defined before use, 1 ≤ k ≤ n, no duplicates, exactly one quorum line). Throws 'malformed'
 * ('too_large' over the limits). Each name may be listed as a group member at most once in the whole file.
 */
export function parsePolicy(text: Uint8Array | string): Policy {
  let b: Buffer;
  if (typeof text === 'string') {
    if (text.length > MAX_POLICY_SIZE) fail('too_large', 'policy is too large');
    if (!text.isWellFormed()) fail('malformed', 'policy is not valid UTF-8');
    b = utf8(text);
  } else if (text instanceof Uint8Array) {
    b = Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  } else {
    return fail('malformed', 'policy must be bytes or a string');
  }
  if (b.length > MAX_POLICY_SIZE) fail('too_large', 'policy is too large');
  for (const c of b) {
    if (c !== 0x09 && c !== 0x0a && (c < 0x20 || c === 0x7f)) fail('malformed', 'policy contains a disallowed control character');
  }
  if (b.length > 0 && b[b.length - 1] !== 0x0a) fail('malformed', 'policy lines must end in a newline');

  const logs: PolicyLog[] = [];
  const witnesses: PolicyWitness[] = [];
  const names = new Map<string, QuorumRule>([['none', { kind: 'none' }]]);
  const usedAsMember = new Set<string>();
  const logKeys = new Set<string>();
  const witnessKeys = new Set<string>();
  let groups = 0;
  let quorum: QuorumRule | undefined;
  const unsupported: UnsupportedKey[] = [];
  const addUnsupported = (kind: 'log' | 'witness', k: { keyName: string; type: number; key: Buffer }, vkey: string, url: string | undefined, where: string, name?: string) => {
    const keys = kind === 'log' ? logKeys : witnessKeys;
    const id = k.key.toString('hex'); // duplicates: the same underlying key, whatever the names (tlog-policy)
    if (keys.has(id)) fail('malformed', `${where}: duplicate ${kind} key`);
    if ((kind === 'log' ? logs.length : witnesses.length) + unsupported.length >= MAX_POLICY_ENTITIES) fail('too_large', `more than ${MAX_POLICY_ENTITIES} ${kind}s`);
    keys.add(id);
    const u: UnsupportedKey = { kind, vkey, keyName: k.keyName, type: k.type };
    if (name !== undefined) u.name = name;
    if (url !== undefined) u.url = token(url, `${where}: url`);
    unsupported.push(u);
  };

  const lines = b.toString('latin1').split('\n');
  lines.pop(); // after the final "\n"
  lines.forEach((raw, i) => {
    const where = `policy line ${i + 1}`;
    const line = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (line === '' || line.startsWith('#')) return;
    const items = line.split(/[ \t]+/);
    const keyword = items[0];
    const newName = (s: string): string => {
      const name = token(s, `${where}: name`);
      if (names.has(name)) fail('malformed', `${where}: name "${name}" is already defined`);
      return name;
    };
    switch (keyword) {
      case 'log': {
        if (items.length < 2 || items.length > 3) fail('malformed', `${where}: want "log <vkey> [<url>]"`);
        const other = unsupportedVkey(token(items[1]!, `${where}: vkey`));
        if (other !== undefined) {
          addUnsupported('log', other, items[1]!, items[2], where);
          return;
        }
        const verifier = parsePublicKeyVerifier(token(items[1]!, `${where}: vkey`), { type: LOG_KEY_TYPES, what: `${where}: the log key` });
        const k = verifier.publicKey.toString('hex');
        if (logKeys.has(k)) fail('malformed', `${where}: duplicate log key`);
        if (logs.length >= MAX_POLICY_ENTITIES) fail('too_large', `more than ${MAX_POLICY_ENTITIES} logs`);
        logKeys.add(k);
        const log: PolicyLog = { verifier };
        if (items.length === 3) log.url = token(items[2]!, `${where}: url`);
        logs.push(log);
        return;
      }
      case 'witness': {
        if (items.length < 3 || items.length > 4) fail('malformed', `${where}: want "witness <name> <vkey> [<url>]"`);
        const name = newName(items[1]!);
        const other = unsupportedVkey(token(items[2]!, `${where}: vkey`));
        if (other !== undefined) {
          addUnsupported('witness', other, items[2]!, items[3], where, name);
          names.set(name, { kind: 'witness', name }); // defined, never cosigns
          return;
        }
        const verifier = parsePublicKeyVerifier(token(items[2]!, `${where}: vkey`), { type: WITNESS_KEY_TYPES, what: `${where}: the witness key` });
        const k = verifier.publicKey.toString('hex');
        if (witnessKeys.has(k)) fail('malformed', `${where}: duplicate witness key`);
        if (witnesses.length >= MAX_POLICY_ENTITIES) fail('too_large', `more than ${MAX_POLICY_ENTITIES} witnesses`);
        witnessKeys.add(k);
        const w: PolicyWitness = { name, verifier };
        if (items.length === 4) w.url = token(items[3]!, `${where}: url`);
        witnesses.push(w);
        names.set(name, { kind: 'witness', name });
        return;
      }
      case 'group': {
        if (items.length < 4) fail('malformed', `${where}: want "group <name> <all|any|k> <name>..."`);
        const name = newName(items[1]!);
        const memberNames = items.slice(3).map((m) => token(m, `${where}: member name`));
        if (memberNames.length > MAX_POLICY_ENTITIES * 2) fail('too_large', `${where}: too many members`);
        const n = memberNames.length;
        const t = items[2]!;
        const threshold = t === 'all' ? n : t === 'any' ? 1 : parseDecimal(t, `${where}: threshold`);
        if (threshold < 1 || threshold > n) fail('malformed', `${where}: threshold must be between 1 and ${n}`);
        const members = memberNames.map((m) => {
          if (m === 'none') fail('malformed', `${where}: "none" cannot be a group member`);
          const rule = names.get(m);
          if (rule === undefined) fail('malformed', `${where}: "${m}" is not defined on a preceding line`);
          if (usedAsMember.has(m)) fail('malformed', `${where}: "${m}" is already listed as a group member`);
          usedAsMember.add(m);
          return rule;
        });
        if (++groups > MAX_POLICY_ENTITIES) fail('too_large', `more than ${MAX_POLICY_ENTITIES} groups`);
        names.set(name, { kind: 'group', name, threshold, members });
        return;
      }
      case 'quorum': {
        if (items.length !== 2) fail('malformed', `${where}: want "quorum <name>"`);
        if (quorum !== undefined) fail('malformed', `${where}: more than one quorum line`);
        const name = token(items[1]!, `${where}: quorum name`);
        const rule = names.get(name);
        if (rule === undefined) fail('malformed', `${where}: "${name}" is not defined on a preceding line`);
        quorum = rule;
        return;
      }
      default:
        fail('malformed', `${where}: unknown keyword`);
    }
  });
  if (quorum === undefined) fail('malformed', 'policy has no quorum line');
  return unsupported.length === 0 ? { logs, witnesses, quorum } : { logs, witnesses, quorum, unsupported };
}

/** True if the witnesses named in `cosigned` satisfy the quorum. */
export function quorumSatisfied(rule: QuorumRule, cosigned: ReadonlySet<string>): boolean {
  switch (rule.kind) {
    case 'none':
      return true;
    case 'witness':
      return cosigned.has(rule.name);
    case 'group': {
      let count = 0;
      for (const m of rule.members) {
        if (quorumSatisfied(m, cosigned) && ++count >= rule.threshold) return true;
      }
      return count >= rule.threshold;
    }
  }
}

/**
 * The policy with only its post-quantum (ML-DSA-44) log and witness keys: a checkpoint then needs an ML-DSA log
 * cosignature and a quorum of ML-DSA witness cosignatures (the quorum rule is unchanged; the other witnesses are
 * simply never counted). What `pkglog verify --require-pq` uses.
 */
export function postQuantumPolicy(policy: Policy): Policy {
  return {
    logs: policy.logs.filter((l) => POST_QUANTUM_KEY_TYPES.includes(l.verifier.type)),
    witnesses: policy.witnesses.filter((w) => POST_QUANTUM_KEY_TYPES.includes(w.verifier.type)),
    quorum: policy.quorum,
  };
}

export interface VerifyWithPolicyOptions {
  /** Count only cosignatures with timestamp ≥ notBefore (seconds). */
  notBefore?: number;
  /** Count only post-quantum (ML-DSA-44) signatures: the log's and the witnesses' (see postQuantumPolicy). */
  requirePostQuantum?: boolean;
}

export interface PolicyVerifiedCheckpoint {
  log: PolicyLog;
  /** Witnesses whose cosignature verified, with the cosignature timestamp (seconds). */
  cosigners: Array<{ witness: PolicyWitness; timestamp: number }>;
  text: string;
  /** The parsed checkpoint (text). */
  checkpoint: Checkpoint;
}

/**
 * Verifies a signed checkpoint against the policy: signed by one of the logs (key name = origin) and cosigned
 * per the quorum (cosignatures with timestamp ≥ `notBefore` seconds when given; only ML-DSA-44 log and witness
 * signatures with `requirePostQuantum`). Throws 'bad_signature',
 * 'unknown_key' or 'quorum_not_met' with a clear message.
 * Also 'malformed' when the note or its checkpoint body does not parse. Any signature by a policy log (for this
 * origin) or policy witness that fails to verify rejects the checkpoint ('bad_signature'). When a witness cosigned
 * more than once, the newest timestamp counts. `cosigners` is in policy order.
 */
export function verifyCheckpointWithPolicy(
  policy: Policy,
  signedCheckpoint: Uint8Array | string,
  options?: number | VerifyWithPolicyOptions,
): PolicyVerifiedCheckpoint {
  const opts: VerifyWithPolicyOptions = typeof options === 'number' ? { notBefore: options } : (options ?? {});
  const notBefore = opts.notBefore;
  if (opts.requirePostQuantum === true) policy = postQuantumPolicy(policy);
  // The origin is the note's first line: the policy's keys for it are found without parsing the note twice (verifyNote
  // parses it strictly; a note that does not parse is 'malformed' before any 'unknown_key').
  const origin = firstLine(signedCheckpoint);
  const logs = policy.logs.filter((l) => l.verifier.name === origin && LOG_KEY_TYPES.includes(l.verifier.type));
  if (logs.length === 0) {
    parseCheckpoint(parseSignedNote(signedCheckpoint).text);
    const pq = opts.requirePostQuantum === true ? 'post-quantum (ML-DSA-44) ' : '';
    fail('unknown_key', `no ${pq}log key in the policy for origin "${origin}"`);
  }
  const witnesses = policy.witnesses.filter((w) => WITNESS_KEY_TYPES.includes(w.verifier.type));
  let verified: VerifiedNote;
  try {
    verified = verifyNote(signedCheckpoint, [...logs.map((l) => l.verifier), ...witnesses.map((w) => w.verifier)]);
  } catch (e) {
    // A note whose text is not a checkpoint is 'malformed' whatever its signatures are.
    if (isPkglogError(e) && e.code !== 'malformed' && e.code !== 'too_large') parseCheckpoint(parseSignedNote(signedCheckpoint).text);
    if (isPkglogError(e, 'unknown_key')) {
      fail('unknown_key', `checkpoint for "${origin}" is not signed by a policy log`);
    }
    throw e;
  }
  const text = verified.note.text;
  const checkpoint = parseCheckpoint(text);
  const log = logs.find((l) => verified.verified.some((v) => v.verifier === l.verifier));
  if (log === undefined) fail('unknown_key', `checkpoint for "${origin}" is not signed by a policy log`);

  const cosigners: PolicyVerifiedCheckpoint['cosigners'] = [];
  const names = new Set<string>();
  for (const witness of witnesses) {
    const v = witness.verifier;
    let newest = -1;
    for (const sig of verified.note.signatures) {
      // verifyNote checked every signature matching a known name and key ID.
      if (sig.name === v.name && sig.keyId.equals(v.keyId)) newest = Math.max(newest, cosignatureTimestamp(sig));
    }
    if (newest < 0 || (notBefore !== undefined && newest < notBefore)) continue;
    cosigners.push({ witness, timestamp: newest });
    names.add(witness.name);
  }
  if (!quorumSatisfied(policy.quorum, names)) {
    const have = cosigners.map((c) => c.witness.name).join(', ') || 'none';
    fail('quorum_not_met', `checkpoint does not meet the policy quorum (valid cosignatures from: ${have})`);
  }
  return { log, cosigners, text, checkpoint };
}

/** The first line of a note (its origin line for a checkpoint), or '' when there is none. */
function firstLine(note: Uint8Array | string): string {
  if (typeof note === 'string') {
    const nl = note.indexOf('\n');
    return nl < 0 ? '' : note.slice(0, nl);
  }
  if (!(note instanceof Uint8Array)) return '';
  const b = Buffer.from(note.buffer, note.byteOffset, note.byteLength);
  const nl = b.indexOf(0x0a);
  return nl < 0 ? '' : b.toString('utf8', 0, nl);
}

function formatRule(rule: QuorumRule, out: string[], defined: Set<string>): string {
  if (rule.kind === 'none' || rule.kind === 'witness') return rule.kind === 'none' ? 'none' : rule.name;
  const members = rule.members.map((m) => formatRule(m, out, defined));
  if (!defined.has(rule.name)) {
    defined.add(rule.name);
    const t = rule.threshold === members.length ? 'all' : rule.threshold === 1 ? 'any' : String(rule.threshold);
    out.push(`group ${rule.name} ${t} ${members.join(' ')}`);
  }
  return rule.name;
}

/**
 * The canonical tlog-policy text of `policy`: log lines, witness lines, groups (members before the groups that use
 * them), one quorum line. parsePolicy(formatPolicy(p)) describes the same policy. What a log publishes about itself
 * (GET /v1/policy) and what a client may save.
 */
export function formatPolicy(policy: Policy): string {
  const out: string[] = [];
  for (const l of policy.logs) {
    out.push(`log ${formatVerifierKey(l.verifier.name, l.verifier.type, l.verifier.publicKey)}${l.url === undefined ? '' : ' ' + l.url}`);
  }
  for (const u of policy.unsupported ?? []) if (u.kind === 'log') out.push(`log ${u.vkey}${u.url === undefined ? '' : ' ' + u.url}`);
  for (const w of policy.witnesses) {
    out.push(`witness ${w.name} ${formatVerifierKey(w.verifier.name, w.verifier.type, w.verifier.publicKey)}${w.url === undefined ? '' : ' ' + w.url}`);
  }
  for (const u of policy.unsupported ?? []) if (u.kind === 'witness') out.push(`witness ${u.name} ${u.vkey}${u.url === undefined ? '' : ' ' + u.url}`);
  const quorum = formatRule(policy.quorum, out, new Set());
  out.push(`quorum ${quorum}`);
  return out.join('\n') + '\n';
}
