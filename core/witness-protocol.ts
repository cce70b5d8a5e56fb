/** C2SP tlog-witness add-checkpoint request body: "old <N>\n", proof lines, "\n", then the signed checkpoint. */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';

export const MAX_PROOF_LINES = 63;

export interface AddCheckpointRequest {
  oldSize: number;
  consistencyProof: Hash[];
  /** The signed checkpoint note, verbatim bytes. */
  checkpoint: Buffer;
}

/** Strict parse. Throws 'malformed' (or 'too_large' over caps). */
export function parseAddCheckpointRequest(body: Uint8Array): AddCheckpointRequest {
  void body;
  return fail('internal', 'not implemented');
}

export function formatAddCheckpointRequest(req: AddCheckpointRequest): Buffer {
  void req;
  return fail('internal', 'not implemented');
}
