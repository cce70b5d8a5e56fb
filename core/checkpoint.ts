/**
 * C2SP tlog-checkpoint body: origin, tree size, root hash, optional extension lines.
 * Parsing is strict: the parsed checkpoint is re-formatted and compared with the input.
 */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { decodeBase64, encodeBase64, parseDecimal } from './encoding.ts';
import { MAX_NOTE_SIZE } from './note-key.ts';

export interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: Hash;
  extensions: string[];
}

// C0 controls (includes "\n") and lone surrogates (not encodable as UTF-8).
const BAD_LINE_CHARS = /[\u0000-\u001f]|\p{Cs}/u;

function checkLine(line: string, what: string): void {
  if (typeof line !== 'string' || line.length === 0) fail('malformed', `checkpoint ${what} must be non-empty`);
  if (BAD_LINE_CHARS.test(line)) fail('malformed', `checkpoint ${what} contains a control character`);
}

/** Strict parse of a checkpoint body (the note text, ending in "\n"). Throws 'malformed' ('too_large' over MAX_NOTE_SIZE). */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string') fail('malformed', 'checkpoint must be a string');
  if (text.length > MAX_NOTE_SIZE) fail('too_large', 'checkpoint is too large');
  if (!text.endsWith('\n')) fail('malformed', 'checkpoint must end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) fail('malformed', 'checkpoint must have at least three lines');
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  checkLine(origin, 'origin');
  for (const e of extensions) checkLine(e, 'extension line');
  const checkpoint: Checkpoint = {
    origin,
    treeSize: parseDecimal(size, 'tree size'),
    rootHash: decodeBase64(root, 'root hash', 32),
    extensions,
  };
  if (formatCheckpoint(checkpoint) !== text) fail('malformed', 'checkpoint is not canonical');
  return checkpoint;
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, treeSize, rootHash, extensions } = checkpoint;
  checkLine(origin, 'origin');
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) fail('malformed', 'tree size must be a non-negative integer');
  if (!(rootHash instanceof Uint8Array) || rootHash.length !== 32) fail('malformed', 'root hash must be 32 bytes');
  if (!Array.isArray(extensions)) fail('malformed', 'extensions must be an array');
  for (const e of extensions) checkLine(e, 'extension line');
  return [origin, String(treeSize), encodeBase64(rootHash), ...extensions].map((l) => l + '\n').join('');
}
