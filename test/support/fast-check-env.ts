/**
 * Mocha root hook (loaded by .mocharc.json for every test file): lets an environment variable replay a failing
 * fast-check run. fast-check prints `{ seed: S, path: "P", endOnFailure: true }` when a property fails; run
 *
 *   FC_SEED=S FC_PATH=P npx mocha test/the/file.test.ts -g 'the test title'
 *
 * to replay exactly that counterexample (see test/README.md). FC_NUM_RUNS=N changes the number of runs (e.g. to
 * search harder before a release). Without these variables every property uses a fresh random seed, which fast-check
 * prints in its failure message.
 */
import fc from 'fast-check';

export interface FastCheckEnv {
  seed?: number;
  path?: string;
  numRuns?: number;
}

/** Reads FC_SEED, FC_PATH and FC_NUM_RUNS; throws on a malformed value (a typo must not silently run random seeds). */
export function fastCheckEnv(env: NodeJS.ProcessEnv = process.env): FastCheckEnv {
  const out: FastCheckEnv = {};
  const int = (name: string, min: number): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min) throw new Error(`${name}=${JSON.stringify(v)} is not an integer ≥ ${min}`);
    return Number(v);
  };
  const seed = int('FC_SEED', -(2 ** 31));
  if (seed !== undefined) out.seed = seed | 0;
  const numRuns = int('FC_NUM_RUNS', 1);
  if (numRuns !== undefined) out.numRuns = numRuns;
  const path = env.FC_PATH;
  if (path !== undefined && path !== '') {
    if (!/^\d+(:\d+)*$/.test(path)) throw new Error(`FC_PATH=${JSON.stringify(path)} is not a fast-check path such as "35:4"`);
    if (out.seed === undefined) throw new Error('FC_PATH needs FC_SEED (a path only means something for its seed)');
    out.path = path;
  }
  return out;
}

const fromEnv = fastCheckEnv();
if (Object.keys(fromEnv).length > 0) {
  fc.configureGlobal({ ...fc.readConfigureGlobal(), ...fromEnv, ...(fromEnv.path !== undefined ? { endOnFailure: true } : {}) });
  process.stderr.write(`fast-check: replaying with ${JSON.stringify(fromEnv)} (from FC_SEED/FC_PATH/FC_NUM_RUNS)\n`);
}

export const mochaHooks = {};
