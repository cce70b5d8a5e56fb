/**
 * C2SP tlog-cosignature: timestamped cosignatures of two types.
 * - Ed25519, type 0x04 (`cosignature/v1`): signature bytes (after the key ID) timestamp (8 bytes, big-endian
 *   seconds) ‖ Ed25519 signature (64) over "cosignature/v1\ntime <ts>\n" ‖ checkpoint text (extension lines included).
 * - ML-DSA-44, type 0x06 (`subtree/v1`): timestamp (8) ‖ ML-DSA-44 signature (2,420) over the binary
 *   cosigned_message (core/subtree.ts) naming the cosigner, the origin, start 0, end = tree size and the root hash
 *   (extension lines are not signed). Also subtrees with a non-zero start (timestamp 0), which have no checkpoint form.
 * Timestamps are limited to 2^53-1 (exact JS numbers); larger ones are treated as invalid (the spec lets verifiers
 * reject timestamps in the future).
 */
import { keyId, isValidKeyName, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44, type Signer, type Verifier, type NoteSignature } from './note-key.ts';
import { ed25519Sign, ed25519Verify, keyPairFromSeed } from './ed25519.ts';
import { mldsa44KeyPairFromSeed, mldsa44Sign, mldsa44Verify, MLDSA44_PUBLIC_KEY_SIZE, MLDSA44_SIGNATURE_SIZE, MLDSA44_SEED_SIZE, type MlDsa44KeyPair } from './mldsa.ts';
import { formatCosignedMessage, MAX_SUBTREE_NAME_BYTES, type CosignedMessage } from './subtree.ts';
import { parseCheckpoint } from './checkpoint.ts';
import { decodeUtf8, utf8 } from './encoding.ts';
import { fail, isPkglogError } from './errors.ts';

/** Length of a cosignature/v1 signature after the key ID. Added export. */
export const COSIGNATURE_V1_SIZE = 72;
/** Length of an ML-DSA-44 timestamped_signature (after the key ID): timestamp (8) ‖ signature (2,420). */
export const COSIGNATURE_MLDSA44_SIZE = 8 + MLDSA44_SIGNATURE_SIZE;

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) fail('malformed', 'cosignature timestamp must be a non-negative integer (seconds)');
}

function messagePrefix(timestamp: number): Buffer {
  return utf8(`cosignature/v1\ntime ${timestamp}\n`);
}

/** `cosignature/v1\ntime <seconds>\n` + checkpoint text. */
export function cosignatureMessage(checkpointText: string, timestamp: number): Buffer {
  checkTimestamp(timestamp);
  if (typeof checkpointText !== 'string' || !checkpointText.endsWith('\n')) fail('malformed', 'checkpoint text must end in a newline');
  return Buffer.concat([messagePrefix(timestamp), utf8(checkpointText)]);
}

function checkNameAndKey(name: string, key: Uint8Array, what: string): void {
  if (!isValidKeyName(name)) fail('malformed', 'invalid key name');
  if (!(key instanceof Uint8Array) || key.length !== 32) fail('malformed', `${what} must be 32 bytes`);
}

/** A cosigner (type 0x04) from a name and 32-byte seed; `timestamp()` is read at signing time (seconds). */
export function cosignatureSigner(name: string, seed: Uint8Array, timestamp: () => number): Signer {
  checkNameAndKey(name, seed, 'seed');
  if (typeof timestamp !== 'function') fail('malformed', 'timestamp must be a function returning seconds');
  const kp = keyPairFromSeed(seed);
  return {
    name,
    keyId: keyId(name, SIG_TYPE_COSIGNATURE_V1, kp.publicKey),
    type: SIG_TYPE_COSIGNATURE_V1,
    publicKey: kp.publicKey,
    sign(msg: Uint8Array): Buffer {
      const ts = timestamp();
      if (!Number.isSafeInteger(ts) || ts < 0) fail('internal', 'the cosigner clock returned an invalid timestamp (want integer seconds)');
      const tsBytes = Buffer.alloc(8);
      tsBytes.writeBigUInt64BE(BigInt(ts));
      return Buffer.concat([tsBytes, ed25519Sign(kp, Buffer.concat([messagePrefix(ts), msg]))]);
    },
  };
}

