/**
 * Reading an HTTP reply body from another party (a log, a peer witness) with a hard cap: a Content-Length over the
 * cap is refused before anything is read, and the stream is cut off (cancelled, connection dropped) as soon as the
 * bytes read pass the cap, so an endless or oversized body costs at most `max` bytes of memory.
 */
import { fail } from '../core/errors.ts';

export async function readCapped(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = res.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > max) {
    await res.body?.cancel().catch(() => {});
    fail('too_large', `${what}: the reply declares ${declared} bytes, more than the limit of ${max}`);
  }
  if (res.body === null) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => {});
        fail('too_large', `${what}: the reply is longer than the limit of ${max} bytes (cut off)`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks, total);
}
