/**
 * C2SP signed-note: notes, signatures, key IDs, verifier keys (vkey) and signer keys.
 * Works on bytes: the note text is UTF-8, each signature line is "— <name> <base64(keyId ‖ sig)>\n".
 */
import { fail } from './errors.ts';

/** Signature types (the byte before the public key in key IDs and vkeys). */
export const SIG_TYPE_ED25519 = 0x01;
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;

export interface NoteSignature {
  name: string;
  keyId: Buffer; // 4 bytes
  signature: Buffer; // the bytes after the key ID
}

export interface Note {
  /** The note text, every line ending in "\n" (the message that log signatures sign). */
  text: string;
  signatures: NoteSignature[];
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

/** Key name grammar: non-empty, no Unicode spaces, no "+". */
export function isValidKeyName(name: string): boolean {
  void name;
  return fail('internal', 'not implemented');
}

/** First 4 bytes of SHA-256(name ‖ "\n" ‖ type ‖ publicKey). */
export function keyId(name: string, type: number, publicKey: Uint8Array): Buffer {
  void name; void type; void publicKey;
  return fail('internal', 'not implemented');
}

/** `name+<8 hex keyId>+<base64(type ‖ publicKey)>`. */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  void name; void type; void publicKey;
  return fail('internal', 'not implemented');
}

/** Strict parse of a vkey of type 0x01 (Ed25519) or 0x04 (cosignature/v1). Throws 'malformed'. */
export function parseVerifierKey(vkey: string): Verifier {
  void vkey;
  return fail('internal', 'not implemented');
}

/** `PRIVATE+KEY+<name>+<8 hex keyId>+<base64(type ‖ 32-byte seed)>` (golang.org/x/mod/sumdb/note format). */
export function formatSignerKey(name: string, type: number, seed: Uint8Array): string {
  void name; void type; void seed;
  return fail('internal', 'not implemented');
}

/** Strict parse of a signer key of type 0x01 or 0x04. Throws 'malformed'. */
export function parseSignerKey(skey: string): Signer {
  void skey;
  return fail('internal', 'not implemented');
}

/** An Ed25519 note signer (type 0x01) from a name and a 32-byte seed. */
export function ed25519Signer(name: string, seed: Uint8Array): Signer {
  void name; void seed;
  return fail('internal', 'not implemented');
}

/** Strict parse of a signed note (split at the last blank line; caps on size and signature count). Throws 'malformed'. */
export function parseSignedNote(note: Uint8Array | string): Note {
  void note;
  return fail('internal', 'not implemented');
}

/** Canonical encoding: text, "\n", then one line per signature. */
export function formatSignedNote(note: Note): string {
  void note;
  return fail('internal', 'not implemented');
}

/** Signs `text` (must end in "\n") with every signer; returns the signed note. */
export function signNote(text: string, signers: Signer[]): string {
  void text; void signers;
  return fail('internal', 'not implemented');
}

export interface VerifiedNote {
  note: Note;
  /** The known verifiers whose signatures verified, in signature order. */
  verified: Array<{ verifier: Verifier; signature: NoteSignature }>;
}

/**
 * Parses and verifies: a signature whose name and key ID match a known verifier must verify (else 'bad_signature');
 * unknown signatures are ignored; at least one known signature must be present (else 'unknown_key').
 */
export function verifyNote(note: Uint8Array | string, verifiers: Verifier[]): VerifiedNote {
  void note; void verifiers;
  return fail('internal', 'not implemented');
}
