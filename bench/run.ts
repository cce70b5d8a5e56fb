/**
 * `npm run bench`: the log's figures (bench/log.ts), then, when those files exist, the witness's (bench/witness.ts,
 * benchWitness()), the client's (bench/client.ts, benchClient()), ML-DSA-44 (bench/mldsa.ts, benchMlDsa()), the command's start-up
 * (bench/startup.ts, benchStartup()), the package index's pure parts (bench/index.ts, benchIndex()) and its server side
 * (bench/index-server.ts, benchIndexServer()), `pkglog verify-lock` on a 1,000-entry lockfile (bench/lock.ts,
 * benchLock()), the mirror's catch-up (bench/mirror.ts, benchMirror()) and the big SQLite log (bench/large.ts,
 * benchLarge(); BENCH_FULL=1: 10,000,000 entries), printed in one table.
 * BENCH_QUICK=1 for a short smoke run. Every figure is printed next to its same-run baseline, with the ratio and whether the target is met.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { benchLog, type Figure } from './log.ts';

const quick = process.env.BENCH_QUICK === '1';

/** A figure from another bench file: {name, value, unit, baseline?, target?} (pass/ratio optional). */
type AnyFigure = Figure;

async function optional(file: string, fn: string): Promise<AnyFigure[]> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  if (!existsSync(path)) return [];
  try {
    const mod = (await import(path)) as Record<string, unknown>;
    const f = mod[fn];
    if (typeof f !== 'function') return [{ name: `${file}: no ${fn}() export`, value: NaN, unit: '' }];
    return (await (f as (o: { quick: boolean }) => Promise<AnyFigure[]>)({ quick })) ?? [];
  } catch (e) {
    console.error(`${file}: ${(e as Error)?.stack ?? e}`);
    return [{ name: `${file}: ${fn}() failed: ${(e as Error)?.message ?? e}`, value: NaN, unit: '', pass: false }];
  }
}

const fmt = (v: number | undefined): string => {
  if (v === undefined) return '';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? Math.round(v).toLocaleString('en') : a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
};

function table(sections: Array<[string, AnyFigure[]]>): string {
  const head = ['figure', 'value', 'unit', 'baseline', 'ratio', 'target', 'result'];
  const rows: string[][] = [];
  for (const [title, figs] of sections) {
    if (figs.length === 0) continue;
    rows.push([`[${title}]`, '', '', '', '', '', '']);
    for (const f of figs) {
      const ratio = f.ratio ?? (f.baseline !== undefined && f.baseline !== 0 && Number.isFinite(f.value) ? f.value / f.baseline : undefined);
      const pass = f.pass === undefined ? '' : f.pass ? 'PASS' : 'FAIL';
      rows.push([f.name, fmt(f.value), f.unit, fmt(f.baseline), ratio === undefined ? '' : `${(ratio * 100).toFixed(0)}%`, f.target === undefined ? '' : String(f.target), pass]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i >= 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const notes = sections.flatMap(([, figs]) => figs.filter((f) => f.note !== undefined).map((f) => `  ${f.name}: ${f.note}`));
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), '', 'notes:', ...notes].join('\n');
}

const t0 = performance.now();
const sections: Array<[string, AnyFigure[]]> = [];
sections.push(['log', await benchLog({ quick })]);
sections.push(['witness', await optional('./witness.ts', 'benchWitness')]);
sections.push(['client', await optional('./client.ts', 'benchClient')]);
sections.push(['ML-DSA-44', await optional('./mldsa.ts', 'benchMlDsa')]);
sections.push(['start-up', await optional('./startup.ts', 'benchStartup')]);
sections.push(['index', await optional('./index.ts', 'benchIndex')]);
sections.push(['index client', await optional('./index-client.ts', 'benchIndexClient')]);
sections.push(['index server', await optional('./index-server.ts', 'benchIndexServer')]);
sections.push(['static tiles', await optional('./publish.ts', 'benchPublish')]);
sections.push(['front ends (PostgreSQL)', await optional('./frontends.ts', 'benchFrontEnds')]);
sections.push(['store', await optional('./store.ts', 'benchStore')]);
sections.push(['verify-lock', await optional('./lock.ts', 'benchLock')]);
sections.push(['mirror', await optional('./mirror.ts', 'benchMirror')]);
sections.push(['large log', await optional('./large.ts', 'benchLarge')]);
console.log(`\npkglog bench${quick ? ' (BENCH_QUICK)' : ''} — ${new Date().toISOString()}, node ${process.version}, ${(await import('node:os')).cpus().length} cores, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
console.log(table(sections));
const failed = sections.flatMap(([, f]) => f).filter((f) => f.pass === false);
console.log(failed.length === 0 ? '\nall targets met' : `\n${failed.length} target(s) missed: ${failed.map((f) => f.name).join('; ')}`);
