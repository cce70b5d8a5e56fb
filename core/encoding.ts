/**
 * Strict encodings for untrusted input. Node's Buffer.from(s, 'base64') silently skips bad
 * characters; everything here checks the grammar first and the decoded length after.
 */
import { fail } from './errors.ts';

const BASE64_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX_LOWER = /^(?:[0-9a-f]{2})*$/;
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** The canonical base64 of 32 bytes (a hash): 42 characters, one whose 2 low bits are zero, "=". */
const BASE64_32 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Decodes standard, padded base64 (RFC 4648 §4); canonical form only. Throws 'malformed'. */
export function decodeBase64(s: string, what = 'base64 value', expectedLength?: number): Buffer {
  if (typeof s !== 'string') fail('malformed', `${what} is not standard padded base64`);
  // Hashes (proof lines, root hashes) are the common case: one anchored regex instead of the round trip below.
  if (expectedLength === 32 && BASE64_32.test(s)) return Buffer.from(s, 'base64');
  const b = Buffer.from(s, 'base64');
  // Only canonical standard padded base64 re-encodes to itself: Node's decoder skips bad characters and accepts the
  // URL-safe alphabet, missing padding and non-canonical trailing bits (e.g. "AB==" for "AA=="), none of which survive
  // the round trip. The grammar is checked only to say which it was (a regex over every signature cost more than the
  // decoding).
  if (b.toString('base64') !== s) {
    fail('malformed', BASE64_STD.test(s) ? `${what} is not canonical base64` : `${what} is not standard padded base64`);
  }
  if (expectedLength !== undefined && b.length !== expectedLength) {
    fail('malformed', `${what} must decode to ${expectedLength} bytes, got ${b.length}`);
  }
  return b;
}

export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** Decodes lowercase hex. Throws 'malformed'. */
export function decodeHex(s: string, what = 'hex value', expectedLength?: number): Buffer {
  if (typeof s !== 'string' || !HEX_LOWER.test(s)) fail('malformed', `${what} is not lowercase hex`);
  const b = Buffer.from(s, 'hex');
  if (expectedLength !== undefined && b.length !== expectedLength) {
    fail('malformed', `${what} must be ${expectedLength * 2} hex digits`);
  }
  return b;
}

/**
 * Parses an ASCII decimal with no sign and no leading zeros ("0" for zero), at most `max`
 * (default 2^53-1, so the result is an exact JS number). Throws 'malformed'.
 */
export function parseDecimal(s: string, what = 'number', max = Number.MAX_SAFE_INTEGER): number {
  if (typeof s !== 'string' || s.length > 16 || !DECIMAL.test(s)) fail('malformed', `${what} is not a canonical decimal`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n > max) fail('malformed', `${what} is out of range`);
  return n;
}

export function utf8(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** Strict UTF-8 (one decoder: without `stream`, each decode() call is independent). */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes bytes as strict UTF-8; throws 'malformed' on invalid sequences. */
export function decodeUtf8(b: Uint8Array, what = 'text'): string {
  try {
    return UTF8.decode(b);
  } catch {
    return fail('malformed', `${what} is not valid UTF-8`);
  }
}
