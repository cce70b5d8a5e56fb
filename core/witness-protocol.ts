/**
 * C2SP tlog-witness add-checkpoint request body: "old <N>\n", proof lines, "\n", then the signed checkpoint.
 *
 * Error codes: a body over MAX_ADD_CHECKPOINT_BODY bytes is 'too_large'; everything else, including more than
 * MAX_PROOF_LINES proof lines (a protocol violation by the client), is 'malformed' (→ 400).
 * Semantic checks (old size ≤ checkpoint size, empty proof when old is 0, proof validity, signatures) are the
 * witness's job: the parser only checks the grammar. The checkpoint is returned verbatim, unparsed.
 */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { decodeBase64, encodeBase64, parseDecimal } from './encoding.ts';
import { MAX_NOTE_SIZE } from './note.ts';

export const MAX_PROOF_LINES = 63;
/** Largest request body accepted: a maximal signed note plus the old size and proof lines. Added export. */
export const MAX_ADD_CHECKPOINT_BODY = MAX_NOTE_SIZE + 4096;

export interface AddCheckpointRequest {
  oldSize: number;
  consistencyProof: Hash[];
  /** The signed checkpoint note, verbatim bytes. */
  checkpoint: Buffer;
}

/**
 * Strict parse. Throws 'malformed' (or 'too_large' when the body is over MAX_ADD_CHECKPOINT_BODY bytes).
 * More than 63 proof lines → 'malformed'.
 */
export function parseAddCheckpointRequest(body: Uint8Array): AddCheckpointRequest {
  if (!(body instanceof Uint8Array)) fail('malformed', 'request body must be bytes');
  if (body.length > MAX_ADD_CHECKPOINT_BODY) fail('too_large', 'request body is too large');
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const line = (start: number): [string, number] => {
    const end = b.indexOf(0x0a, start);
    if (end < 0) fail('malformed', 'request body line is not terminated by a newline');
    return [b.toString('latin1', start, end), end + 1];
  };
  let [first, pos] = line(0);
  if (!first.startsWith('old ')) fail('malformed', 'request body must start with "old <size>"');
  const oldSize = parseDecimal(first.slice(4), 'old size');
  const consistencyProof: Hash[] = [];
  for (;;) {
    const [l, next] = line(pos);
    pos = next;
    if (l === '') break;
    if (consistencyProof.length >= MAX_PROOF_LINES) fail('malformed', `more than ${MAX_PROOF_LINES} consistency proof lines`);
    consistencyProof.push(decodeBase64(l, 'consistency proof hash', 32));
  }
  if (pos >= b.length) fail('malformed', 'request body has no checkpoint');
  return { oldSize, consistencyProof, checkpoint: Buffer.from(b.subarray(pos)) };
}

export function formatAddCheckpointRequest(req: AddCheckpointRequest): Buffer {
  if (!Number.isSafeInteger(req.oldSize) || req.oldSize < 0) fail('malformed', 'old size must be a non-negative integer');
  if (req.consistencyProof.length > MAX_PROOF_LINES) fail('malformed', `more than ${MAX_PROOF_LINES} consistency proof lines`);
  for (const h of req.consistencyProof) {
    if (!(h instanceof Uint8Array) || h.length !== 32) fail('malformed', 'consistency proof hashes must be 32 bytes');
  }
  if (!(req.checkpoint instanceof Uint8Array) || req.checkpoint.length === 0) fail('malformed', 'checkpoint must not be empty');
  const head = `old ${req.oldSize}\n` + req.consistencyProof.map((h) => encodeBase64(h) + '\n').join('') + '\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), req.checkpoint]);
}
