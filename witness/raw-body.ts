/**
 * Reading a request body with a hard limit, as express middleware: a Content-Length over the limit is refused at
 * once (before any of the body is read), and a body that passes the limit while streaming is refused as soon as it
 * does. Either way the answer goes out immediately with `Connection: close` (see app.ts `refuse`), so the rest of
 * the body is never read. (body-parser, by contrast, reads an oversized body to its end before answering.)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PkglogError } from '../core/errors.ts';

/** The middleware (express, or plain node:http with a `next` callback): req.body = the body as one Buffer. */
export function rawBody(limit: number) {
  return (req: IncomingMessage & { body?: unknown }, _res: ServerResponse, next: (err?: unknown) => void): void => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit) {
      next(new PkglogError('too_large', `the request body declares ${declared} bytes; the limit is ${limit}`));
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (err?: PkglogError): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err !== undefined) {
        req.pause();
        next(err);
        return;
      }
      req.body = Buffer.concat(chunks, total);
      next();
    };
    const onData = (c: Buffer): void => {
      total += c.length;
      if (total > limit) finish(new PkglogError('too_large', `the request body is longer than the limit of ${limit} bytes`));
      else chunks.push(c);
    };
    const onEnd = (): void => finish();
    const onError = (e: Error): void => finish(new PkglogError('malformed', `the request body could not be read: ${e.message}`));
    const onClose = (): void => finish(new PkglogError('malformed', 'the client closed the connection before sending the whole body'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  };
}
