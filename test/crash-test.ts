/**
 * `npm run crash-test [-- --kills N] [--seed S]`: kill -9 a real `pkglog serve` under concurrent submissions N times
 * (default 200) and check after every restart that nothing acknowledged was lost and nothing served was contradicted
 * (test/support/crash-loop.ts). Prints `kills N, entries checked M, losses L`; exits 1 on any loss or problem.
 */
import { parseArgs } from 'node:util';
import { crashLoop, summary } from './support/crash-loop.ts';
import { removeDir, tempDir } from './support/log-harness.ts';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '200' },
    seed: { type: 'string' },
    submitters: { type: 'string', default: '8' },
    'max-run-ms': { type: 'string', default: '600' },
    'keep-data': { type: 'boolean', default: false },
  },
});
const kills = Number(values.kills);
if (!Number.isSafeInteger(kills) || kills < 1) throw new Error(`--kills must be a positive integer, not ${values.kills}`);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const dir = tempDir('pkglog-crash-test-');
const started = Date.now();
console.log(`crash-test: ${kills} kills, seed ${seed}, data dir ${dir}`);
let failed = true;
try {
  const r = await crashLoop({
    dataDir: dir, kills, seed, submitters: Number(values.submitters), maxRunMs: Number(values['max-run-ms']),
    progress: (l) => console.log(`crash-test: ${l}`),
  });
  for (const p of r.problems) console.log(`crash-test: PROBLEM ${p}`);
  console.log(
    `${summary(r)} (${r.entryChecks} entry checks, ${r.checkpointsChecked} checkpoints checked, tree size ${r.treeSize}, ` +
      `${r.problems.length} problems, seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  failed = r.losses > 0 || r.problems.length > 0 || r.kills < kills;
} finally {
  if (values['keep-data'] || failed) console.log(`crash-test: data kept in ${dir}`);
  else removeDir(dir);
}
process.exitCode = failed ? 1 : 0;
