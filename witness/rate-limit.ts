/**
 * Per-client token buckets: each client (by IP address) may spend `burst` requests at once and then `rate` per
 * second. The buckets live in an LRU of bounded size, so a flood from many addresses costs bounded memory (an evicted
 * client starts again with a full bucket, which only ever errs towards serving).
 */
import { LRUCache } from 'lru-cache';

export interface RateLimitOptions {
  /** Tokens added per second. */
  rate: number;
  /** Bucket size (requests allowed at once). */
  burst: number;
  /** Clients tracked at once (default 10,000). */
  maxClients?: number;
}

interface Bucket {
  tokens: number;
  /** Milliseconds. */
  at: number;
}

export class RateLimiter {
  readonly rate: number;
  readonly burst: number;
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(opts: RateLimitOptions) {
    if (!(opts.rate > 0) || !(opts.burst >= 1)) throw new RangeError('rate must be > 0 and burst ≥ 1');
    this.rate = opts.rate;
    this.burst = opts.burst;
    this.buckets = new LRUCache({ max: opts.maxClients ?? 10_000 });
  }

  /** Takes one token for `client` at time `nowMs`: 0 if allowed, else the seconds to wait (≥ 1, for Retry-After). */
  take(client: string, nowMs: number): number {
    const b = this.buckets.get(client) ?? { tokens: this.burst, at: nowMs };
    const tokens = Math.min(this.burst, b.tokens + (Math.max(0, nowMs - b.at) / 1000) * this.rate);
    if (tokens >= 1) {
      this.buckets.set(client, { tokens: tokens - 1, at: nowMs });
      return 0;
    }
    this.buckets.set(client, { tokens, at: nowMs });
    return Math.max(1, Math.ceil((1 - tokens) / this.rate));
  }
}
