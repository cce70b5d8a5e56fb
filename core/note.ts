/**
 * C2SP signed-note: notes, signatures, key IDs, verifier keys (vkey) and signer keys.
 * Works on bytes: the note text is UTF-8, each signature line is "— <name> <base64(keyId ‖ sig)>\n".
 *
 * Error codes: grammar violations are 'malformed'; inputs over MAX_NOTE_SIZE bytes or with more than
 * MAX_NOTE_SIGNATURES signature lines are 'too_large'.
 */
import { fail } from './errors.ts';
import { decodeBase64, decodeHex, encodeBase64, utf8 } from './encoding.ts';
import { ed25519Sign, ed25519Verify, keyPairFromSeed } from './ed25519.ts';
import { cosignatureSigner, cosignatureVerifier, isValidMlDsaKeyName, mldsaCosigner, mldsaCosignatureVerifier, type MlDsaCosignerOptions } from './cosignature.ts';
import { mldsa44KeyPairFromSeed, MLDSA44_PUBLIC_KEY_SIZE } from './mldsa.ts';
import { checkKeyName, keyId, MAX_NOTE_SIZE, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, SIG_TYPE_MLDSA44, type NoteSignature, type Signer, type Verifier } from './note-key.ts';

export {
  isValidKeyName,
  keyId,
  MAX_NOTE_SIZE,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  SIG_TYPE_MLDSA44,
  type NoteSignature,
  type Signer,
  type Verifier,
} from './note-key.ts';
/** Most signature lines accepted in one note (the spec requires at least 16). Added export. */
export const MAX_NOTE_SIGNATURES = 100;
/** Longest vkey / signer key string accepted. Added export. */
export const MAX_KEY_STRING_LENGTH = 4096;

export interface Note {
  /** The note text, every line ending in "\n" (the message that log signatures sign). */
  text: string;
  signatures: NoteSignature[];
}

const CONTROL_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f]/;
/** Strict UTF-8 (one decoder: without `stream`, each decode() call is independent). */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const SIG_PREFIX = Buffer.from('— ', 'utf8'); // E2 80 94 20
const SUPPORTED_TYPES = new Set([SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44]);

/** Length of the public key material of a supported signature type. Added export. */
export function publicKeySize(type: number): number {
  return type === SIG_TYPE_MLDSA44 ? MLDSA44_PUBLIC_KEY_SIZE : 32;
}

/** The public key of a signer key's 32-byte seed (Ed25519 for 0x01 and 0x04, ML-DSA-44 for 0x06). */
function publicKeyFromSeed(type: number, seed: Uint8Array): Buffer {
  return type === SIG_TYPE_MLDSA44 ? mldsa44KeyPairFromSeed(seed).publicKey : keyPairFromSeed(seed).publicKey;
}

function checkType(type: number): void {
  if (!SUPPORTED_TYPES.has(type)) fail('malformed', 'unsupported signature type');
}

/** An ML-DSA-44 key name is also the subtree/v1 cosigner_name<1..255>: at most 255 bytes. */
function checkNameForType(name: string, type: number): void {
  if (type === SIG_TYPE_MLDSA44 && !isValidMlDsaKeyName(name)) fail('malformed', 'an ML-DSA-44 key name is at most 255 bytes');
}

/** `name+<8 hex keyId>+<base64(type ‖ publicKey)>`. */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  checkKeyName(name);
  checkType(type);
  const size = publicKeySize(type);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== size) fail('malformed', `public key must be ${size} bytes`);
  checkNameForType(name, type);
  const id = keyId(name, type, publicKey);
  return `${name}+${id.toString('hex')}+${encodeBase64(Buffer.concat([Buffer.from([type]), publicKey]))}`;
}

/**
 * Splits `name+hex8+base64` (the base64 may itself contain "+"); checks the type and the key length: the public
 * key of the type for a vkey, a 32-byte seed for a signer key (every type).
 */
