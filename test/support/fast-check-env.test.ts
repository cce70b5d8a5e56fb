import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fastCheckEnv } from './fast-check-env.ts';

describe('test support: FC_SEED / FC_PATH / FC_NUM_RUNS replay a fast-check run', () => {
  it('reads the seed, path and run count, and refuses malformed values', () => {
    assert.deepEqual(fastCheckEnv({}), {});
    assert.deepEqual(fastCheckEnv({ FC_SEED: '860077103', FC_PATH: '35:4' }), { seed: 860077103, path: '35:4' });
    assert.deepEqual(fastCheckEnv({ FC_SEED: '-12', FC_NUM_RUNS: '5' }), { seed: -12, numRuns: 5 });
    assert.throws(() => fastCheckEnv({ FC_SEED: '86007710x' }), /FC_SEED/);
    assert.throws(() => fastCheckEnv({ FC_PATH: '35:4' }), /needs FC_SEED/);
    assert.throws(() => fastCheckEnv({ FC_SEED: '1', FC_PATH: '35;4' }), /FC_PATH/);
    assert.throws(() => fastCheckEnv({ FC_NUM_RUNS: '0' }), /FC_NUM_RUNS/);
  });

  it("a failure's printed seed and path replay the same counterexample", () => {
    const prop = fc.property(fc.integer({ min: 0, max: 1000 }), (n) => n % 7 !== 3);
    const first = fc.check(prop, { seed: 42 });
    assert.equal(first.failed, true);
    let message = '';
    try {
      fc.assert(prop, { seed: 42 });
    } catch (e) {
      message = (e as Error).message;
    }
    const m = /\{ seed: (-?\d+), path: "([\d:]+)"/.exec(message);
    assert.ok(m !== null, `fast-check's message names the seed and path: ${message}`);
    const replay = fc.check(prop, fastCheckEnv({ FC_SEED: m[1], FC_PATH: m[2] }));
    assert.equal(replay.failed, true);
    assert.equal(replay.numRuns, 1, 'the path replays the shrunk case directly');
    assert.deepEqual(replay.counterexample, first.counterexample);
  });
});
