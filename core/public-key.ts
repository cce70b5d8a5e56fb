/**
 * Public keys as people pass them: the C2SP vkey that `pkglog keygen` (and `serve`, `witness`) print —
 * `<name>+<8 hex keyId>+<base64(type ‖ key)>`, a 32-byte Ed25519 key or a 1,312-byte ML-DSA-44 one (type 0x06) —
 * or the bare base64 of a 32-byte Ed25519 public key.
 * A signer key (`PRIVATE+KEY+…`, the content of a key file keygen writes) given where a public key is expected is
 * recognised and refused as such, so nobody pastes a secret into a policy or a command line by mistake without being
 * told. One parser for every place that asks for a public key (client, log, witness, evidence).
 */
import { fail, PkglogError } from './errors.ts';
import { decodeBase64 } from './encoding.ts';
import { formatVerifierKey, parseVerifierKey, MAX_KEY_STRING_LENGTH, SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44, type Verifier } from './note.ts';

export interface PublicKey {
  /** Signature type: SIG_TYPE_ED25519 (0x01), SIG_TYPE_COSIGNATURE_V1 (0x04) or SIG_TYPE_MLDSA44 (0x06). */
  type: number;
  /** The 32-byte Ed25519 public key, or the 1,312-byte ML-DSA-44 one. */
  publicKey: Buffer;
  /** The key name: from the vkey, else `options.name`; undefined for a bare key without a name. */
  name?: string;
  /** The canonical vkey, when the name is known. */
  vkey?: string;
  /** Which form was given. */
  form: 'vkey' | 'base64';
}

export interface PublicKeyOptions {
  /**
   * The signature type expected, or the types accepted (e.g. a log key: Ed25519 or ML-DSA-44); another one is
   * refused, naming both. A bare base64 key (always 32 bytes) gets the first type.
   */
  type: number | readonly number[];
  /** What the key is, for messages ("--watch-key", "registry key", "the log key"). */
  what?: string;
  /** The name to give a bare base64 key (e.g. the origin given next to it). A vkey keeps its own name. */
  name?: string;
  /** Accept bare base64 without `name` (default true). False where only a named key (a note verifier) can work. */
  bare?: boolean;
}

export const PRIVATE_KEY_MESSAGE = 'this is a private key (PRIVATE+KEY+…, the content of a key file written by keygen); pass the public key (vkey) that keygen printed instead, and keep the key file secret';

const BARE_BASE64 = /^[A-Za-z0-9+/]{43}=$/;
const VKEY_SHAPE = /^[^+\s]+\+[0-9A-Fa-f]{8}\+[A-Za-z0-9+/=]+$/;

function typeName(type: number): string {
  if (type === SIG_TYPE_ED25519) return 'an Ed25519 (type 0x01) key';
  if (type === SIG_TYPE_COSIGNATURE_V1) return 'a cosigner (cosignature/v1, type 0x04) key';
  if (type === SIG_TYPE_MLDSA44) return 'an ML-DSA-44 (subtree/v1, type 0x06) key';
  return `a type 0x${type.toString(16).padStart(2, '0')} key`;
}

/** True if `text` (e.g. a file's content) is a signer key rather than a public key. */
export function isPrivateKeyText(text: string): boolean {
  return typeof text === 'string' && /^\s*PRIVATE\+KEY\+/.test(text);
}

/**
 * Parses a public key given as a vkey or as bare base64 (surrounding whitespace, e.g. a file's final newline, is
 * ignored). Throws 'malformed' with a message naming `what`: for a private key, for the wrong signature type, for
 * anything else that is not a public key.
 */
export function parsePublicKey(text: string, options: PublicKeyOptions): PublicKey {
  const what = options.what ?? 'public key';
  const types: readonly number[] = typeof options.type === 'number' ? [options.type] : options.type;
  const bareType = types.find((t) => t !== SIG_TYPE_MLDSA44) ?? types[0]!;
  if (typeof text !== 'string') return fail('malformed', `${what} must be a string`);
  if (text.length > MAX_KEY_STRING_LENGTH) fail('malformed', `${what} is too long to be a public key`);
  const s = text.trim();
  if (isPrivateKeyText(s)) fail('malformed', `${what}: ${PRIVATE_KEY_MESSAGE}`);
  if (s === '') fail('malformed', `${what} is empty`);
  if (BARE_BASE64.test(s) && options.bare === false && options.name === undefined) {
    fail('malformed', `${what}: a bare base64 key has no name, which a signed-note verifier needs; pass the vkey (NAME+KEYID+KEY) that keygen printed`);
  }
  if (BARE_BASE64.test(s)) {
    const publicKey = decodeBase64(s, what, 32);
    if (bareType === SIG_TYPE_MLDSA44) fail('malformed', `${what}: an ML-DSA-44 key must be given as a vkey (NAME+KEYID+KEY)`);
    const out: PublicKey = { type: bareType, publicKey, form: 'base64' };
    if (options.name !== undefined) {
      out.name = options.name;
      out.vkey = formatVerifierKey(options.name, bareType, publicKey);
    }
    return out;
  }
  if (VKEY_SHAPE.test(s)) {
    let v: Verifier;
    try {
      v = parseVerifierKey(s);
    } catch (e) {
      return fail('malformed', `${what} is not a valid vkey: ${e instanceof PkglogError ? e.message : String(e)}`);
    }
    if (!types.includes(v.type)) fail('malformed', `${what} must be ${types.map(typeName).join(' or ')}; ${JSON.stringify(s.slice(0, 60))} is ${typeName(v.type)}`);
    return { type: v.type, publicKey: v.publicKey, name: v.name, vkey: s, form: 'vkey' };
  }
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(s) && s.length % 4 === 0) {
    fail('malformed', `${what} is not a public key: base64 of ${Buffer.from(s, 'base64').length} bytes, where an Ed25519 public key is 32 bytes (or pass the vkey keygen printed)`);
  }
  return fail('malformed', `${what} is not a public key: expected a vkey (NAME+KEYID+KEY, as keygen prints it) or the base64 of a 32-byte Ed25519 public key`);
}

/**
 * A note verifier from a public key: needs a name, from the vkey or `options.name`; a bare base64 key without one
 * is refused, saying why.
 */
export function parsePublicKeyVerifier(text: string, options: PublicKeyOptions): Verifier {
  const k = parsePublicKey(text, { ...options, bare: false });
  return parseVerifierKey(k.vkey!);
}