function parseKeyTriple(s: string, what: string, seed: boolean): { name: string; keyId: Buffer; type: number; key: Buffer } {
  const i = s.indexOf('+');
  const j = i < 0 ? -1 : s.indexOf('+', i + 1);
  if (i < 0 || j < 0) fail('malformed', `${what} must be name+keyid+key`);
  const name = s.slice(0, i);
  checkKeyName(name);
  const id = decodeHex(s.slice(i + 1, j), `${what} key ID`, 4);
  const raw = decodeBase64(s.slice(j + 1), `${what} key`);
  if (raw.length < 1) fail('malformed', `${what} has no signature type`);
  const type = raw[0]!;
  checkType(type);
  const size = seed ? 32 : publicKeySize(type);
  if (raw.length !== 1 + size) fail('malformed', `${what} key must be ${size} bytes for type 0x${type.toString(16).padStart(2, '0')}`);
  return { name, keyId: id, type, key: Buffer.from(raw.subarray(1)) };
}

function checkKeyString(s: string, what: string): void {
  if (typeof s !== 'string') fail('malformed', `${what} must be a string`);
  if (s.length > MAX_KEY_STRING_LENGTH) fail('malformed', `${what} is too long`);
}

/** Strict parse of a vkey of type 0x01 (Ed25519), 0x04 (cosignature/v1) or 0x06 (ML-DSA-44 subtree/v1). Throws 'malformed'. */
export function parseVerifierKey(vkey: string): Verifier {
  checkKeyString(vkey, 'verifier key');
  const { name, keyId: id, type, key } = parseKeyTriple(vkey, 'verifier key', false);
  if (!keyId(name, type, key).equals(id)) fail('malformed', 'verifier key ID does not match the key');
  const v =
    type === SIG_TYPE_ED25519 ? ed25519Verifier(name, key) : type === SIG_TYPE_COSIGNATURE_V1 ? cosignatureVerifier(name, key) : mldsaCosignatureVerifier(name, key);
  if (formatVerifierKey(v.name, v.type, v.publicKey) !== vkey) fail('malformed', 'verifier key is not canonical');
  return v;
}

/** An Ed25519 note verifier (type 0x01) from a name and a 32-byte public key. Added export. */
export function ed25519Verifier(name: string, publicKey: Uint8Array): Verifier {
  checkKeyName(name);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) fail('malformed', 'public key must be 32 bytes');
  const pk = Buffer.from(publicKey);
  return {
    name,
    keyId: keyId(name, SIG_TYPE_ED25519, pk),
    type: SIG_TYPE_ED25519,
    publicKey: pk,
    verify: (msg, signature) => ed25519Verify(pk, msg, signature),
  };
}

/**
 * `PRIVATE+KEY+<name>+<8 hex keyId>+<base64(type ‖ 32-byte seed)>` (golang.org/x/mod/sumdb/note format; for type
 * 0x06 the seed is the FIPS 204 ML-DSA-44 key generation seed ξ, see docs/keys.md). `publicKey` saves deriving it.
 */
export function formatSignerKey(name: string, type: number, seed: Uint8Array, publicKey?: Uint8Array): string {
  checkKeyName(name);
  checkType(type);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) fail('malformed', 'seed must be 32 bytes');
  checkNameForType(name, type);
  const id = keyId(name, type, publicKey ?? publicKeyFromSeed(type, seed));
  return `PRIVATE+KEY+${name}+${id.toString('hex')}+${encodeBase64(Buffer.concat([Buffer.from([type]), seed]))}`;
}

/** The fields of a signer key. Added export (a witness builds its cosigner with `cosignatureSigner(name, seed, clock)`). */
export interface SignerKeyFields {
  name: string;
  type: number;
  keyId: Buffer;
  seed: Buffer;
  publicKey: Buffer;
}

