/**
 * ML-DSA-44 (FIPS 204), pure signing with the empty context string. Keys are raw bytes: the 32-byte FIPS 204 key
 * generation seed ξ, the 1,312-byte public key; signatures are 2,420 bytes. Synchronous, no clock, no I/O.
 *
 * Backends (one interface, chosen once per process; all give signatures that the others verify — test/core/mldsa-backend.test.ts):
 * - 'native': PQClean's C (ml-dsa-44/clean) as the pqclean package's Node addon, built from source at `npm ci`;
 * - 'wasm':   the same C compiled to WebAssembly, shipped inside pqclean (its synchronous classic API);
 * - 'noble':  @noble/post-quantum, pure JavaScript (about 10× slower here): the fallback when pqclean is missing.
 * The default is the first that loads and verifies a known answer (core/mldsa-kat.ts), in that order; useMlDsa44Backend() picks one (runtime/mldsa-backend.ts reads
 * PKGLOG_MLDSA_BACKEND). A native crypto function is computation, like node:crypto's SHA-256 and Ed25519.
 *
 * Key generation is always noble's ML-DSA.KeyGen_internal(ξ) (pqclean only makes random keys): its 2,560-byte
 * secret key is FIPS 204's standard skEncode, which PQClean's signing takes as is.
 * Signing is hedged (FIPS 204 §3.4's default: fresh 32-byte rnd) or deterministic (rnd = 0^32); both verify the
 * same way. Deterministic signing is always noble's (PQClean has no deterministic mode). Hedged signing with pqclean
 * takes rnd from the operating system inside PQClean (its randombytes); only noble uses the caller's `random`.
 */
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { fail } from './errors.ts';
import { MLDSA44_KAT_MESSAGE, MLDSA44_KAT_PUBLIC_KEY, MLDSA44_KAT_SIGNATURE } from './mldsa-kat.ts';

export const MLDSA44_SEED_SIZE = 32;
export const MLDSA44_PUBLIC_KEY_SIZE = 1312;
export const MLDSA44_SECRET_KEY_SIZE = 2560;
export const MLDSA44_SIGNATURE_SIZE = 2420;
/** Size of the `rnd` value of FIPS 204 ML-DSA.Sign_internal. */
export const MLDSA44_RANDOM_SIZE = 32;

export type MlDsa44BackendName = 'native' | 'wasm' | 'noble';
export const MLDSA44_BACKENDS: readonly MlDsa44BackendName[] = ['native', 'wasm', 'noble'];

