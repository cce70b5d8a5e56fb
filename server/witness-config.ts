/** Witnesses the log asks for cosignatures: `<url> <cosigner vkey>` lines in the data dir's witnesses.txt. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { forEachPair, readIfExists } from './config-file.ts';
import { dirname } from 'node:path';
import { fail } from '../core/errors.ts';
import { SIG_TYPE_COSIGNATURE_V1 } from '../core/note.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';

export interface WitnessConfig {
  url: string;
  vkey: string;
}

function checkWitness(url: string, vkey: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('malformed', `witness URL ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail('malformed', 'witness URL must be http or https');
  parsePublicKeyVerifier(vkey, { type: SIG_TYPE_COSIGNATURE_V1, what: 'witness vkey' });
}

export function parseWitnesses(text: string, where = 'witnesses'): WitnessConfig[] {
  const out: WitnessConfig[] = [];
  forEachPair(text, where, '<url> <vkey>', (url, vkey) => {
    checkWitness(url, vkey);
    out.push({ url, vkey });
  });
  return out;
}

export function loadWitnesses(file: string): WitnessConfig[] {
  const text = readIfExists(file);
  return text === undefined ? [] : parseWitnesses(text, file);
}

export function addWitness(file: string, url: string, vkey: string): void {
  checkWitness(url, vkey);
  if (loadWitnesses(file).some((w) => w.vkey === vkey)) fail('conflict', 'that witness is already configured');
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${url} ${vkey}\n`);
}
