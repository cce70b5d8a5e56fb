/** Registries allowed to submit: `<name> <vkey or base64 Ed25519 key>` lines in the data dir's registries.txt. */
import { existsSync, readFileSync, appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeBase64 } from '../core/encoding.ts';
import { fail, PkglogError } from '../core/errors.ts';
import { validateRegistryName } from '../core/entry.ts';
import { parseVerifierKey, SIG_TYPE_ED25519 } from '../core/note.ts';

export type Registries = ReadonlyMap<string, Buffer>;

/** Parses a registry key: a C2SP vkey (type Ed25519) or base64 of a 32-byte Ed25519 public key. */
export function parseRegistryKey(key: string): Buffer {
  if (/^[^+\s]+\+[0-9a-f]{8}\+/.test(key)) {
    const v = parseVerifierKey(key);
    if (v.type !== SIG_TYPE_ED25519) fail('malformed', 'registry vkey must be an Ed25519 (type 0x01) key');
    return v.publicKey;
  }
  return decodeBase64(key, 'registry key', 32);
}

export function parseRegistries(text: string, where = 'registries'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/[ \t]+/);
    try {
      if (fields.length !== 2) fail('malformed', 'expected "<name> <key>"');
      const name = validateRegistryName(fields[0]);
      if (out.has(name)) fail('malformed', `registry ${name} is listed twice`);
      out.set(name, parseRegistryKey(fields[1]!));
    } catch (e) {
      if (e instanceof PkglogError) fail('malformed', `${where}:${i + 1}: ${e.message}`);
      throw e;
    }
  });
  return out;
}

export function loadRegistries(file: string): Map<string, Buffer> {
  return existsSync(file) ? parseRegistries(readFileSync(file, 'utf8'), file) : new Map();
}

export function addRegistry(file: string, name: string, key: string): void {
  validateRegistryName(name);
  parseRegistryKey(key);
  const existing = loadRegistries(file);
  if (existing.has(name)) fail('conflict', `registry ${name} is already configured`);
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${name} ${key}\n`, { mode: 0o644 });
}
