/** Registries allowed to submit: `<name> <vkey or base64 Ed25519 key>` lines in the data dir's registries.txt. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { forEachPair, readIfExists } from './config-file.ts';
import { dirname } from 'node:path';
import { fail } from '../core/errors.ts';
import { validateRegistryName } from '../core/entry.ts';
import { SIG_TYPE_ED25519 } from '../core/note.ts';
import { parsePublicKey } from '../core/public-key.ts';

export type Registries = ReadonlyMap<string, Buffer>;

/** Parses a registry key: a C2SP vkey (type Ed25519) or base64 of a 32-byte Ed25519 public key (core/public-key.ts). */
export function parseRegistryKey(key: string): Buffer {
  return parsePublicKey(key, { type: SIG_TYPE_ED25519, what: 'registry key' }).publicKey;
}

export function parseRegistries(text: string, where = 'registries'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  forEachPair(text, where, '<name> <key>', (first, key) => {
    const name = validateRegistryName(first);
    if (out.has(name)) fail('malformed', `registry ${name} is listed twice`);
    out.set(name, parseRegistryKey(key));
  });
  return out;
}

export function loadRegistries(file: string): Map<string, Buffer> {
  const text = readIfExists(file);
  return text === undefined ? new Map() : parseRegistries(text, file);
}

export function addRegistry(file: string, name: string, key: string): void {
  validateRegistryName(name);
  parseRegistryKey(key);
  const existing = loadRegistries(file);
  if (existing.has(name)) fail('conflict', `registry ${name} is already configured`);
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${name} ${key}\n`, { mode: 0o644 });
}
