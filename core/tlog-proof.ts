/**
 * C2SP tlog-proof: an offline proof of inclusion (index, inclusion proof, signed checkpoint, optional extra).
 *
 * parseTlogProof checks the proof's own grammar strictly and the embedded signed checkpoint structurally only:
 * its text must be a valid checkpoint body and it must be followed by a blank line and "— " signature lines, but
 * the signatures are neither decoded nor verified (verify with verifyCheckpointWithPolicy or verifyNote). Nor is
 * the inclusion proof checked against the index and tree size: that is the verifier's job.
 */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { decodeBase64, decodeUtf8, encodeBase64, parseDecimal } from './encoding.ts';
import { MAX_NOTE_SIZE } from './note.ts';
import { parseCheckpoint } from './checkpoint.ts';

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';
/** Most inclusion proof lines accepted (indexes are < 2^53). Added export. */
export const MAX_INCLUSION_PROOF_LINES = 63;
/** Largest extra data accepted (bytes, decoded). Added export. */
export const MAX_EXTRA_SIZE = 64 * 1024;
/** Largest proof accepted (bytes). Added export. */
export const MAX_TLOG_PROOF_SIZE = MAX_NOTE_SIZE + 2 * MAX_EXTRA_SIZE;

export interface TlogProof {
  extra?: Buffer;
  index: number;
  inclusionProof: Hash[];
  /** The signed checkpoint note, verbatim (text, blank line, signature lines). */
  checkpoint: string;
}

const SIG_LINE_PREFIX = '— ';

/** Structural check of a signed checkpoint: checkpoint body, blank line, "— " lines, all lines ending in "\n". */
function checkSignedCheckpointShape(s: string): void {
  if (!s.endsWith('\n')) fail('malformed', 'signed checkpoint must end in a newline');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) fail('malformed', 'signed checkpoint has no signature block');
  parseCheckpoint(s.slice(0, split + 1));
  for (const line of s.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(SIG_LINE_PREFIX) || line.length <= SIG_LINE_PREFIX.length) {
      fail('malformed', 'signed checkpoint signature lines must start with "— "');
    }
  }
}

/** Strict parse. Throws 'malformed' ('too_large' over MAX_TLOG_PROOF_SIZE bytes). */
export function parseTlogProof(text: Uint8Array | string): TlogProof {
  let s: string;
  if (typeof text === 'string') {
    if (text.length > MAX_TLOG_PROOF_SIZE) fail('too_large', 'proof is too large');
    if (!text.isWellFormed()) fail('malformed', 'proof is not valid UTF-8');
    s = text;
  } else if (text instanceof Uint8Array) {
    if (text.length > MAX_TLOG_PROOF_SIZE) fail('too_large', 'proof is too large');
    s = decodeUtf8(text, 'proof');
  } else {
    return fail('malformed', 'proof must be bytes or a string');
  }
  if (Buffer.byteLength(s, 'utf8') > MAX_TLOG_PROOF_SIZE) fail('too_large', 'proof is too large');
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s)) fail('malformed', 'proof contains a control character');

  let pos = 0;
  const nextLine = (): string => {
    const end = s.indexOf('\n', pos);
    if (end < 0) fail('malformed', 'proof line is not terminated by a newline');
    const l = s.slice(pos, end);
    pos = end + 1;
    return l;
  };
  if (nextLine() !== TLOG_PROOF_HEADER) fail('malformed', `proof must start with ${TLOG_PROOF_HEADER}`);
  let l = nextLine();
  let extra: Buffer | undefined;
  if (l.startsWith('extra ')) {
    extra = decodeBase64(l.slice('extra '.length), 'extra data');
    if (extra.length > MAX_EXTRA_SIZE) fail('too_large', 'extra data is too large');
    l = nextLine();
  }
  if (!l.startsWith('index ')) fail('malformed', 'proof must have an "index <N>" line');
  const index = parseDecimal(l.slice('index '.length), 'index');
  const inclusionProof: Hash[] = [];
  for (;;) {
    l = nextLine();
    if (l === '') break;
    if (inclusionProof.length >= MAX_INCLUSION_PROOF_LINES) fail('malformed', 'too many inclusion proof lines');
    inclusionProof.push(decodeBase64(l, 'inclusion proof hash', 32));
  }
  const checkpoint = s.slice(pos);
  checkSignedCheckpointShape(checkpoint);
  const proof: TlogProof = { index, inclusionProof, checkpoint };
  if (extra !== undefined) proof.extra = extra;
  return proof;
}

/** The last checkpoint string formatTlogProof accepted (strings are immutable: the same text passes the same checks). */
let lastCheckedCheckpoint: string | undefined;

export function formatTlogProof(proof: TlogProof): string {
  if (!Number.isSafeInteger(proof.index) || proof.index < 0) fail('malformed', 'index must be a non-negative integer');
  if (proof.inclusionProof.length > MAX_INCLUSION_PROOF_LINES) fail('malformed', 'too many inclusion proof lines');
  for (const h of proof.inclusionProof) {
    if (!(h instanceof Uint8Array) || h.length !== 32) fail('malformed', 'inclusion proof hashes must be 32 bytes');
  }
  if (typeof proof.checkpoint !== 'string') fail('malformed', 'checkpoint must be a string');
  // A log formats many proofs against one checkpoint (every reply of a batch): its checks run once per distinct note.
  if (proof.checkpoint !== lastCheckedCheckpoint) {
    if (!proof.checkpoint.isWellFormed() || /[\u0000-\u0009\u000b-\u001f]/.test(proof.checkpoint)) {
      fail('malformed', 'checkpoint contains invalid characters');
    }
    checkSignedCheckpointShape(proof.checkpoint);
    lastCheckedCheckpoint = proof.checkpoint;
  }
  let out = TLOG_PROOF_HEADER + '\n';
  if (proof.extra !== undefined) {
    if (!(proof.extra instanceof Uint8Array) || proof.extra.length > MAX_EXTRA_SIZE) fail('malformed', 'invalid extra data');
    out += `extra ${encodeBase64(proof.extra)}\n`;
  }
  out += `index ${proof.index}\n`;
  for (const h of proof.inclusionProof) out += encodeBase64(h) + '\n';
  return out + '\n' + proof.checkpoint;
}
