/**
 * Registries allowed to submit, one line each in the data dir's registries.txt:
 *
 *     <name> <vkey or base64 Ed25519 key> ecosystems=<e>[,<e>…]|* [rate=<per second>] [burst=<n>] [daily=<n>]
 *
 * `ecosystems` binds the registry to the ecosystems it may write (403 wrong_ecosystem for any other); `*` allows every
 * ecosystem and must be written out. A line without `ecosystems=` (the format before the binding existed) is refused
 * with a message telling the operator which ecosystems to add: an unbound registry could claim any package.
 * rate/burst/daily are the registry's quota (server/quotas.ts); absent: unlimited.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { forEachLine, readIfExists } from './config-file.ts';
import { dirname } from 'node:path';
import { parseDecimal } from '../core/encoding.ts';
import { fail } from '../core/errors.ts';
import { validateRegistryName } from '../core/entry.ts';
import { SIG_TYPE_ED25519 } from '../core/note.ts';
import { parsePublicKey } from '../core/public-key.ts';

export interface RegistryQuota {
  /** Sustained submissions (entries) per second. */
  rate?: number;
  /** Entries that may be submitted at once above the rate (token bucket size; default max(1, rate)). */
  burst?: number;
  /** Entries per UTC day. */
  daily?: number;
}

export interface RegistryConfig extends RegistryQuota {
  name: string;
  publicKey: Buffer;
  /** The ecosystems this registry may write, or '*' for all. */
  ecosystems: ReadonlySet<string> | '*';
}

export type Registries = ReadonlyMap<string, RegistryConfig>;

export interface RegistryOptions extends RegistryQuota {
  ecosystems: readonly string[] | '*';
}

const ECOSYSTEM = /^[a-z0-9-]{1,32}$/;
const MAX_RATE = 1_000_000;

/** Parses a registry key: a C2SP vkey (type Ed25519) or base64 of a 32-byte Ed25519 public key (core/public-key.ts). */
export function parseRegistryKey(key: string): Buffer {
  return parsePublicKey(key, { type: SIG_TYPE_ED25519, what: 'registry key' }).publicKey;
}

/** `pypi,npm` or `*` → the ecosystem list. */
export function parseEcosystems(value: string): string[] | '*' {
  if (value === '*') return '*';
  const list = value.split(',');
  for (const e of list) if (!ECOSYSTEM.test(e)) fail('malformed', `ecosystem ${JSON.stringify(e)} must match [a-z0-9-]{1,32} (or use * for all)`);
  if (new Set(list).size !== list.length) fail('malformed', `ecosystem listed twice in ${JSON.stringify(value)}`);
  return list;
}

/** A positive rate: a decimal with up to 3 fractional digits (0.5 = one entry every 2 s). */
export function parseRate(value: string): number {
  if (!/^(?:0|[1-9][0-9]{0,6})(?:\.[0-9]{1,3})?$/.test(value)) fail('malformed', `rate ${JSON.stringify(value)} must be a decimal number of entries per second`);
  const r = Number(value);
  if (!(r > 0) || r > MAX_RATE) fail('malformed', `rate must be above 0 and at most ${MAX_RATE}`);
  return r;
}

function parseCount(value: string, what: string): number {
  const n = parseDecimal(value, what, 1_000_000_000);
  if (n < 1) fail('malformed', `${what} must be at least 1`);
  return n;
}

export function checkQuota(q: RegistryQuota): void {
  if (q.burst !== undefined && q.rate === undefined) fail('malformed', 'burst needs a rate');
}

export function parseRegistries(text: string, where = 'registries'): Map<string, RegistryConfig> {
  const out = new Map<string, RegistryConfig>();
  forEachLine(text, where, (fields) => {
    if (fields.length < 2) fail('malformed', 'expected "<name> <key> ecosystems=<e>[,<e>…] [rate=N] [burst=N] [daily=N]"');
    const name = validateRegistryName(fields[0]);
    if (out.has(name)) fail('malformed', `registry ${name} is listed twice`);
    const publicKey = parseRegistryKey(fields[1]!);
    let ecosystems: string[] | '*' | undefined;
    const quota: RegistryQuota = {};
    for (const f of fields.slice(2)) {
      const m = /^(ecosystems|rate|burst|daily)=(.+)$/.exec(f);
      if (m === null) fail('malformed', `unknown field ${JSON.stringify(f)} (expected ecosystems=, rate=, burst= or daily=)`);
      const [, k, v] = m;
      if ((k === 'ecosystems' ? ecosystems : quota[k as keyof RegistryQuota]) !== undefined) fail('malformed', `${k} is given twice`);
      if (k === 'ecosystems') ecosystems = parseEcosystems(v!);
      else if (k === 'rate') quota.rate = parseRate(v!);
      else quota[k as 'burst' | 'daily'] = parseCount(v!, k!);
    }
    if (ecosystems === undefined) {
      fail('malformed', `registry ${name} is not bound to any ecosystem: append ecosystems=<e>[,<e>…] to its line ` +
        `(e.g. ecosystems=pypi, or ecosystems=* to allow all); registries added with 'pkglog registry add NAME KEY --ecosystem …' have it`);
    }
    checkQuota(quota);
    out.set(name, { name, publicKey, ecosystems: ecosystems === '*' ? '*' : new Set(ecosystems), ...quota });
  });
  return out;
}

export function loadRegistries(file: string): Map<string, RegistryConfig> {
  const text = readIfExists(file);
  return text === undefined ? new Map() : parseRegistries(text, file);
}

/** The registries.txt line for a registry. */
export function formatRegistryLine(name: string, key: string, o: RegistryOptions): string {
  const eco = o.ecosystems === '*' ? '*' : o.ecosystems.join(',');
  return [name, key, `ecosystems=${eco}`, ...(['rate', 'burst', 'daily'] as const).filter((k) => o[k] !== undefined).map((k) => `${k}=${o[k]}`)].join(' ');
}

export function addRegistry(file: string, name: string, key: string, options: RegistryOptions): void {
  validateRegistryName(name);
  parseRegistryKey(key);
  const line = formatRegistryLine(name, key, options);
  parseRegistries(line, 'the new registry'); // the same checks as on reading
  const existing = loadRegistries(file);
  if (existing.has(name)) fail('conflict', `registry ${name} is already configured`);
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${line}\n`, { mode: 0o644 });
}

/** May `registry` write `ecosystem`? */
export function allowsEcosystem(registry: RegistryConfig, ecosystem: string): boolean {
  return registry.ecosystems === '*' || registry.ecosystems.has(ecosystem);
}