/**
 * The timestamp (seconds) inside a timestamped_signature (bytes after the key ID): a cosignature/v1 one
 * (ts(8) ‖ sig(64)) or an ML-DSA-44 one (ts(8) ‖ sig(2,420)); the two lengths tell them apart. Throws 'malformed'.
 */
export function cosignatureTimestamp(signature: NoteSignature | Uint8Array): number {
  const b = signature instanceof Uint8Array ? signature : signature?.signature;
  if (!(b instanceof Uint8Array) || (b.length !== COSIGNATURE_V1_SIZE && b.length !== COSIGNATURE_MLDSA44_SIZE)) {
    fail('malformed', `a timestamped cosignature must be ${COSIGNATURE_V1_SIZE} or ${COSIGNATURE_MLDSA44_SIZE} bytes`);
  }
  const ts = Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64BE(0);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) fail('malformed', 'cosignature timestamp is out of range');
  return Number(ts);
}

/** A verifier for cosignature/v1 from a type-0x04 public key (also produced by parseVerifierKey). */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): Verifier {
  checkNameAndKey(name, publicKey, 'public key');
  const pk = Buffer.from(publicKey);
  return {
    name,
    keyId: keyId(name, SIG_TYPE_COSIGNATURE_V1, pk),
    type: SIG_TYPE_COSIGNATURE_V1,
    publicKey: pk,
    verify(msg: Uint8Array, signature: Uint8Array): boolean {
      let ts: number;
      try {
        ts = cosignatureTimestamp(signature);
      } catch {
        return false;
      }
      return ed25519Verify(pk, Buffer.concat([messagePrefix(ts), msg]), signature.subarray(8));
    },
  };
}

// ---- ML-DSA-44 (type 0x06, subtree/v1) ----

/** Key names of ML-DSA-44 cosigners are also the message's cosigner_name<1..255>: at most 255 bytes of UTF-8. */
export function isValidMlDsaKeyName(name: string): boolean {
  return isValidKeyName(name) && utf8(name).length <= MAX_SUBTREE_NAME_BYTES;
}

function checkMlDsaName(name: string): void {
  if (!isValidMlDsaKeyName(name)) fail('malformed', `invalid key name (an ML-DSA-44 key name is at most ${MAX_SUBTREE_NAME_BYTES} bytes)`);
}

function timestampBytes(ts: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(ts));
  return b;
}

/** The subtree/v1 message for a checkpoint (note text): start 0, end = tree size, hash = root. Throws 'malformed'. */
export function checkpointCosignedMessage(cosignerName: string, checkpointText: string, timestamp: number): Buffer {
  const cp = parseCheckpoint(checkpointText);
  return formatCosignedMessage({ cosignerName, timestamp, origin: cp.origin, start: 0, end: cp.treeSize, hash: cp.rootHash });
}

/** Options of an ML-DSA-44 cosigner. */
export interface MlDsaCosignerOptions {
  /** Clock read at signing time (seconds); a checkpoint cosignature's timestamp must be non-zero. */
  timestamp: () => number;
  /** 32 fresh random bytes per signature (hedged signing, FIPS 204's default); without it, deterministic signing. */
  random?: () => Uint8Array;
}

/** An ML-DSA-44 key pair and name, for signing checkpoints (as a note Signer) and subtrees. */
export interface MlDsaCosigner extends Signer {
  /** A subtree/v1 signature (bytes after the key ID) over any subtree; timestamp must be 0 unless start is 0. */
  signSubtree(subtree: Omit<CosignedMessage, 'cosignerName'>): Buffer;
}

/**
 * An ML-DSA-44 cosigner (type 0x06) from a name and a 32-byte seed. As a note Signer its `sign(noteText)` parses
 * the checkpoint and signs the subtree/v1 message for [0, tree size) with `timestamp()` (must be ≥ 1): what a log
 * (cosigning its own checkpoint, as tlog-checkpoint recommends) and a witness's add-checkpoint response need.
 */
