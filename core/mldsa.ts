/**
 * ML-DSA-44 (FIPS 204), pure signing with the empty context string, over @noble/post-quantum (pure JavaScript).
 * Keys are raw bytes: the 32-byte FIPS 204 key generation seed ξ, the 1,312-byte public key; signatures are
 * 2,420 bytes. Pure and synchronous: key generation takes the seed from the caller, and signing is either
 * hedged with 32 random bytes the caller passes in, or deterministic (FIPS 204 §3.4: both are allowed and
 * give signatures that verify the same way).
 */
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { fail } from './errors.ts';

export const MLDSA44_SEED_SIZE = 32;
export const MLDSA44_PUBLIC_KEY_SIZE = 1312;
export const MLDSA44_SIGNATURE_SIZE = 2420;
/** Size of the `rnd` value of FIPS 204 ML-DSA.Sign_internal. */
export const MLDSA44_RANDOM_SIZE = 32;

export interface MlDsa44KeyPair {
  seed: Buffer; // 32 bytes
  publicKey: Buffer; // 1,312 bytes
  /** The expanded FIPS 204 secret key (2,560 bytes): kept in memory only, never written out. */
  secretKey: Uint8Array;
}

// Key generation expands the matrix and the vectors (tens of milliseconds in pure JS): a few recent key pairs are
// kept, so parsing a signer key file and then building its signer derives the key once.
const keyPairCache = new Map<string, MlDsa44KeyPair>();
const KEY_PAIR_CACHE_LIMIT = 8;

/** Derives the key pair from a 32-byte seed (ML-DSA.KeyGen_internal(ξ); the caller supplies the randomness). */
export function mldsa44KeyPairFromSeed(seed: Uint8Array): MlDsa44KeyPair {
  if (!(seed instanceof Uint8Array) || seed.length !== MLDSA44_SEED_SIZE) fail('malformed', 'ML-DSA-44 seed must be 32 bytes');
  const id = Buffer.from(seed).toString('latin1');
  const hit = keyPairCache.get(id);
  if (hit !== undefined) return { seed: Buffer.from(seed), publicKey: Buffer.from(hit.publicKey), secretKey: hit.secretKey };
  const { publicKey, secretKey } = ml_dsa44.keygen(Uint8Array.from(seed));
  const kp = { seed: Buffer.from(seed), publicKey: Buffer.from(publicKey), secretKey };
  if (keyPairCache.size >= KEY_PAIR_CACHE_LIMIT) keyPairCache.delete(keyPairCache.keys().next().value!);
  keyPairCache.set(id, kp);
  return { ...kp, publicKey: Buffer.from(kp.publicKey) };
}

/**
 * ML-DSA.Sign(sk, message, ctx = ""): hedged with `random` (32 bytes, e.g. fresh from the OS) when given, else
 * the deterministic variant (rnd = 0^32).
 */
export function mldsa44Sign(key: MlDsa44KeyPair, message: Uint8Array, random?: Uint8Array): Buffer {
  if (random !== undefined && (!(random instanceof Uint8Array) || random.length !== MLDSA44_RANDOM_SIZE)) {
    fail('internal', 'ML-DSA-44 signing randomness must be 32 bytes');
  }
  return Buffer.from(ml_dsa44.sign(message, key.secretKey, { extraEntropy: random === undefined ? false : Uint8Array.from(random) }));
}

/** True iff `signature` is a valid ML-DSA-44 signature (empty context) of `message` by `publicKey`. Never throws. */
export function mldsa44Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== MLDSA44_PUBLIC_KEY_SIZE || signature.length !== MLDSA44_SIGNATURE_SIZE) return false;
  try {
    return ml_dsa44.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}