/** Strict parse of a signer key into its fields, checking the key ID against the derived public key. Added export. */
export function parseSignerKeyFields(skey: string): SignerKeyFields {
  checkKeyString(skey, 'signer key');
  if (!skey.startsWith('PRIVATE+KEY+')) fail('malformed', 'signer key must start with PRIVATE+KEY+');
  const { name, keyId: id, type, key: seed } = parseKeyTriple(skey.slice('PRIVATE+KEY+'.length), 'signer key', true);
  checkNameForType(name, type);
  const publicKey = publicKeyFromSeed(type, seed);
  if (!keyId(name, type, publicKey).equals(id)) fail('malformed', 'signer key ID does not match the key');
  if (formatSignerKey(name, type, seed, publicKey) !== skey) fail('malformed', 'signer key is not canonical');
  return { name, type, keyId: id, seed, publicKey };
}

/**
 * Strict parse of a signer key of type 0x01, 0x04 or 0x06. Throws 'malformed'.
 * A type-0x04 (cosignature/v1) or 0x06 (ML-DSA-44) key needs the clock `timestamp` (seconds); without it, it is
 * rejected ('malformed'). `random` (32 fresh bytes per call) makes ML-DSA-44 signing hedged, else deterministic.
 */
export function parseSignerKey(skey: string, timestamp?: () => number, random?: () => Uint8Array): Signer {
  return signerFromFields(parseSignerKeyFields(skey), timestamp, random);
}

/** The note Signer for parsed signer key fields (see parseSignerKey). Added export. */
export function signerFromFields(f: SignerKeyFields, timestamp?: () => number, random?: () => Uint8Array): Signer {
  if (f.type === SIG_TYPE_ED25519) return ed25519Signer(f.name, f.seed);
  if (timestamp === undefined) fail('malformed', 'a cosigner key (type 0x04 or 0x06) needs a timestamp function');
  if (f.type === SIG_TYPE_MLDSA44) {
    const opts: MlDsaCosignerOptions = { timestamp };
    if (random !== undefined) opts.random = random;
    return mldsaCosigner(f.name, f.seed, opts);
  }
  return cosignatureSigner(f.name, f.seed, timestamp);
}

/** An Ed25519 note signer (type 0x01) from a name and a 32-byte seed. */
export function ed25519Signer(name: string, seed: Uint8Array): Signer {
  checkKeyName(name);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) fail('malformed', 'seed must be 32 bytes');
  const kp = keyPairFromSeed(seed);
  return {
    name,
    keyId: keyId(name, SIG_TYPE_ED25519, kp.publicKey),
    type: SIG_TYPE_ED25519,
    publicKey: kp.publicKey,
    sign: (msg) => ed25519Sign(kp, msg),
  };
}

