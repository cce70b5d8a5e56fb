/** The witness's cosigning keys (Ed25519 cosignature/v1, ML-DSA-44): loaded from their files, or generated on first start (mode 0600). */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { fail } from '../core/errors.ts';
import { createKeyFile, readKeyFile, checkKeyFileMode } from '../runtime/key-file.ts';
import { formatSignerKey, parseSignerKeyFields, isValidKeyName, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44 } from '../core/note.ts';

export interface WitnessKey {
  name: string;
  seed: Buffer;
}

export function defaultWitnessName(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  return `${host}/pkglog-witness`;
}

/**
 * Reads `keyFile` (a golang.org/x/mod/sumdb/note signer key of type 0x04), creating it with a fresh seed when
 * missing. A `name` that differs from the existing key's name is an error (the name is part of the key ID).
 */
export function loadOrCreateWitnessKey(keyFile: string, name: string | undefined, random: (n: number) => Buffer = randomBytes, type = SIG_TYPE_COSIGNATURE_V1): WitnessKey {
  if (!existsSync(keyFile)) {
    const n = name ?? defaultWitnessName();
    if (!isValidKeyName(n)) fail('malformed', `witness name ${JSON.stringify(n)} is not a valid key name`);
    createKeyFile(keyFile, formatSignerKey(n, type, random(32)) + '\n'); // false: another process created it first: use theirs
  }
  checkKeyFileMode(keyFile);
  const f = parseSignerKeyFields(readKeyFile(keyFile, 'witness key file').trim());
  if (f.type !== type) {
    fail('malformed', `${keyFile} is not ${type === SIG_TYPE_MLDSA44 ? 'an ML-DSA-44 (type 0x06)' : 'a cosignature/v1 (type 0x04)'} signer key`);
  }
  if (name !== undefined && name !== f.name) {
    fail('malformed', `witness name ${JSON.stringify(name)} differs from the name ${JSON.stringify(f.name)} in ${keyFile}`);
  }
  return { name: f.name, seed: f.seed };
}

/** The witness's ML-DSA-44 (type 0x06, subtree/v1) key file, like loadOrCreateWitnessKey (same name rules). */
export function loadOrCreateMlDsaKey(keyFile: string, name: string | undefined, random: (n: number) => Buffer = randomBytes): WitnessKey {
  return loadOrCreateWitnessKey(keyFile, name, random, SIG_TYPE_MLDSA44);
}
