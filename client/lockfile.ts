/**
 * Lockfiles for `pkglog verify-lock`: pip's hash-checking requirements.txt (`name==version --hash=sha256:…`) and
 * npm's package-lock.json (lockfileVersion 2 or 3: the `packages` map with `version` and `integrity`). Each pinned
 * artifact becomes a Pin: ecosystem, name (canonical), version and the digest to find in the log. Strict: what
 * cannot be checked is an error (exit 2), never skipped silently — except lockfile entries with nothing to fetch
 * (the root project, links and workspaces, bundled dependencies), which are not artifacts.
 */
import { fail } from '../core/errors.ts';
import { decodeBase64 } from '../core/encoding.ts';

export interface Pin {
  ecosystem: 'pypi' | 'npm';
  name: string;
  version: string;
  /** sha256 (entry.sha256) or sha512 (entry.nativeDigest, leaf version 2). */
  algorithm: 'sha256' | 'sha512';
  /** Lowercase hex. */
  digest: string;
  /** Where in the file: `line N` or the package-lock key. */
  where: string;
}

export interface Lockfile {
  kind: 'requirements' | 'package-lock';
  pins: Pin[];
  /** Pins that cannot be checked (e.g. an npm integrity that is only sha1), with why; they fail the run. */
  unusable: Array<{ where: string; name: string; version: string; message: string }>;
}

const pep503 = (n: string) => n.replace(/[-_.]+/g, '-').toLowerCase();

/** Parses pip's requirements format with hashes (continuation lines, comments, environment markers). */
export function parseRequirements(text: string): Lockfile {
  const pins: Pin[] = [];
  const unusable: Lockfile['unusable'] = [];
  // Join continuation lines, remembering where each logical line starts.
  const logical: Array<{ line: number; text: string }> = [];
  let cur: { line: number; text: string } | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const body = raw.replace(/(^|\s)#.*$/, '');
    if (cur === undefined) cur = { line: i + 1, text: '' };
    if (/\\\s*$/.test(body)) {
      cur.text += body.replace(/\\\s*$/, ' ');
      return;
    }
    cur.text += body;
    logical.push(cur);
    cur = undefined;
  });
  if (cur !== undefined) logical.push(cur);
  for (const { line, text: l } of logical) {
    const t = l.trim();
    if (t === '') continue;
    const where = `line ${line}`;
    if (/^-(r|c|-requirement|-constraint)\b/.test(t)) fail('usage', `${where}: included files (${t.split(/\s+/)[0]}) are not followed; check each file with its own verify-lock`);
    if (/^-/.test(t)) continue; // --index-url, --find-links, --require-hashes, … apply to pip, not to what is pinned
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*===?\s*([^\s;]+)\s*(;[^-]*)?(.*)$/.exec(t);
    if (m === null) fail('malformed', `${where}: not a pinned requirement "name==version --hash=sha256:…": ${JSON.stringify(t.slice(0, 120))}`);
    const name = pep503(m[1]!);
    const version = m[3]!;
    const hashes = [...m[5]!.matchAll(/--hash[=\s]+([a-z0-9]+):([0-9a-fA-F]+)/g)];
    if (hashes.length === 0) {
      unusable.push({ where, name, version, message: `${name}==${version} has no --hash pin (pip's hash-checking mode needs one per file)` });
      continue;
    }
    for (const h of hashes) {
      if (h[1] !== 'sha256' || !/^[0-9a-fA-F]{64}$/.test(h[2]!)) {
        unusable.push({ where, name, version, message: `${name}==${version}: --hash=${h[1]}:… cannot be checked against the log (it records sha256)` });
        continue;
      }
      pins.push({ ecosystem: 'pypi', name, version, algorithm: 'sha256', digest: h[2]!.toLowerCase(), where });
    }
  }
  return { kind: 'requirements', pins, unusable };
}

/** Parses package-lock.json v2/v3 (`packages`). Version 1 (npm 6) is refused with what to do. */
export function parsePackageLock(text: string): Lockfile {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return fail('malformed', `not JSON: ${(e as Error).message}`);
  }
  if (typeof j !== 'object' || j === null) fail('malformed', 'package-lock.json is not a JSON object');
  const v = j.lockfileVersion;
  if (v === 1) fail('malformed', 'lockfileVersion 1 (npm 6) has no "packages" map: regenerate it with npm 7 or later (lockfileVersion 2 or 3)');
  if (v !== 2 && v !== 3) fail('malformed', `unsupported lockfileVersion ${JSON.stringify(v)} (2 and 3 are supported)`);
  const packages = j.packages;
  if (typeof packages !== 'object' || packages === null || Array.isArray(packages)) fail('malformed', 'package-lock.json has no "packages" object');
  const pins: Pin[] = [];
  const unusable: Lockfile['unusable'] = [];
  for (const [key, raw] of Object.entries(packages as Record<string, unknown>)) {
    if (key === '') continue; // the project itself
    const p = raw as Record<string, unknown>;
    if (typeof p !== 'object' || p === null) fail('malformed', `packages[${JSON.stringify(key)}] is not an object`);
    if (p.link === true || p.inBundle === true || !key.includes('node_modules/')) continue; // links, workspaces, bundled
    const name = typeof p.name === 'string' ? p.name : key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const version = p.version;
    if (typeof version !== 'string') fail('malformed', `packages[${JSON.stringify(key)}] has no version`);
    const integrity = p.integrity;
    if (typeof integrity !== 'string') {
      unusable.push({ where: key, name, version, message: `${name}@${version} has no integrity in the lockfile` });
      continue;
    }
    // SRI: space-separated "alg-base64"; the strongest the log can check is used.
    const parts = integrity.trim().split(/\s+/).map((s) => /^(sha1|sha256|sha384|sha512)-([A-Za-z0-9+/=]+)(\?.*)?$/.exec(s));
    const pick = (alg: string) => parts.find((x) => x?.[1] === alg);
    const chosen = pick('sha512') ?? pick('sha256');
    if (chosen === undefined || chosen === null) {
      unusable.push({ where: key, name, version, message: `${name}@${version}: integrity ${integrity.slice(0, 40)}… cannot be checked against the log (it records sha256 and sha512)` });
      continue;
    }
    const algorithm = chosen[1] as 'sha256' | 'sha512';
    const digest = decodeBase64(chosen[2]!, `packages[${JSON.stringify(key)}].integrity`, algorithm === 'sha512' ? 64 : 32).toString('hex');
    pins.push({ ecosystem: 'npm', name: name.toLowerCase(), version, algorithm, digest, where: key });
  }
  return { kind: 'package-lock', pins, unusable };
}

/** A package-lock.json (JSON with lockfileVersion) or a requirements file, by content. */
export function parseLockfile(text: string): Lockfile {
  const t = text.trimStart();
  if (t.startsWith('{')) return parsePackageLock(text);
  return parseRequirements(text);
}
