/**
 * The one error class of pkglog. Every failure that reaches a caller carries a string code;
 * each HTTP service maps codes to statuses in one exhaustive table.
 */
export type ErrorCode =
  | 'malformed' // input does not follow the grammar (400)
  | 'too_large' // input over a size or count limit (413)
  | 'bad_signature' // a signature does not verify (403)
  | 'unknown_key' // signer not configured/trusted (403)
  | 'not_found' // no such object (404)
  | 'out_of_range' // index/size outside the tree (400)
  | 'conflict' // a different artifact is already logged for this file (409)
  | 'invalid_proof' // a Merkle proof does not verify (422)
  | 'inconsistent' // state contradicts an earlier one (fork, rollback) (409/422)
  | 'overloaded' // try again later (503)
  | 'internal'; // a bug or a storage failure (500)

export class PkglogError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'PkglogError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

export function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new PkglogError(code, message, details);
}

export function isPkglogError(e: unknown, code?: ErrorCode): e is PkglogError {
  return e instanceof PkglogError && (code === undefined || e.code === code);
}
