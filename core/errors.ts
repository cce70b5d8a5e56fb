/**
 * The one error model of pkglog: one error class (PkglogError, with a string code) and ONE table giving every code
 * its HTTP status (log and witness alike) and its exit code (every command). Documented in docs/errors.md; a test
 * checks that page against this table.
 */

/** Exit codes of every pkglog command (docs/errors.md). */
export const EXIT = {
  OK: 0,
  /** The check failed or the request was refused: the artifact does not verify, a conflict, a bad signature, a bug. */
  VERIFY_FAILED: 1,
  /** Bad command line, unreadable or malformed input files. */
  USAGE: 2,
  /** The checkpoint does not satisfy the policy: log signature, witness quorum, or too old (--max-age). */
  POLICY: 3,
  /** The log forked: inconsistent with the saved state or with a witness; evidence written. */
  FORK: 4,
  /** Publisher key change for the package (verify --strict-keys; monitor: watched package). */
  KEY_CHANGE: 5,
  /** --min-age not proven: the artifact is not provably old enough. */
  TOO_YOUNG: 6,
  /** The log or a witness could not be reached, is overloaded or rate-limits us, or answered with an unexpected error. */
  NETWORK: 7,
  /** Monitor/audit: the log broke a promise (bad tile, bad signature, second artifact for a file); evidence written. */
  LOG_MISBEHAVED: 8,
  /** The log refuses to start or to sign: its state is behind what it already published. */
  UNSAFE_STATE: 9,
  /** The local disk is full (or the store cannot grow): nothing was acknowledged that is not stored. */
  DISK_FULL: 10,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

interface CodeInfo {
  /** HTTP status on the log's and the witness's APIs. */
  readonly http: number;
  /** Exit code of a command that fails with this error. */
  readonly exit: ExitCode;
  /** One line for docs/errors.md. */
  readonly meaning: string;
}

/** THE table. Adding a code here is all it takes; docs/errors.md must list it (test/core/errors.test.ts checks). */
export const ERROR_CODES = {
  usage: { http: 400, exit: EXIT.USAGE, meaning: 'bad command line: unknown option, missing value, wrong arguments' },
  malformed: { http: 400, exit: EXIT.USAGE, meaning: 'input does not follow the grammar (request body, note, proof, key, file)' },
  out_of_range: { http: 400, exit: EXIT.VERIFY_FAILED, meaning: 'index or size outside the tree; tlog-witness: old size > checkpoint size' },
  too_large: { http: 413, exit: EXIT.USAGE, meaning: 'input over a size or count limit' },
  bad_signature: { http: 403, exit: EXIT.VERIFY_FAILED, meaning: 'a signature does not verify; tlog-witness: no signature verifies against a trusted key' },
  unknown_key: { http: 403, exit: EXIT.VERIFY_FAILED, meaning: 'the signer is not configured or not trusted' },
  wrong_ecosystem: { http: 403, exit: EXIT.VERIFY_FAILED, meaning: 'the registry is not allowed to submit for this ecosystem' },
  not_found: { http: 404, exit: EXIT.USAGE, meaning: 'no such object (entry, tile, file); tlog-witness: unknown origin' },
  conflict: { http: 409, exit: EXIT.VERIFY_FAILED, meaning: 'a different artifact is already logged for this file, or the thing is already configured' },
  stale_size: { http: 409, exit: EXIT.VERIFY_FAILED, meaning: 'tlog-witness: old size is not the latest cosigned size (body: that size, text/x.tlog.size); tlog-mirror: upload range not acceptable (body: text/x.tlog.mirror-info)' },
  no_checkpoint: { http: 422, exit: EXIT.VERIFY_FAILED, meaning: 'tlog-mirror add-entries: the mirror has no pending checkpoint of that log yet (send add-checkpoint first)' },
  invalid_proof: { http: 422, exit: EXIT.VERIFY_FAILED, meaning: 'a Merkle inclusion or consistency proof does not verify' },
  inconsistent: { http: 422, exit: EXIT.FORK, meaning: 'contradicts a state verified or signed earlier (fork, rollback, same size with another root)' },
  quorum_not_met: { http: 422, exit: EXIT.POLICY, meaning: 'the checkpoint does not carry the cosignatures the policy asks for' },
  rate_limited: { http: 429, exit: EXIT.NETWORK, meaning: 'too many requests from this client or registry: retry after Retry-After' },
  network: { http: 502, exit: EXIT.NETWORK, meaning: 'a log or witness could not be reached or answered with an unexpected status' },
  overloaded: { http: 503, exit: EXIT.NETWORK, meaning: 'busy (pending pool full, store in use): retry after Retry-After' },
  disk_full: { http: 503, exit: EXIT.DISK_FULL, meaning: 'the disk is full: the submission was not stored (and not acknowledged)' },
  unsafe_state: { http: 503, exit: EXIT.UNSAFE_STATE, meaning: 'the log refuses to start or sign: its stored state is behind a checkpoint it already published' },
  unverified: { http: 403, exit: EXIT.VERIFY_FAILED, meaning: 'pkglog proxy: the artifact failed a check (not logged, replaced, policy, fork, key change, too young) and is not served' },
  internal: { http: 500, exit: EXIT.VERIFY_FAILED, meaning: 'a bug or an unexpected storage failure (never shown with a stack trace)' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

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

/** The HTTP status for a code (log and witness). */
export function httpStatus(code: ErrorCode): number {
  return ERROR_CODES[code].http;
}

/** The exit code for anything a command throws: a PkglogError by its code, anything else is internal. */
export function exitCode(e: unknown): ExitCode {
  return isPkglogError(e) ? ERROR_CODES[e.code].exit : ERROR_CODES.internal.exit;
}

