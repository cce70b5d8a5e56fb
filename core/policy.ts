/** C2SP tlog-policy: trusted logs, witnesses, groups and the quorum a checkpoint must meet. */
import type { Verifier } from './note.ts';
import { fail } from './errors.ts';

export interface PolicyLog {
  verifier: Verifier; // type 0x01, name = origin
  url?: string;
}

export interface PolicyWitness {
  name: string;
  verifier: Verifier; // type 0x04
  url?: string;
}

export type QuorumRule =
  | { kind: 'none' }
  | { kind: 'witness'; name: string }
  | { kind: 'group'; name: string; threshold: number; members: QuorumRule[] };

export interface Policy {
  logs: PolicyLog[];
  witnesses: PolicyWitness[];
  quorum: QuorumRule;
}

/** Strict parse (names defined before use, 1 ≤ k ≤ n, no duplicates, exactly one quorum line). Throws 'malformed'. */
export function parsePolicy(text: Uint8Array | string): Policy {
  void text;
  return fail('internal', 'not implemented');
}

/** True if the witnesses named in `cosigned` satisfy the quorum. */
export function quorumSatisfied(rule: QuorumRule, cosigned: ReadonlySet<string>): boolean {
  void rule; void cosigned;
  return fail('internal', 'not implemented');
}

export interface PolicyVerifiedCheckpoint {
  log: PolicyLog;
  /** Witnesses whose cosignature verified, with the cosignature timestamp (seconds). */
  cosigners: Array<{ witness: PolicyWitness; timestamp: number }>;
  text: string;
}

/**
 * Verifies a signed checkpoint against the policy: signed by one of the logs (key name = origin) and cosigned
 * per the quorum (cosignatures with timestamp ≥ `notBefore` seconds when given). Throws 'bad_signature',
 * 'unknown_key' or 'inconsistent' (quorum not met) with a clear message.
 */
export function verifyCheckpointWithPolicy(policy: Policy, signedCheckpoint: Uint8Array | string, notBefore?: number): PolicyVerifiedCheckpoint {
  void policy; void signedCheckpoint; void notBefore;
  return fail('internal', 'not implemented');
}
