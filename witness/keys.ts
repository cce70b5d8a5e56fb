/** The witness's cosigning key: loaded from its file, or generated on first start (mode 0600). */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { fail } from '../core/errors.ts';
import { formatSignerKey, parseSignerKeyFields, isValidKeyName, SIG_TYPE_COSIGNATURE_V1 } from '../core/note.ts';

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
export function loadOrCreateWitnessKey(keyFile: string, name: string | undefined, random: (n: number) => Buffer = randomBytes): WitnessKey {
  if (!existsSync(keyFile)) {
    const n = name ?? defaultWitnessName();
    if (!isValidKeyName(n)) fail('malformed', `witness name ${JSON.stringify(n)} is not a valid key name`);
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(keyFile, formatSignerKey(n, SIG_TYPE_COSIGNATURE_V1, random(32)) + '\n', { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process created it first: use theirs
    }
  }
  const f = parseSignerKeyFields(readFileSync(keyFile, 'utf8').trim());
  if (f.type !== SIG_TYPE_COSIGNATURE_V1) fail('malformed', `${keyFile} is not a cosignature/v1 (type 0x04) signer key`);
  if (name !== undefined && name !== f.name) {
    fail('malformed', `witness name ${JSON.stringify(name)} differs from the name ${JSON.stringify(f.name)} in ${keyFile}`);
  }
  return { name: f.name, seed: f.seed };
}
