/**
 * Ed25519 over node:crypto (the hot path). Keys are raw bytes: 32-byte public key, 32-byte seed.
 * Deterministic: signing needs no randomness; key generation takes the seed from the caller.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { fail } from './errors.ts';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const publicKeyCache = new Map<string, KeyObject>();
const CACHE_LIMIT = 4096;

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== 32) fail('malformed', 'Ed25519 public key must be 32 bytes');
  const id = Buffer.from(publicKey).toString('latin1');
  let k = publicKeyCache.get(id);
  if (k === undefined) {
    try {
      k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    } catch {
      return fail('malformed', 'invalid Ed25519 public key');
    }
    if (publicKeyCache.size >= CACHE_LIMIT) publicKeyCache.clear();
    publicKeyCache.set(id, k);
  }
  return k;
}

export interface Ed25519KeyPair {
  seed: Buffer; // 32-byte private seed
  publicKey: Buffer; // 32 bytes
  privateKey: KeyObject;
}

/** Derives the key pair from a 32-byte seed (the caller supplies randomness). */
export function keyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  if (seed.length !== 32) fail('malformed', 'Ed25519 seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { seed: Buffer.from(seed), publicKey: Buffer.from(spki.subarray(spki.length - 32)), privateKey };
}

export function ed25519Sign(key: Ed25519KeyPair, message: Uint8Array): Buffer {
  return cryptoSign(null, message, key.privateKey);
}

/** True iff `signature` is a valid Ed25519 signature of `message` by `publicKey`. Never throws on bad signatures. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  let k: KeyObject;
  try {
    k = publicKeyObject(publicKey);
  } catch {
    return false;
  }
  try {
    return cryptoVerify(null, message, k, signature);
  } catch {
    return false;
  }
}
