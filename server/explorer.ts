/**
 * The web explorer's static files (explorer/, bundled by explorer/build.mjs into dist/explorer/ at `npm run build`)
 * and the tlog-policy the log publishes about itself (GET /v1/policy), which the explorer verifies checkpoints with.
 * The files are read once at start-up (a few hundred KiB, independent of the log's size) and served from memory.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { formatPolicy, type PolicyWitness, type QuorumRule } from '../core/policy.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
import { SIG_TYPE_MLDSA44 } from '../core/note.ts';
import { LOG_KEY_TYPES, WITNESS_KEY_TYPES } from '../core/policy.ts';

export interface ExplorerAsset {
  type: string;
  body: Buffer;
}

/** Everything the explorer page loads comes from the log itself: no other origin, no inline script or style. */
export const EXPLORER_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The built explorer: dist/explorer next to the compiled server, or under the repository when run from source. */
export function explorerDir(): string | undefined {
  const candidates = [fileURLToPath(new URL('../explorer/', import.meta.url)), fileURLToPath(new URL('../dist/explorer/', import.meta.url))];
  return candidates.find((d) => existsSync(join(d, 'index.html')) && existsSync(join(d, 'app.js')));
}

/** The explorer's files by name (`index.html`, `app.js`, …), or undefined when it was not built. */
export function loadExplorer(dir = explorerDir()): Map<string, ExplorerAsset> | undefined {
  if (dir === undefined) return undefined;
  const out = new Map<string, ExplorerAsset>();
  for (const name of readdirSync(dir)) {
    const ext = name.slice(name.lastIndexOf('.'));
    const type = TYPES[ext];
    if (type !== undefined) out.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return out;
}

/**
 * The tlog-policy text of this log as configured (GET /v1/policy): a `log` line per key the log signs with (Ed25519,
 * then its ML-DSA-44 key: the same origin), a `witness` line per key of each witness (tlog-policy has one vkey per
 * line: a witness's second key is named `<name>-pq` for ML-DSA-44, `<name>-k2`… otherwise), and for a witness with
 * several keys `group <name>-any any <its names>`, so either key fills its slot (docs/keys.md); with quorum > 0 a
 * `group witnesses K <slots…>` line. `pkglog verify --require-pq` on it counts the ML-DSA-44 lines only.
 */
export function logPolicy(logVkeys: string[], witnessVkeys: string[][], quorum: number, url?: string): string {
  const logs = logVkeys.map((k, i) => ({ verifier: parsePublicKeyVerifier(k, { type: LOG_KEY_TYPES, what: 'the log key' }), ...(i === 0 && url !== undefined ? { url } : {}) }));
  const names = new Set<string>(['none']);
  const unique = (wanted: string, fallback: string): string => {
    let name = /^[^\s#]+$/.test(wanted) && !names.has(wanted) ? wanted : fallback;
    while (names.has(name)) name += '_';
    names.add(name);
    return name;
  };
  const witnesses: PolicyWitness[] = [];
  const slots: QuorumRule[] = witnessVkeys.map((keys, i) => {
    const own: PolicyWitness[] = [];
    for (const [j, k] of keys.entries()) {
      const verifier = parsePublicKeyVerifier(k, { type: WITNESS_KEY_TYPES, what: 'witness key' });
      const suffix = j === 0 ? '' : verifier.type === SIG_TYPE_MLDSA44 ? '-pq' : `-k${j + 1}`;
      own.push({ name: unique(`${j === 0 ? verifier.name : own[0]!.name}${suffix}`, `witness-${i + 1}${suffix}`), verifier });
    }
    witnesses.push(...own);
    if (own.length === 1) return { kind: 'witness', name: own[0]!.name };
    return { kind: 'group', name: unique(`${own[0]!.name}-any`, `witness-${i + 1}-any`), threshold: 1, members: own.map((w) => ({ kind: 'witness', name: w.name })) };
  });
  let rule: QuorumRule = { kind: 'none' };
  if (quorum > 0 && slots.length > 0) {
    rule = { kind: 'group', name: unique('witnesses', 'witnesses'), threshold: Math.min(quorum, slots.length), members: slots };
  }
  return formatPolicy({ logs, witnesses, quorum: rule });
}