/** What a backend does: hedged signing with a FIPS 204 secret key, and verification. */
export interface MlDsa44Backend {
  name: MlDsa44BackendName;
  /**
   * ML-DSA.Sign(sk, message, ctx = ""), hedged; `random()` gives the 32-byte rnd (a backend with its own source, as
   * PQClean's, never calls it: no randomness is drawn for nothing).
   */
  sign(secretKey: Uint8Array, message: Uint8Array, random: () => Uint8Array): Uint8Array;
  /** ML-DSA.Verify(pk, message, signature, ctx = ""). Lengths are checked by the caller. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

const noble: MlDsa44Backend = {
  name: 'noble',
  sign: (sk, message, random) => ml_dsa44.sign(message, sk, { extraEntropy: Uint8Array.from(checkedRandom(random())) }),
  verify: (pk, message, signature) => ml_dsa44.verify(signature, message, pk),
};

/** pqclean's classic `Sign` class (the same synchronous API in its addon and in its WebAssembly build). */
interface PqcleanSign {
  sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  readonly publicKeySize: number;
  readonly privateKeySize: number;
  readonly signatureSize: number;
}
type PqcleanModule = { Sign: new (algorithm: string) => PqcleanSign };

/**
 * Node's module loader, found without a static import so that core also bundles for the browser (explorer/): there
 * `process` is absent and only noble is used.
 */
function nodeRequire(): (id: string) => unknown {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const m = p?.getBuiltinModule?.('node:module') as { createRequire(url: string): (id: string) => unknown } | undefined;
  if (m === undefined) throw new Error('no Node.js module loader here');
  return m.createRequire(import.meta.url);
}

function pqcleanBackend(name: 'native' | 'wasm', load: () => PqcleanModule): MlDsa44Backend {
  const s = new (load().Sign)('ml-dsa-44');
  if (s.publicKeySize !== MLDSA44_PUBLIC_KEY_SIZE || s.privateKeySize !== MLDSA44_SECRET_KEY_SIZE || s.signatureSize !== MLDSA44_SIGNATURE_SIZE) {
    throw new Error(`pqclean ${name} ml-dsa-44 has unexpected sizes`);
  }
  const buf = (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  return {
    name,
    sign: (sk, message) => s.sign(buf(sk), buf(message)),
    verify: (pk, message, signature) => s.verify(buf(pk), buf(message), buf(signature)),
  };
}

/** Loaders, fastest first. Each throws when its backend is not available on this machine. */
export const MLDSA44_LOADERS: Readonly<Record<MlDsa44BackendName, () => MlDsa44Backend>> = {
  // The addon node-gyp builds from PQClean's C at `npm ci` (missing when the build failed or was skipped).
  native: () => pqcleanBackend('native', () => nodeRequire()('pqclean/build/Release/node_pqclean.node') as PqcleanModule),
  wasm: () => pqcleanBackend('wasm', () => nodeRequire()('pqclean/wasm/index.js') as PqcleanModule),
  noble: () => noble,
};

/**
 * The first backend whose loader succeeds and that passes the self-test (a known answer made by noble verifies, a
 * changed message does not: a broken build is never used); 'noble' if none does. Also what tests use to exercise
 * the fallback. Cheap (two verifications), since every process that checks an ML-DSA signature runs it once.
 */
export function pickMlDsa44Backend(loaders: ReadonlyArray<() => MlDsa44Backend>): MlDsa44Backend {
  for (const load of loaders) {
    try {
      const b = load();
      if (b.name === 'noble' || selfTest(b)) return b;
    } catch {
      // not available here: try the next one
    }
  }
  return noble;
}

function selfTest(b: MlDsa44Backend): boolean {
  const pk = Buffer.from(MLDSA44_KAT_PUBLIC_KEY, 'base64');
  const sig = Buffer.from(MLDSA44_KAT_SIGNATURE, 'base64');
  const msg = Buffer.from(MLDSA44_KAT_MESSAGE);
  return b.verify(pk, msg, sig) && !b.verify(pk, Buffer.from(MLDSA44_KAT_MESSAGE + '!'), sig);
}

/** Backends whose signing was checked once in this process (their first signature verified with noble). */
const signingChecked = new Set<MlDsa44Backend>([noble]);

let backend: MlDsa44Backend | undefined;
function current(): MlDsa44Backend {
  backend ??= pickMlDsa44Backend(MLDSA44_BACKENDS.map((n) => MLDSA44_LOADERS[n]));
  return backend;
}

/** The backend in use (chosen on first use: native, else wasm, else noble). */
export function mldsa44BackendName(): MlDsa44BackendName {
  return current().name;
}

/** Uses this backend from now on; 'usage' if it does not load (or fails its self-test) on this machine. */
export function useMlDsa44Backend(name: MlDsa44BackendName): void {
  if (!MLDSA44_BACKENDS.includes(name)) fail('usage', `unknown ML-DSA-44 backend ${JSON.stringify(name)} (use ${MLDSA44_BACKENDS.join(', ')})`);
  let b: MlDsa44Backend | undefined;
  let why = 'its self-test failed';
  try {
    b = MLDSA44_LOADERS[name]();
  } catch (e) {
    why = (e as Error).message.split('\n')[0]!;
  }
  if (b === undefined || (b.name !== 'noble' && !selfTest(b))) fail('usage', `the ML-DSA-44 backend ${name} is not available here: ${why}`);
  backend = b;
}

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
  const kp = { seed: Buffer.from(seed), publicKey: Buffer.from(publicKey), secretKey: Buffer.from(secretKey) };
  if (keyPairCache.size >= KEY_PAIR_CACHE_LIMIT) keyPairCache.delete(keyPairCache.keys().next().value!);
  keyPairCache.set(id, kp);
  return { ...kp, publicKey: Buffer.from(kp.publicKey) };
}

function checkedRandom(random: unknown): Uint8Array {
  if (!(random instanceof Uint8Array) || random.length !== MLDSA44_RANDOM_SIZE) fail('internal', 'ML-DSA-44 signing randomness must be 32 bytes');
  return random;
}

/**
 * ML-DSA.Sign(sk, message, ctx = ""): hedged when `random` is given — 32 bytes (e.g. fresh from the OS), or a function
 * returning them, called only by a backend that uses the caller's randomness (noble): on the pqclean backends
 * PQClean draws its own rnd from the OS instead —, else the deterministic variant (rnd = 0^32, noble).
 */
export function mldsa44Sign(key: MlDsa44KeyPair, message: Uint8Array, random?: Uint8Array | (() => Uint8Array)): Buffer {
  if (random === undefined) return Buffer.from(ml_dsa44.sign(message, key.secretKey, { extraEntropy: false }));
  const rnd = typeof random === 'function' ? random : (checkedRandom(random), () => random);
  const b = current();
  const s = b.sign(key.secretKey, message, rnd);
  // pqclean's addon returns a Buffer of its own (not a copy is needed); other backends a Uint8Array.
  const sig = Buffer.isBuffer(s) ? s : Buffer.from(s.buffer, s.byteOffset, s.byteLength);
  if (!signingChecked.has(b)) {
    // The first signature of a pqclean backend is checked independently, once per process.
    if (!ml_dsa44.verify(sig, message, key.publicKey)) fail('internal', `the ML-DSA-44 backend ${b.name} made a signature that does not verify`);
    signingChecked.add(b);
  }
  return sig;
}

/** True iff `signature` is a valid ML-DSA-44 signature (empty context) of `message` by `publicKey`. Never throws. */
export function mldsa44Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== MLDSA44_PUBLIC_KEY_SIZE || signature.length !== MLDSA44_SIGNATURE_SIZE) return false;
  try {
    return current().verify(publicKey, message, signature);
  } catch {
    return false;
  }
}
