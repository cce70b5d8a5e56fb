/**
 * The subset of node:crypto that pkglog's core uses, for the browser bundle (esbuild aliases node:crypto here):
 * SHA-256 from @noble/hashes, Ed25519 verification from @noble/ed25519. Synchronous like core. Signing is not
 * available in the page (the explorer only verifies).
 */
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2';
import * as ed from '@noble/ed25519';

ed.hashes.sha512 = (m) => sha512(m) as Uint8Array<ArrayBuffer>;

function bytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

function check(alg: string): void {
  if (alg !== 'sha256') throw new Error(`only sha256 is available in the browser (asked for ${alg})`);
}

export function hash(alg: string, data: Uint8Array | string, _encoding?: string): Buffer {
  check(alg);
  return Buffer.from(nobleSha256(bytes(data)));
}

export function createHash(alg: string) {
  check(alg);
  const h = nobleSha256.create();
  const api = {
    update(data: Uint8Array | string) {
      h.update(bytes(data));
      return api;
    },
    digest(): Buffer {
      return Buffer.from(h.digest());
    },
  };
  return api;
}

const SPKI_ED25519_PREFIX = '302a300506032b6570032100';

/** A public key object: only the raw Ed25519 key of an SPKI DER encoding. */
export function createPublicKey(input: { key: Uint8Array; format: string; type: string }) {
  const der = Buffer.from(input.key);
  if (der.length !== 44 || der.subarray(0, 12).toString('hex') !== SPKI_ED25519_PREFIX) throw new Error('not an Ed25519 public key');
  return { raw: new Uint8Array(der.subarray(12)) };
}

export function verify(_alg: null, message: Uint8Array, key: { raw: Uint8Array }, signature: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, key.raw, { zip215: false });
  } catch {
    return false;
  }
}

export function createPrivateKey(): never {
  throw new Error('signing is not available in the browser');
}

export function sign(): never {
  throw new Error('signing is not available in the browser');
}

export type KeyObject = { raw: Uint8Array };
