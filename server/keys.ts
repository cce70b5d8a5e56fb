/** The log's signing keys (Ed25519, and ML-DSA-44 next to it): loaded from their files, or generated on first start (mode 0600). */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readKeyFile, createKeyFile } from '../runtime/key-file.ts';
import { fail } from '../core/errors.ts';
import { formatSignerKey, parseSignerKey, parseSignerKeyFields, signerFromFields, formatVerifierKey, isValidKeyName, SIG_TYPE_ED25519, SIG_TYPE_MLDSA44, type Signer } from '../core/note.ts';
import { keyPairFromSeed } from '../core/ed25519.ts';
import { sha256 } from '../core/hash.ts';

export interface LogKey {
  signer: Signer;
  origin: string;
  vkey: string;
}

/** The default origin for a new log: unique per key, so two local logs never share an origin. */
export function defaultOrigin(publicKey: Uint8Array): string {
  return `pkglog.localhost/${sha256(publicKey).subarray(0, 4).toString('hex')}`;
}

/** Loads an existing log key file (never creates one). */
export function loadLogKey(keyFile: string): LogKey {
  if (!existsSync(keyFile)) fail('not_found', `no log key file ${keyFile}`);
  const signer = parseSignerKey(readKeyFile(keyFile, 'log key file').trim());
  if (signer.type !== SIG_TYPE_ED25519) fail('malformed', `${keyFile} is not an Ed25519 note signing key`);
  return { signer, origin: signer.name, vkey: formatVerifierKey(signer.name, SIG_TYPE_ED25519, signer.publicKey) };
}

export function loadOrCreateLogKey(keyFile: string, origin: string | undefined, random: (n: number) => Buffer = randomBytes): LogKey {
  if (!existsSync(keyFile)) {
    const seed = random(32);
    const name = origin ?? defaultOrigin(keyPairFromSeed(seed).publicKey);
    if (!isValidKeyName(name)) fail('malformed', `origin ${JSON.stringify(name)} is not a valid key name`);
    createKeyFile(keyFile, formatSignerKey(name, SIG_TYPE_ED25519, seed) + '\n'); // false: another process made one first
  }
  const key = loadLogKey(keyFile);
  if (origin !== undefined && origin !== key.origin) {
    fail('malformed', `configured origin ${JSON.stringify(origin)} differs from the key's name ${JSON.stringify(key.origin)} in ${keyFile}`);
  }
  return key;
}

export interface LogMlDsaKey {
  /** The log's ML-DSA-44 cosigner (subtree/v1, start 0, end = tree size, the signing time), named by the origin. */
  signer: Signer;
  vkey: string;
}

/**
 * The log's own ML-DSA-44 key (type 0x06), next to its Ed25519 key: tlog-checkpoint recommends that logs sign
 * checkpoints with ML-DSA-44 cosignatures. Created on first start (mode 0600) with the origin as its name, like the
 * Ed25519 key; a file whose name is not the origin is refused. Signing is hedged; the timestamp is the signing time.
 */
export function loadOrCreateLogMlDsaKey(keyFile: string, origin: string, random: (n: number) => Buffer = randomBytes): LogMlDsaKey {
  if (!existsSync(keyFile)) createKeyFile(keyFile, formatSignerKey(origin, SIG_TYPE_MLDSA44, random(32)) + '\n');
  return loadLogMlDsaKey(keyFile, origin, random);
}

/** Loads an existing ML-DSA-44 log key file (never creates one); see loadOrCreateLogMlDsaKey. */
export function loadLogMlDsaKey(keyFile: string, origin: string, random: (n: number) => Buffer = randomBytes): LogMlDsaKey {
  const f = parseSignerKeyFields(readKeyFile(keyFile, 'log ML-DSA-44 key file').trim());
  if (f.type !== SIG_TYPE_MLDSA44) fail('malformed', `${keyFile} is not an ML-DSA-44 (type 0x06) signer key`);
  if (f.name !== origin) fail('malformed', `the ML-DSA-44 key in ${keyFile} is named ${JSON.stringify(f.name)}, not the log's origin ${JSON.stringify(origin)}`);
  const signer = signerFromFields(f, () => Math.floor(Date.now() / 1000), () => random(32));
  return { signer, vkey: formatVerifierKey(f.name, SIG_TYPE_MLDSA44, f.publicKey) };
}
