/**
 * A bounded JSON body reader for the submission routes. It refuses, before reading or while streaming:
 * a Content-Length over the limit (413 at once, the body is never read), a body growing over the limit (413 as soon as
 * it does), a compressed body, nesting deeper than MAX_JSON_DEPTH or more structural tokens than `maxTokens` (400, as
 * soon as the bytes that break the bound arrive). Only then is the (small, shallow) text handed to JSON.parse.
 * A refused body is not drained: the reply carries `Connection: close` and the socket is closed after it.
 */
import type { NextFunction, Request, Response } from 'express';
import { fail, PkglogError } from '../core/errors.ts';

/** The deepest nesting a submission needs is 4 ({"entries":[{"publisher":{…}}]}); anything past 8 is refused. */
export const MAX_JSON_DEPTH = 8;

export interface JsonLimits {
  maxBytes: number;
  /** Upper bound on `,` `:` `[` `{` outside strings (the number of values and members). */
  maxTokens: number;
  maxDepth?: number;
}

/** Incremental scanner of JSON structure over UTF-8 bytes (no ASCII byte occurs inside a multi-byte sequence). */
export class JsonShape {
  private depth = 0;
  private tokens = 0;
  private inString = false;
  private escaped = false;
  constructor(private readonly maxDepth: number, private readonly maxTokens: number) {}

  /** Throws 'malformed' as soon as the bytes so far nest too deep or hold too many tokens. */
  feed(chunk: Uint8Array): void {
    let { depth, tokens, inString, escaped } = this;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === 0x5c) escaped = true;
        else if (b === 0x22) inString = false;
        continue;
      }
      if (b === 0x22) inString = true;
      else if (b === 0x7b || b === 0x5b) {
        if (++depth > this.maxDepth) fail('malformed', `JSON nests deeper than ${this.maxDepth} levels`);
        tokens++;
      } else if (b === 0x7d || b === 0x5d) depth--;
      else if (b === 0x2c || b === 0x3a) tokens++;
      else continue;
      if (tokens > this.maxTokens) fail('too_large', `JSON has more than ${this.maxTokens} values`);
    }
    Object.assign(this, { depth, tokens, inString, escaped });
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Refuses a request whose body is not read to its end: answer, then close the connection instead of draining it. */
function refuse(req: Request, res: Response, next: NextFunction, err: PkglogError): void {
  req.pause();
  res.set('Connection', 'close');
  res.once('finish', () => req.socket.destroySoon?.());
  next(err);
}

/** Express middleware: req.body = the parsed JSON object. Errors go to the error middleware (one JSON reply). */
export function jsonBody(limits: JsonLimits) {
  const maxDepth = limits.maxDepth ?? MAX_JSON_DEPTH;
  return (req: Request, res: Response, next: NextFunction): void => {
    const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity') {
      return refuse(req, res, next, new PkglogError('malformed', `content-encoding ${JSON.stringify(encoding.slice(0, 32))} is not accepted`));
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && !(Number(declared) <= limits.maxBytes)) {
      return refuse(req, res, next, new PkglogError('too_large', `request body of ${String(declared).slice(0, 20)} bytes is over the limit of ${limits.maxBytes}`));
    }
    const shape = new JsonShape(maxDepth, limits.maxTokens);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: PkglogError) => {
      if (done) return;
      done = true;
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      if (err) return refuse(req, res, next, err);
      let text: string;
      try {
        text = utf8.decode(Buffer.concat(chunks, size));
      } catch {
        return next(new PkglogError('malformed', 'request body is not UTF-8'));
      }
      try {
        req.body = JSON.parse(text);
      } catch {
        return next(new PkglogError('malformed', 'request body is not valid JSON'));
      }
      if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) return next(new PkglogError('malformed', 'request body must be a JSON object'));
      next();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) return finish(new PkglogError('too_large', `request body is over the limit of ${limits.maxBytes} bytes`));
      try {
        shape.feed(chunk);
      } catch (e) {
        return finish(e as PkglogError);
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = () => finish(new PkglogError('malformed', 'request body could not be read'));
    const onAborted = () => finish(new PkglogError('malformed', 'request body was aborted'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  };
}