/** Converts string input to bytes (rejecting lone surrogates) and enforces the size cap. */
function toBytes(input: Uint8Array | string, what: string, maxSize: number): Buffer {
  if (typeof input === 'string') {
    if (input.length > maxSize) fail('too_large', `${what} is larger than ${maxSize} bytes`);
    if (!input.isWellFormed()) fail('malformed', `${what} is not valid UTF-8`); // a lone surrogate
    input = utf8(input);
  } else if (!(input instanceof Uint8Array)) {
    fail('malformed', `${what} must be bytes or a string`);
  }
  if (input.length > maxSize) fail('too_large', `${what} is larger than ${maxSize} bytes`);
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

/** Checks that `b` is valid UTF-8 without ASCII control characters other than "\n"; returns the decoded text. */
function decodeNoteBytes(b: Buffer, what: string): string {
  let text: string;
  try {
    text = UTF8.decode(b);
  } catch {
    for (const c of b) if (c < 0x20 && c !== 0x0a) fail('malformed', `${what} contains a control character`);
    return fail('malformed', `${what} is not valid UTF-8`);
  }
  // On the decoded text: one regex scan instead of a loop over every byte of notes that carry ML-DSA signatures.
  if (CONTROL_EXCEPT_NEWLINE.test(text)) fail('malformed', `${what} contains a control character`);
  return text;
}

/**
 * Checks note text given as a string: non-empty, ends in "\n", no control characters other than "\n",
 * encodable as UTF-8 and within the size cap. Returns its bytes. Added export.
 */
export function noteTextBytes(text: string): Buffer {
  if (typeof text !== 'string' || !text.endsWith('\n')) fail('malformed', 'note text must end in a newline');
  const b = toBytes(text, 'note text', MAX_NOTE_SIZE);
  decodeNoteBytes(b, 'note text');
  return b;
}

interface ParsedNote extends Note {
  textBytes: Buffer;
  /** Each signature line's base64 (canonical: one per byte string), in `signatures` order. */
  base64: string[];
}

function parseNoteInternal(input: Uint8Array | string): ParsedNote {
  const b = toBytes(input, 'signed note', MAX_NOTE_SIZE);
  // A well-formed string is valid UTF-8 once encoded: only its control characters need a look (no decoding back).
  if (typeof input === 'string') {
    if (CONTROL_EXCEPT_NEWLINE.test(input)) fail('malformed', 'signed note contains a control character');
  } else {
    decodeNoteBytes(b, 'signed note');
  }
  const split = b.lastIndexOf('\n\n');
  if (split < 0) fail('malformed', 'signed note has no blank line before the signatures');
  const textBytes = Buffer.from(b.subarray(0, split + 1));
  const sigs = b.subarray(split + 2);
  if (sigs.length === 0 || sigs[sigs.length - 1] !== 0x0a) fail('malformed', 'signed note must end in a signature line');
  const signatures: NoteSignature[] = [];
  const base64: string[] = [];
  let pos = 0;
  while (pos < sigs.length) {
    const end = sigs.indexOf(0x0a, pos);
    const line = sigs.subarray(pos, end);
    pos = end + 1;
    if (signatures.length >= MAX_NOTE_SIGNATURES) fail('too_large', `more than ${MAX_NOTE_SIGNATURES} signatures`);
    if (!line.subarray(0, SIG_PREFIX.length).equals(SIG_PREFIX)) fail('malformed', 'signature line must start with "— "');
    const rest = line.subarray(SIG_PREFIX.length).toString('utf8');
    const sp = rest.indexOf(' ');
    if (sp < 0) fail('malformed', 'signature line must be "— <name> <base64>"');
    const name = rest.slice(0, sp);
    checkKeyName(name);
    const b64 = rest.slice(sp + 1);
    const raw = decodeBase64(b64, 'signature');
    if (raw.length < 5) fail('malformed', 'signature is too short');
    signatures.push({ name, keyId: Buffer.from(raw.subarray(0, 4)), signature: Buffer.from(raw.subarray(4)) });
    base64.push(b64);
  }
  return { text: textBytes.toString('utf8'), textBytes, signatures, base64 };
}

/**
 * Strict parse of a signed note (split at the last blank line; caps on size and signature count).
 * Throws 'malformed' ('too_large' over MAX_NOTE_SIZE bytes or MAX_NOTE_SIGNATURES signatures).
 */
export function parseSignedNote(note: Uint8Array | string): Note {
  const { text, signatures } = parseNoteInternal(note);
  return { text, signatures };
}

/** One signature line, "— <name> <base64(keyId ‖ signature)>\n". Added export (a witness's add-checkpoint response). */
export function formatSignatureLine(sig: NoteSignature): string {
  checkKeyName(sig.name);
  if (!(sig.keyId instanceof Uint8Array) || sig.keyId.length !== 4) fail('malformed', 'key ID must be 4 bytes');
  if (!(sig.signature instanceof Uint8Array) || sig.signature.length < 1) fail('malformed', 'signature must not be empty');
  return `— ${sig.name} ${encodeBase64(Buffer.concat([sig.keyId, sig.signature]))}\n`;
}

/** Canonical encoding: text, "\n", then one line per signature. */
export function formatSignedNote(note: Note): string {
  noteTextBytes(note.text);
  if (note.signatures.length < 1) fail('malformed', 'a signed note needs at least one signature');
  return note.text + '\n' + note.signatures.map(formatSignatureLine).join('');
}

/** The signature of `text` (must end in "\n") by `signer`. Added export. */
export function signText(text: string, signer: Signer): NoteSignature {
  return signBytes(noteTextBytes(text), signer);
}

/**
 * The signature by `signer` of note text already checked: the `textBytes` of a VerifiedNote (or noteTextBytes'
 * result). Saves checking the text again on a hot path (a witness cosigning what it just verified). Added export.
 */
export function signBytes(textBytes: Buffer, signer: Signer): NoteSignature {
  checkKeyName(signer.name);
  if (signer.keyId.length !== 4) fail('malformed', 'signer key ID must be 4 bytes');
  return { name: signer.name, keyId: Buffer.from(signer.keyId), signature: signer.sign(textBytes) };
}

/** Signs `text` (must end in "\n") with every signer; returns the signed note. */
export function signNote(text: string, signers: Signer[]): string {
  const b = noteTextBytes(text);
  return formatSignedNote({ text, signatures: signers.map((s) => signBytes(b, s)) });
}

export interface VerifiedNote {
  note: Note;
  /** The note text's bytes (what signatures sign), already checked. */
  textBytes: Buffer;
  /** The known verifiers whose signatures verified, in signature order. */
  verified: Array<{ verifier: Verifier; signature: NoteSignature }>;
}

function sameKey(a: Verifier, b: Verifier): boolean {
  return a.type === b.type && a.publicKey.equals(b.publicKey);
}

/**
 * Parses and verifies: a signature whose name and key ID match a known verifier must verify (else 'bad_signature');
 * unknown signatures are ignored; at least one known signature must be present (else 'unknown_key').
 * Every signature by a known key is verified (also repeated ones); `verified` lists each verifier once, with its
 * first signature. Type-0x01 verifiers check the text, type-0x04 ones the cosignature/v1 message and type-0x06 ones
 * the ML-DSA-44 subtree/v1 message (the timestamp is read from the signature bytes), so one call checks a log
 * signature and witness cosignatures together. Signature lines of any other type or length are just unknown
 * signatures: ignored unless their name and key ID match a configured key.
 * Two different keys with the same name and key ID both configured → 'unknown_key' (ambiguous), as in Go.
 * Parse errors as in parseSignedNote ('malformed', 'too_large').
 */
export function verifyNote(note: Uint8Array | string, verifiers: Verifier[]): VerifiedNote {
  const parsed = parseNoteInternal(note);
  const byId = new Map<string, Verifier[]>();
  for (const v of verifiers) {
    const k = `${v.name}\n${v.keyId.toString('hex')}`;
    const list = byId.get(k);
    if (list === undefined) byId.set(k, [v]);
    else if (!list.some((w) => sameKey(w, v))) list.push(v);
  }
  const verified: VerifiedNote['verified'] = [];
  const seen = new Set<string>();
  const checked = new Set<string>();
  for (let i = 0; i < parsed.signatures.length; i++) {
    const sig = parsed.signatures[i]!;
    const k = `${sig.name}\n${sig.keyId.toString('hex')}`;
    const list = byId.get(k);
    if (list === undefined) continue;
    const key = `${sig.name}+${sig.keyId.toString('hex')}`;
    if (list.length > 1) fail('unknown_key', `ambiguous key ${key}`);
    const v = list[0]!;
    // Identical repeated lines are verified once (bounds the work on a large note full of copies).
    const memo = `${sig.name}\n${parsed.base64[i]}`;
    if (!checked.has(memo)) {
      if (!v.verify(parsed.textBytes, sig.signature)) fail('bad_signature', `invalid signature for key ${key}`);
      checked.add(memo);
    }
    if (!seen.has(k)) {
      seen.add(k);
      verified.push({ verifier: v, signature: sig });
    }
  }
  if (verified.length === 0) fail('unknown_key', 'no signature from a known key');
  return { note: { text: parsed.text, signatures: parsed.signatures }, textBytes: parsed.textBytes, verified };
}
