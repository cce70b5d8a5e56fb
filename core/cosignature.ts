/** C2SP tlog-cosignature (cosignature/v1): Ed25519 witness cosignatures with a timestamp. */
import type { Signer, Verifier, NoteSignature } from './note.ts';
import { fail } from './errors.ts';

/** `cosignature/v1\ntime <seconds>\n` + checkpoint text. */
export function cosignatureMessage(checkpointText: string, timestamp: number): Buffer {
  void checkpointText; void timestamp;
  return fail('internal', 'not implemented');
}

/** A cosigner (type 0x04) from a name and 32-byte seed; `timestamp()` is read at signing time (seconds). */
export function cosignatureSigner(name: string, seed: Uint8Array, timestamp: () => number): Signer {
  void name; void seed; void timestamp;
  return fail('internal', 'not implemented');
}

/** The timestamp (seconds) inside a cosignature/v1 signature (bytes after the key ID: ts(8) ‖ sig(64)). Throws 'malformed'. */
export function cosignatureTimestamp(signature: NoteSignature | Uint8Array): number {
  void signature;
  return fail('internal', 'not implemented');
}

/** A verifier for cosignature/v1 from a type-0x04 public key (also produced by parseVerifierKey). */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): Verifier {
  void name; void publicKey;
  return fail('internal', 'not implemented');
}
