/**
 * Witnesses the log asks for cosignatures: `<url> <cosigner vkey>` lines in the data dir's witnesses.txt. A witness
 * with two keys (Ed25519 cosignature/v1 and ML-DSA-44 subtree/v1, as `pkglog witness` has by default) has two lines
 * with the same URL: one witness, asked once, whose cosignatures by either key are kept and count once toward the
 * quorum.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { forEachPair, readIfExists } from './config-file.ts';
import { dirname } from 'node:path';
import { fail } from '../core/errors.ts';
import { SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44 } from '../core/note.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';

export interface WitnessConfig {
  url: string;
  /** The first key listed for this URL. */
  vkey: string;
  /** Every key listed for this URL (cosignature/v1 or ML-DSA-44), in file order. */
  vkeys: string[];
}

/** The cosigner key types a witness may have (tlog-cosignature). */
export const WITNESS_VKEY_TYPES = [SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44] as const;

function checkWitness(url: string, vkey: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('malformed', `witness URL ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail('malformed', 'witness URL must be http or https');
  parsePublicKeyVerifier(vkey, { type: WITNESS_VKEY_TYPES, what: 'witness vkey' });
}

export function parseWitnesses(text: string, where = 'witnesses'): WitnessConfig[] {
  const out: WitnessConfig[] = [];
  const byUrl = new Map<string, WitnessConfig>();
  forEachPair(text, where, '<url> <vkey>', (url, vkey) => {
    checkWitness(url, vkey);
    const key = url.replace(/\/+$/, '');
    const known = byUrl.get(key);
    if (known !== undefined) {
      if (!known.vkeys.includes(vkey)) known.vkeys.push(vkey);
      return;
    }
    const w = { url, vkey, vkeys: [vkey] };
    byUrl.set(key, w);
    out.push(w);
  });
  return out;
}

export function loadWitnesses(file: string): WitnessConfig[] {
  const text = readIfExists(file);
  return text === undefined ? [] : parseWitnesses(text, file);
}

export function addWitness(file: string, url: string, vkey: string): void {
  checkWitness(url, vkey);
  if (loadWitnesses(file).some((w) => w.vkeys.includes(vkey))) fail('conflict', 'that witness is already configured');
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${url} ${vkey}\n`);
}
