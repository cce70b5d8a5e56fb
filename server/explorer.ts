/**
 * The web explorer's static files (explorer/, bundled by explorer/build.mjs into dist/explorer/ at `npm run build`)
 * and the tlog-policy the log publishes about itself (GET /v1/policy), which the explorer verifies checkpoints with.
 * The files are read once at start-up (a few hundred KiB, independent of the log's size) and served from memory.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { formatPolicy, type Policy, type PolicyWitness, type QuorumRule } from '../core/policy.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
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
 * The tlog-policy of this log as it is configured: its key, its witnesses (named by their key names) and, with a
 * quorum of k > 0, a group "witnesses" of k of them. What a client that trusts this log's own configuration would use.
 */
export function logPolicy(vkey: string, witnessVkeys: string[], quorum: number, url?: string): string {
  const log = parsePublicKeyVerifier(vkey, { type: LOG_KEY_TYPES, what: 'the log key' });
  const names = new Set<string>(['none']);
  const witnesses: PolicyWitness[] = witnessVkeys.map((w, i) => {
    const verifier = parsePublicKeyVerifier(w, { type: WITNESS_KEY_TYPES, what: 'witness key' });
    let name = /^[^\s#]+$/.test(verifier.name) && !names.has(verifier.name) ? verifier.name : `witness-${i + 1}`;
    while (names.has(name)) name += '_';
    names.add(name);
    return { name, verifier };
  });
  let rule: QuorumRule = { kind: 'none' };
  if (quorum > 0 && witnesses.length > 0) {
    let group = 'witnesses';
    while (names.has(group)) group += '_';
    rule = { kind: 'group', name: group, threshold: Math.min(quorum, witnesses.length), members: witnesses.map((w) => ({ kind: 'witness', name: w.name })) };
  }
  const policy: Policy = { logs: [{ verifier: log, ...(url === undefined ? {} : { url }) }], witnesses, quorum: rule };
  return formatPolicy(policy);
}
