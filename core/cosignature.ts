/**
 * C2SP tlog-cosignature (cosignature/v1): Ed25519 witness cosignatures with a timestamp.
 * Signature bytes (after the key ID): timestamp (8 bytes, big-endian seconds) ‖ Ed25519 signature (64).
 * Timestamps are limited to 2^53-1 (exact JS numbers); larger ones are treated as invalid.
 */
import { keyId, isValidKeyName, SIG_TYPE_COSIGNATURE_V1, type Signer, type Verifier, type NoteSignature } from './note-key.ts';
import { ed25519Sign, ed25519Verify, keyPairFromSeed } from './ed25519.ts';
import { utf8 } from './encoding.ts';
import { fail } from './errors.ts';

/** Length of a cosignature/v1 signature after the key ID. Added export. */
export const COSIGNATURE_V1_SIZE = 72;

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

/** The timestamp (seconds) inside a cosignature/v1 signature (bytes after the key ID: ts(8) ‖ sig(64)). Throws 'malformed'. */
export function cosignatureTimestamp(signature: NoteSignature | Uint8Array): number {
  const b = signature instanceof Uint8Array ? signature : signature?.signature;
  if (!(b instanceof Uint8Array) || b.length !== COSIGNATURE_V1_SIZE) fail('malformed', 'cosignature/v1 signature must be 72 bytes');
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
