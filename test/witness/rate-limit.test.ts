/** The gossip rate limiter (witness/rate-limit.ts): properties over random request times (fast-check prints its seed). */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RateLimiter } from '../../witness/rate-limit.ts';

describe('witness rate limiter (token bucket per client)', () => {
  it('over any interval, one client is allowed at most burst + rate × duration requests, and Retry-After is a whole number of seconds ≥ 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }), // burst
        fc.integer({ min: 1, max: 50 }), // rate per second (× 0.1)
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 200 }), // gaps in ms
        (burst, rate10, gaps) => {
          const rate = rate10 / 10;
          const rl = new RateLimiter({ rate, burst });
          let now = 1_000_000;
          const allowed: number[] = [];
          for (const g of gaps) {
            now += g;
            const wait = rl.take('c', now);
            if (wait === 0) allowed.push(now);
            else assert.ok(wait >= 1 && Number.isInteger(wait), `Retry-After ${wait}`);
          }
          for (let i = 0; i < allowed.length; i++) {
            for (let j = i; j < allowed.length; j++) {
              const duration = (allowed[j]! - allowed[i]!) / 1000;
              assert.ok(j - i + 1 <= burst + rate * duration + 1e-9, `${j - i + 1} allowed in ${duration} s (burst ${burst}, rate ${rate})`);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('after the Retry-After it names, the next request is allowed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 30 }), (burst, rate10, extra) => {
        const rate = rate10 / 10;
        const rl = new RateLimiter({ rate, burst });
        const now = 5_000_000;
        for (let i = 0; i < burst; i++) assert.equal(rl.take('c', now), 0);
        let wait = 0;
        for (let i = 0; i < extra; i++) wait = rl.take('c', now);
        assert.ok(wait >= 1);
        assert.equal(rl.take('c', now + wait * 1000), 0);
      }),
      { numRuns: 200 },
    );
  });

  it('clients are independent, and the number tracked is bounded', () => {
    const rl = new RateLimiter({ rate: 1, burst: 1, maxClients: 100 });
    assert.equal(rl.take('a', 0), 0);
    assert.ok(rl.take('a', 0) >= 1);
    assert.equal(rl.take('b', 0), 0, 'another client is not affected');
    for (let i = 0; i < 10_000; i++) rl.take(`flood-${i}`, 0);
    assert.equal(rl.take('a', 0), 0, 'an evicted client starts again with a full bucket (errs towards serving)');
  });
});
