/** The log's JSON error body; statuses come from the one code table in core/errors.ts (docs/errors.md). */
import type { NextFunction, Request, Response } from 'express';
import { PkglogError, httpStatus, type ErrorCode } from '../core/errors.ts';

export interface ErrorBody {
  error: ErrorCode;
  message: string;
  [k: string]: unknown;
}

/** The JSON body and status for any thrown value; anything that is not a PkglogError is an internal error. */
export function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof PkglogError) {
    return { status: httpStatus(err.code), body: { error: err.code, message: err.message, ...(err.details ?? {}) } };
  }
  const e = err as { type?: string; status?: number; message?: string };
  // body-parser errors: size limit and JSON syntax.
  if (e?.type === 'entity.too.large') return { status: 413, body: { error: 'too_large', message: 'request body is too large' } };
  if (e?.type === 'entity.parse.failed') return { status: 400, body: { error: 'malformed', message: 'request body is not valid JSON' } };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return { status: e.status, body: { error: 'malformed', message: e.message ?? 'bad request' } };
  }
  return { status: 500, body: { error: 'internal', message: 'internal error' } };
}

export function sendError(res: Response, err: unknown, log?: (msg: string) => void): void {
  const { status, body } = errorResponse(err);
  if (status >= 500 && log) {
    // A deliberate refusal (e.g. 503 on a full disk) is one line; only an unexpected error carries its stack.
    log(err instanceof PkglogError ? `refused: ${status} ${body.error}: ${body.message}` : `internal error: ${(err as Error)?.stack ?? String(err)}`);
  }
  if ((status === 503 || status === 429) && res.getHeader('Retry-After') === undefined) res.set('Retry-After', '1');
  res.status(status).type('application/json').send(JSON.stringify(body));
}

/** Express error middleware (4 arguments). */
export function errorMiddleware(log?: (msg: string) => void) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    sendError(res, err, log);
  };
}