export function mldsaCosigner(name: string, seed: Uint8Array, opts: MlDsaCosignerOptions): MlDsaCosigner {
  checkMlDsaName(name);
  if (!(seed instanceof Uint8Array) || seed.length !== MLDSA44_SEED_SIZE) fail('malformed', 'seed must be 32 bytes');
  if (typeof opts?.timestamp !== 'function') fail('malformed', 'timestamp must be a function returning seconds');
  const kp: MlDsa44KeyPair = mldsa44KeyPairFromSeed(seed);
  const signMessage = (m: CosignedMessage): Buffer =>
    Buffer.concat([timestampBytes(m.timestamp), mldsa44Sign(kp, formatCosignedMessage(m), opts.random)]);
  return {
    name,
    keyId: keyId(name, SIG_TYPE_MLDSA44, kp.publicKey),
    type: SIG_TYPE_MLDSA44,
    publicKey: kp.publicKey,
    sign(msg: Uint8Array): Buffer {
      const ts = opts.timestamp();
      if (!Number.isSafeInteger(ts) || ts < 1) fail('internal', 'the cosigner clock returned an invalid timestamp (want integer seconds ≥ 1)');
      const cp = parseCheckpoint(decodeUtf8(msg, 'checkpoint'));
      return signMessage({ cosignerName: name, timestamp: ts, origin: cp.origin, start: 0, end: cp.treeSize, hash: cp.rootHash });
    },
    signSubtree(subtree) {
      return signMessage({ ...subtree, cosignerName: name });
    },
  };
}

/** Splits an ML-DSA-44 timestamped_signature; undefined when the length or the timestamp is out of range. */
function splitMlDsaSignature(signature: Uint8Array): { timestamp: number; sig: Uint8Array } | undefined {
  if (!(signature instanceof Uint8Array) || signature.length !== COSIGNATURE_MLDSA44_SIZE) return undefined;
  const ts = Buffer.from(signature.buffer, signature.byteOffset, 8).readBigUInt64BE(0);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { timestamp: Number(ts), sig: signature.subarray(8) };
}

/** True iff `signature` (after the key ID) is `name`'s subtree/v1 cosignature of `subtree` with its timestamp. Never throws. */
export function verifySubtreeSignature(name: string, publicKey: Uint8Array, subtree: Omit<CosignedMessage, 'cosignerName' | 'timestamp'>, signature: Uint8Array): boolean {
  const parts = splitMlDsaSignature(signature);
  if (parts === undefined) return false;
  let msg: Buffer;
  try {
    msg = formatCosignedMessage({ ...subtree, cosignerName: name, timestamp: parts.timestamp });
  } catch (e) {
    if (isPkglogError(e)) return false; // e.g. a non-zero timestamp on a subtree with start ≠ 0
    throw e;
  }
  return mldsa44Verify(publicKey, msg, parts.sig);
}

/**
 * A note verifier for ML-DSA-44 cosignatures (type 0x06), also produced by parseVerifierKey. `verify(noteText, sig)`
 * parses the note text as a checkpoint and checks the subtree/v1 signature over (name, timestamp from the signature,
 * origin, 0, tree size, root hash); a text that is not a checkpoint, an origin over 255 bytes, a wrong length or a
 * timestamp ≥ 2^53 → false. A zero timestamp is accepted (the spec allows it for start 0: no "largest tree"
 * statement); tlog-witness's rule that add-checkpoint cosignatures carry a non-zero one is for the log to check.
 */
export function mldsaCosignatureVerifier(name: string, publicKey: Uint8Array): Verifier {
  checkMlDsaName(name);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== MLDSA44_PUBLIC_KEY_SIZE) fail('malformed', `ML-DSA-44 public key must be ${MLDSA44_PUBLIC_KEY_SIZE} bytes`);
  const pk = Buffer.from(publicKey);
  return {
    name,
    keyId: keyId(name, SIG_TYPE_MLDSA44, pk),
    type: SIG_TYPE_MLDSA44,
    publicKey: pk,
    verify(msg: Uint8Array, signature: Uint8Array): boolean {
      let subtree: Omit<CosignedMessage, 'cosignerName' | 'timestamp'>;
      try {
        const cp = parseCheckpoint(decodeUtf8(msg, 'checkpoint'));
        subtree = { origin: cp.origin, start: 0, end: cp.treeSize, hash: cp.rootHash };
      } catch (e) {
        if (isPkglogError(e)) return false;
        throw e;
      }
      return verifySubtreeSignature(name, pk, subtree, signature);
    },
  };
}
