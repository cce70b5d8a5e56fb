/**
 * Per-registry submission quotas: a token bucket (rate entries per second, up to burst at once) and a count per UTC
 * day. Each entry counts, in a batch too. The state is in memory: a restart refills every bucket and resets the daily
 * counts (documented in docs/http-limits.md). Quotas are read from the registry's current configuration on every call,
 * so a changed registries.txt applies at once.
 */
import { fail } from '../core/errors.ts';
import type { RegistryQuota } from './registries.ts';

const DAY_MS = 86_400_000;

interface State {
  tokens: number;
  at: number;
  day: number;
  used: number;
}

export class Quotas {
  private readonly state = new Map<string, State>();
  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Takes `count` entries from `name`'s quota, all or none. Throws 'rate_limited' (with retryAfter, in whole seconds)
   * when they do not fit now, 'too_large' when they can never fit at once (count above the burst or the daily limit).
   */
  take(name: string, quota: RegistryQuota, count: number): void {
    if (quota.rate === undefined && quota.daily === undefined) return;
    const t = this.now();
    const day = Math.floor(t / DAY_MS);
    const burst = quota.rate === undefined ? Infinity : (quota.burst ?? Math.max(1, Math.ceil(quota.rate)));
    let s = this.state.get(name);
    if (s === undefined) {
      s = { tokens: burst, at: t, day, used: 0 };
      this.state.set(name, s);
    }
    if (quota.rate !== undefined) {
      s.tokens = Math.min(burst, s.tokens + ((t - s.at) / 1000) * quota.rate);
    }
    s.at = t;
    if (s.day !== day) {
      s.day = day;
      s.used = 0;
    }
    if (count > burst) fail('too_large', `${count} entries at once are more than registry ${name}'s burst of ${burst}: send smaller batches`);
    if (quota.daily !== undefined) {
      if (count > quota.daily) fail('too_large', `${count} entries are more than registry ${name}'s daily limit of ${quota.daily}`);
      if (s.used + count > quota.daily) {
        const retryAfter = Math.max(1, Math.ceil(((day + 1) * DAY_MS - t) / 1000));
        fail('rate_limited', `registry ${name} has used its daily limit of ${quota.daily} entries (resets at 00:00 UTC)`, { retryAfter });
      }
    }
    if (quota.rate !== undefined && s.tokens < count) {
      const retryAfter = Math.max(1, Math.ceil((count - s.tokens) / quota.rate));
      fail('rate_limited', `registry ${name} is over its rate of ${quota.rate} entries per second (burst ${burst})`, { retryAfter });
    }
    if (quota.rate !== undefined) s.tokens -= count;
    s.used += count;
  }

  /** Forgets registries no longer configured (keeps the map as small as the configuration). */
  retain(names: ReadonlySet<string> | ReadonlyMap<string, unknown>): void {
    for (const k of this.state.keys()) if (!names.has(k)) this.state.delete(k);
  }
}
