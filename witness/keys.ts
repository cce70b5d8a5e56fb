/** The witness's cosigning keys (Ed25519 cosignature/v1, ML-DSA-44): loaded from their files, or generated on first start (mode 0600). */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { loadOrCreateCosignerKey } from '../runtime/key-file.ts';
import { SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44 } from '../core/note.ts';

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
 * missing (runtime/key-file.ts loadOrCreateCosignerKey). A `name` that differs from the existing key's name is an
 * error (the name is part of the key ID).
 */
export function loadOrCreateWitnessKey(keyFile: string, name: string | undefined, random: (n: number) => Buffer = randomBytes): WitnessKey {
  return loadOrCreateCosignerKey(keyFile, name, SIG_TYPE_COSIGNATURE_V1, defaultWitnessName(), random);
}

/** The witness's ML-DSA-44 (type 0x06, subtree/v1) key file, like loadOrCreateWitnessKey (same name rules). */
export function loadOrCreateMlDsaKey(keyFile: string, name: string | undefined, random: (n: number) => Buffer = randomBytes): WitnessKey {
  return loadOrCreateCosignerKey(keyFile, name, SIG_TYPE_MLDSA44, defaultWitnessName(), random);
}
