/** Mirrors the log pushes to (C2SP tlog-mirror): `<url> <cosigner vkey>` lines in the data dir's mirrors.txt. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { forEachPair, readIfExists } from './config-file.ts';
import { fail } from '../core/errors.ts';
import { SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44 } from '../core/note.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
import { normalizeBaseURL } from '../runtime/http.ts';

export interface MirrorConfig {
  url: string;
  vkey: string;
}

function checkMirror(url: string, vkey: string): void {
  normalizeBaseURL(url);
  parsePublicKeyVerifier(vkey, { type: [SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44], what: 'mirror vkey' });
}

export function loadMirrors(file: string): MirrorConfig[] {
  const text = readIfExists(file);
  const out: MirrorConfig[] = [];
  if (text === undefined) return out;
  forEachPair(text, file, '<url> <vkey>', (url, vkey) => {
    checkMirror(url, vkey);
    out.push({ url, vkey });
  });
  return out;
}

export function addMirror(file: string, url: string, vkey: string): void {
  checkMirror(url, vkey);
  if (loadMirrors(file).some((m) => m.vkey === vkey)) fail('conflict', 'that mirror is already configured');
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${url} ${vkey}\n`);
}
