/**
 * The witness's POST /sign-subtree (C2SP tlog-witness, OPTIONAL): core/sign-subtree.ts with this witness's keys —
 * a reference checkpoint it cosigned (any of its cosigning keys) for a log it witnesses, a subtree consistency proof,
 * and the answer signed by its ML-DSA-44 key (subtree/v1, timestamp 0). Without an ML-DSA-44 key: 404.
 */
import { answerSignSubtree, subtreeCosigner, type SignSubtreeCosigner } from '../core/sign-subtree.ts';
import type { Witness } from './witness.ts';

/** sign-subtree on a raw body for `witness`: the cosignature lines (the 200 body), or a PkglogError. */
export function witnessSignSubtree(witness: Witness): (body: Uint8Array) => string {
  let cosigner: SignSubtreeCosigner | undefined; // built at the first request (the witness's keys are fixed)
  return (body) => answerSignSubtree(body, (cosigner ??= subtreeCosigner(witness.signers, (origin) => witness.store.getLog(origin) !== undefined))).lines;
}
