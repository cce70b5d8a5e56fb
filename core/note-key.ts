/**
 * C2SP signed-note keys, the part shared by every signature type: key names, key IDs, the signature type bytes, and
 * the Signer/Verifier interfaces that note.ts (Ed25519, notes) and cosignature.ts (cosignature/v1, ML-DSA-44) implement.
 * Its own module so that note.ts and cosignature.ts both depend on it and not on each other.
 */
import { fail } from './errors.ts';
import { utf8 } from './encoding.ts';
import { sha256 } from './hash.ts';

/** Signature types (the byte before the public key in key IDs and vkeys). */
export const SIG_TYPE_ED25519 = 0x01;
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;
/** Timestamped ML-DSA-44 (sub)tree cosignatures (tlog-cosignature, subtree/v1): logs' and witnesses' post-quantum keys. */
export const SIG_TYPE_MLDSA44 = 0x06;

/** Largest signed note accepted by the parsers (bytes); here so that checkpoint.ts need not import note.ts. */
export const MAX_NOTE_SIZE = 1 << 20;

export interface NoteSignature {
  name: string;
  keyId: Buffer; // 4 bytes
  signature: Buffer; // the bytes after the key ID
}

export interface Verifier {
  name: string;
  keyId: Buffer;
  type: number;
  publicKey: Buffer;
  /** Checks `signature` (bytes after the key ID) over the note text `msg`; never throws. */
  verify(msg: Uint8Array, signature: Uint8Array): boolean;
}

export interface Signer {
  name: string;
  keyId: Buffer;
  type: number;
  publicKey: Buffer;
  /** The signature bytes (after the key ID) for the note text `msg`. */
  sign(msg: Uint8Array): Buffer;
}

// Go's unicode.IsSpace set: ASCII spaces, NEL, NBSP and the Unicode Z categories.
const UNICODE_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
// C0 controls (never allowed in a note) and lone UTF-16 surrogates (not encodable as UTF-8).
const CONTROL_OR_LONE_SURROGATE = /[\u0000-\u001f]|\p{Cs}/u;

/** Key name grammar: non-empty, no Unicode spaces, no "+". (Also rejects control characters and lone surrogates.) */
export function isValidKeyName(name: string): boolean {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    !name.includes('+') &&
    !UNICODE_SPACE.test(name) &&
    !CONTROL_OR_LONE_SURROGATE.test(name)
  );
}

/** Throws 'malformed' unless isValidKeyName(name). */
export function checkKeyName(name: string): void {
  if (!isValidKeyName(name)) fail('malformed', 'invalid key name');
}

/** First 4 bytes of SHA-256(name ‖ "\n" ‖ type ‖ publicKey). */
export function keyId(name: string, type: number, publicKey: Uint8Array): Buffer {
  checkKeyName(name);
  if (!Number.isInteger(type) || type < 0 || type > 255) fail('malformed', 'signature type must be a byte');
  return sha256(utf8(name), Buffer.from([0x0a, type]), publicKey).subarray(0, 4);
}
