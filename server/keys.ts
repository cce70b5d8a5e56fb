/** The log's signing key: loaded from its file, or generated on first start (mode 0600). */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readKeyFile, createKeyFile } from '../runtime/key-file.ts';
import { fail } from '../core/errors.ts';
import { formatSignerKey, parseSignerKey, formatVerifierKey, isValidKeyName, SIG_TYPE_ED25519, type Signer } from '../core/note.ts';
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
