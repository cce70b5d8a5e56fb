/**
 * Key files, for every party: reading one (size-capped, with messages that say what the file was for) and creating a
 * signer key file (mode 0600, never overwriting, parent directory 0700). Parsing the text is core/note.ts's job.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fail } from '../core/errors.ts';
import { formatSignerKey, isValidKeyName, parseSignerKeyFields, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44 } from '../core/note.ts';

/** Largest file read as a key file (an ML-DSA-44 vkey is ~1.8 KB; a file of registry keys a few lines). */
export const MAX_KEY_FILE = 64 * 1024;

/** The text of key file `path` ('not_found' if unreadable, 'too_large' over MAX_KEY_FILE); `what` names its use. */
export function readKeyFile(path: string, what: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    return fail('not_found', `${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (size > MAX_KEY_FILE) fail('too_large', `${what}: ${path} is ${size} bytes, too large to be a key file`);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    return fail('not_found', `${what}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * Writes a new key file holding `text` (mode 0600; the directory is created 0700 if missing). Never overwrites:
 * returns false when the file already exists (another process may just have created it).
 */
export function createKeyFile(path: string, text: string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    return fail('internal', `cannot write key file ${path}: ${(e as Error).message}`);
  }
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

/**
 * A cosigner's key file (signer key of `type`, e.g. 0x04 cosignature/v1 or 0x06 ML-DSA-44): read, or created with
 * `random(32)` as seed and `name ?? defaultName` as name when missing (mode 0600). A `name` that differs from the
 * file's is an error (the name is part of the key ID); so is a file of another type or readable by others.
 */
export function loadOrCreateCosignerKey(
  keyFile: string,
  name: string | undefined,
  type: number,
  defaultName: string,
  random: (n: number) => Buffer = randomBytes,
): { name: string; seed: Buffer } {
  if (!existsSync(keyFile)) {
    const n = name ?? defaultName;
    if (!isValidKeyName(n)) fail('malformed', `key name ${JSON.stringify(n)} is not a valid key name`);
    createKeyFile(keyFile, formatSignerKey(n, type, random(32)) + '\n');
  }
  checkKeyFileMode(keyFile);
  const f = parseSignerKeyFields(readKeyFile(keyFile, 'key file').trim());
  if (f.type !== type) {
    const words = type === SIG_TYPE_COSIGNATURE_V1 ? ' (cosignature/v1)' : type === SIG_TYPE_MLDSA44 ? ' (ML-DSA-44)' : '';
    fail('malformed', `${keyFile} is not a signer key of type 0x${type.toString(16).padStart(2, '0')}${words}`);
  }
  if (name !== undefined && name !== f.name) fail('malformed', `name ${JSON.stringify(name)} differs from the name ${JSON.stringify(f.name)} in ${keyFile}`);
  return { name: f.name, seed: f.seed };
}
