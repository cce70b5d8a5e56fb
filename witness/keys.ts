/** The witness's cosigning keys (Ed25519 cosignature/v1, ML-DSA-44): loaded from their files, or generated on first start (mode 0600). */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { fail } from '../core/errors.ts';
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
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(keyFile, formatSignerKey(n, type, random(32)) + '\n', { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process created it first: use theirs
    }
  }
  checkKeyFileMode(keyFile);
  const f = parseSignerKeyFields(readFileSync(keyFile, 'utf8').trim());
  if (f.type !== type) {
    fail('malformed', `${keyFile} is not ${type === SIG_TYPE_MLDSA44 ? 'an ML-DSA-44 (type 0x06)' : 'a cosignature/v1 (type 0x04)'} signer key`);
  }
  if (name !== undefined && name !== f.name) {
    fail('malformed', `witness name ${JSON.stringify(name)} differs from the name ${JSON.stringify(f.name)} in ${keyFile}`);
  }
  return { name: f.name, seed: f.seed };
}

/**
 * Refuses a key file that its group or others may read or write (any of the 0o077 bits): the witness's signing key
 * must be readable by its owner only. Refused rather than silently fixed: a key that was readable by others may
 * already be copied, and the operator should decide (chmod 600, or rotate the key). Not checked on Windows.
 */
export function checkKeyFileMode(keyFile: string): void {
  if (process.platform === 'win32') return;
  const mode = statSync(keyFile).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    fail(
      'malformed',
      `key file ${keyFile} has mode 0${mode.toString(8)}: group or others may read it; ` +
        `run "chmod 600 ${keyFile}" (and consider a new key if others could have read it)`,
    );
  }
}

/** The witness's ML-DSA-44 (type 0x06, subtree/v1) key file, like loadOrCreateWitnessKey (same name rules). */
export function loadOrCreateMlDsaKey(keyFile: string, name: string | undefined, random: (n: number) => Buffer = randomBytes): WitnessKey {
  return loadOrCreateWitnessKey(keyFile, name, random, SIG_TYPE_MLDSA44);
}
