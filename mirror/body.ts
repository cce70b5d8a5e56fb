/**
 * Reading a request body as a stream of exact-length pieces (add-entries is processed package by package, never
 * buffered whole), decompressing `Content-Encoding: gzip` on the way, with a cap on the decompressed bytes (a
 * compression bomb ends at the cap). Anything but identity or gzip is refused ('malformed').
 */
import type { IncomingMessage } from 'node:http';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { fail, PkglogError } from '../core/errors.ts';

/** The request's body stream, gunzipped when it says gzip. */
export function decodedBody(req: IncomingMessage): Readable {
  const enc = (req.headers['content-encoding'] ?? 'identity').toString().trim().toLowerCase();
  if (enc === 'identity' || enc === '') return req;
  if (enc === 'gzip' || enc === 'x-gzip') {
    const gunzip = createGunzip();
    req.on('error', (e) => gunzip.destroy(e));
    return req.pipe(gunzip);
  }
  return fail('malformed', `unsupported Content-Encoding ${JSON.stringify(enc)} (this mirror accepts gzip)`);
}

export class BodyReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private total = 0;
  private readonly it: AsyncIterator<Buffer>;
  private readonly max: number;

  constructor(stream: Readable, maxBytes: number) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.max = maxBytes;
  }

  /** Bytes taken so far plus buffered ones (decompressed). */
  get bytesRead(): number {
    return this.total;
  }

  /** Waits until `n` bytes are buffered; false when the body ended first. Throws 'too_large' past the cap, 'malformed' on a broken stream. */
  async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      let r: IteratorResult<Buffer>;
      try {
        r = await this.it.next();
      } catch (e) {
        if (e instanceof PkglogError) throw e;
        return fail('malformed', `the request body could not be read: ${(e as Error).message}`);
      }
      if (r.done) {
        this.ended = true;
        break;
      }
      const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      this.total += c.length;
      if (this.total > this.max) fail('too_large', `the request body is longer than ${this.max} bytes (decompressed)`);
      this.chunks.push(c);
      this.buffered += c.length;
    }
    return this.buffered >= n;
  }

  /** The first `n` buffered bytes without consuming them (fill(n) first). */
  peek(n: number): Buffer {
    if (this.chunks.length > 1 && this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0]!.subarray(0, n);
  }

  /** Exactly `n` bytes, or undefined when the body ends first. */
  async take(n: number): Promise<Buffer | undefined> {
    if (n === 0) return Buffer.alloc(0);
    if (!(await this.fill(n))) return undefined;
    const out = this.peek(n);
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return Buffer.from(out);
  }

  /** Everything that is left (up to the cap). */
  async rest(): Promise<Buffer> {
    await this.fill(Number.MAX_SAFE_INTEGER);
    const out = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return out;
  }

  /** True when nothing is buffered and the body has ended. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}
