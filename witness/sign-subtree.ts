/**
 * The witness's POST /sign-subtree (C2SP tlog-witness, OPTIONAL): core/sign-subtree.ts with this witness's keys —
 * a reference checkpoint it cosigned (any of its cosigning keys) for a log it witnesses, a subtree consistency proof,
 * and the answer signed by its ML-DSA-44 key (subtree/v1, timestamp 0). Without an ML-DSA-44 key: 404.
 */
import { answerSignSubtree, type SignSubtreeCosigner } from '../core/sign-subtree.ts';
import { cosignatureVerifier, mldsaCosignatureVerifier, type MlDsaCosigner } from '../core/cosignature.ts';
import { SIG_TYPE_MLDSA44, type Signer } from '../core/note.ts';
import type { Witness } from './witness.ts';

/** The sign-subtree view of a cosigner's keys: its own verifiers and its ML-DSA-44 subtree signers. */
export function subtreeCosigner(signers: Signer[], knownOrigin: (origin: string) => boolean): SignSubtreeCosigner {
  return {
    knownOrigin,
    own: signers.map((s) => (s.type === SIG_TYPE_MLDSA44 ? mldsaCosignatureVerifier(s.name, s.publicKey) : cosignatureVerifier(s.name, s.publicKey))),
    subtreeSigners: signers.filter((s): s is MlDsaCosigner => s.type === SIG_TYPE_MLDSA44 && typeof (s as MlDsaCosigner).signSubtree === 'function'),
  };
}

/** sign-subtree on a raw body for `witness`: the cosignature lines (the 200 body), or a PkglogError. */
export function witnessSignSubtree(witness: Witness): (body: Uint8Array) => string {
  let cosigner: SignSubtreeCosigner | undefined; // built at the first request (the witness's keys are fixed)
  return (body) => answerSignSubtree(body, (cosigner ??= subtreeCosigner(witness.signers, (origin) => witness.store.getLog(origin) !== undefined))).lines;
}
