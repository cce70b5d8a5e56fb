/** C2SP tlog-proof: an offline proof of inclusion (index, inclusion proof, signed checkpoint, optional extra). */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

export interface TlogProof {
  extra?: Buffer;
  index: number;
  inclusionProof: Hash[];
  /** The signed checkpoint note, verbatim (text, blank line, signature lines). */
  checkpoint: string;
}

/** Strict parse. Throws 'malformed'. */
export function parseTlogProof(text: Uint8Array | string): TlogProof {
  void text;
  return fail('internal', 'not implemented');
}

export function formatTlogProof(proof: TlogProof): string {
  void proof;
  return fail('internal', 'not implemented');
}
