/** The log's JSON error body; statuses come from the one code table in core/errors.ts (docs/errors.md). */
import type { NextFunction, Request, Response } from 'express';
import { logText, requestLog } from '../runtime/http-ops.ts';
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

/** ` at <file:line>` of the first stack frame, or ''. */
function firstFrame(err: unknown): string {
  const frame = /\n\s+at (?:.*? \()?(.*?:\d+:\d+)\)?/.exec(String((err as Error)?.stack ?? ''));
  return frame ? ` at ${frame[1]!.replace(/^.*\/(?=[^/]+\/[^/]+$)/, '')}` : '';
}

/** One log line (no newlines or control characters, bounded length) for any text taken from a request. */
export { logText };

/**
 * Answers the error as JSON and logs the refusal as ONE line (method, path, status, code, message; never a stack trace,
 * so a flood of refusals, e.g. on a full disk, writes a bounded line each).
 */
export function sendError(res: Response, err: unknown, log?: (msg: string) => void, req?: Request): void {
  const { status, body } = errorResponse(err);
  // The request's own logger (with its reqId) when the ops middleware saw it, else the callback.
  const rlog = req ? requestLog(req) : undefined;
  if (log || rlog) {
    const where = req ? `${logText(req.method, 16)} ${logText(req.originalUrl ?? req.url, 200)}` : 'request';
    // An unexpected error (a bug: a real 500) names itself and where it was thrown, still on the same line.
    const bug = status >= 500 && !(err instanceof PkglogError);
    const cause = bug ? ` (${logText(`${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}${firstFrame(err)}`, 400)})` : '';
    const line = `refused ${where}: ${status} ${body.error}: ${logText(body.message)}${cause}`;
    if (rlog) {
      // JSON lines: a bug's stack goes in its `err` field (escaped: still one line); a refusal has none, a 503 included.
      if (bug) rlog.error({ err }, line);
      else if (status >= 500) rlog.warn(line);
      else rlog.info(line);
    } else {
      log!(line);
    }
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (body.error === 'rate_limited' && typeof body.retryAfter === 'number') res.set('Retry-After', String(body.retryAfter));
  if ((status === 503 || status === 429) && res.getHeader('Retry-After') === undefined) res.set('Retry-After', '1');
  res.status(status).type('application/json').send(JSON.stringify(body));
}

/** Express error middleware (4 arguments). */
export function errorMiddleware(log?: (msg: string) => void) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    sendError(res, err, log, req);
  };
}
