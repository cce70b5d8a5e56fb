/** The one retry backoff: exponential from `minMs`, doubling per consecutive failure, capped at `maxMs`. */

/** The wait after `failures` (≥ 1) consecutive failures: minMs · 2^(failures−1), at most maxMs. */
export function backoffMs(failures: number, minMs: number, maxMs: number): number {
  const n = Math.max(1, Math.floor(failures));
  return Math.min(maxMs, minMs * 2 ** Math.min(n - 1, 30));
}
