/**
 * bench/frontends.ts `benchFrontEnds()`: many front ends, one sequencer, on PostgreSQL (docs/operations.md#scaling-out),
 * with real `pkglog serve --database` processes (test/support/front-ends.ts) on a fresh database of the bench's own.
 * - Two front ends vs one: the same closed-loop submission load (C connections in total, split evenly over the front
 *   ends), submissions/s answered 200; the one-front-end run is the baseline, measured in the same run on the same
 *   database server. Informational: both front ends and the sequencer share this machine's cores.
 * - Failover: under a steady trickle of submissions, kill -9 whichever front end holds the lease, K times; the time
 *   from the kill to the first checkpoint bigger than any served before it (polled on the other front ends), p50 and
 *   max, next to the lease TTL (the baseline: what the takeover waits for by design). Target: max ≤ 5 s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { formatSubmission } from '../core/entry.ts';
import { closedLoop, httpRequest, percentile } from './load.ts';
import type { Figure } from './log.ts';
import { FrontEnds } from '../test/support/front-ends.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { artifact, sign } from '../test/support/submissions.ts';

const C = 32;
const LEASE_TTL_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function checkpointSize(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/checkpoint`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200 ? parseCheckpoint((await res.text()).split('\n\n')[0] + '\n').treeSize : -1;
  } catch {
    return -1;
  }
}

/** Submissions/s through `count` front ends on a fresh database. */
async function throughput(count: number, durationMs: number, runId: string): Promise<{ rate: number; p50: number; p99: number }> {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-fe-'));
  let fes: FrontEnds | undefined;
  try {
    fes = await FrontEnds.start({ dir, databaseUrl: db.url, count, origin: 'bench.example/frontends', leaseTtlMs: LEASE_TTL_MS, batchIntervalMs: 20, verifyThreads: 1 });
    await fes.waitForHolder();
    const bodies = (k: number) => (i: number) =>
      httpRequest('POST', '/v1/entries', JSON.stringify(formatSubmission(sign(artifact(k * 10_000_000 + i, { name: `bench-${runId}` })))));
    const results = await Promise.all(fes.all.map((fe, k) => closedLoop({
      url: fe.url, concurrency: Math.ceil(C / count), durationMs, warmup: 50, rampMs: 500, request: bodies(k),
    })));
    for (const r of results) if (r.errors > 0) throw new Error(`${r.errors} of ${r.completed} submissions failed, e.g. ${r.failures.join(' | ')}`);
    const lat = Float64Array.from(results.flatMap((r) => [...r.latencies]));
    return { rate: results.reduce((s, r) => s + r.rate, 0), p50: percentile(lat, 50), p99: percentile(lat, 99) };
  } finally {
    await fes?.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Kill → first new checkpoint, `kills` times, with three front ends. */
async function failover(kills: number): Promise<number[]> {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-failover-'));
  let fes: FrontEnds | undefined;
  let stop = false;
  const times: number[] = [];
  try {
    fes = await FrontEnds.start({ dir, databaseUrl: db.url, count: 3, origin: 'bench.example/failover', leaseTtlMs: LEASE_TTL_MS, batchIntervalMs: 20, verifyThreads: 0 });
    let next = 0;
    // a steady trickle: every 20 ms one submission to a random live front end
    const trickle = (async () => {
      while (!stop) {
        const live = fes!.live();
        const fe = live[next % live.length]!;
        const body = JSON.stringify(formatSubmission(sign(artifact(next++, { name: 'bench-failover' }))));
        fetch(`${fe.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(30_000) })
          .then((r) => r.arrayBuffer(), () => undefined).catch(() => undefined);
        await sleep(20);
      }
    })();
    for (let k = 0; k < kills; k++) {
      const holder = await fes.waitForHolder();
      const others = fes.live().filter((fe) => fe !== holder);
      let before = -1;
      for (let i = 0; i < 200 && before < 1; i++) {
        before = Math.max(...(await Promise.all(fes.live().map((fe) => checkpointSize(fe.url)))));
        await sleep(20);
      }
      await sleep(300);
      before = Math.max(...(await Promise.all(fes.live().map((fe) => checkpointSize(fe.url)))));
      const t0 = performance.now();
      await fes.kill(holder);
      for (;;) {
        const sizes = await Promise.all(others.map((fe) => checkpointSize(fe.url)));
        if (Math.max(...sizes) > before) break;
        if (performance.now() - t0 > 60_000) throw new Error(`kill ${k + 1}: no new checkpoint within 60 s`);
        await sleep(5);
      }
      times.push(performance.now() - t0);
      await fes.restart(holder);
    }
    stop = true;
    await trickle;
    return times;
  } finally {
    stop = true;
    await fes?.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchFrontEnds(o: { quick?: boolean } = {}): Promise<Figure[]> {
  const say = (m: string) => process.stderr.write(`bench frontends: ${m}\n`);
  const W = o.quick ? 2000 : 5000;
  const K = o.quick ? 10 : 12;
  const runId = Date.now().toString(36);
  say('one front end …');
  const one = await throughput(1, W, `${runId}a`);
  say('two front ends …');
  const two = await throughput(2, W, `${runId}b`);
  say(`failover, ${K} kills of the sequencing front end …`);
  const t = await failover(K);
  const p50 = percentile(Float64Array.from(t), 50);
  const max = Math.max(...t);
  return [
    {
      name: `submissions through 2 front ends vs 1 (PostgreSQL, C=${C} in total)`, value: two.rate, unit: 'entries/s', baseline: one.rate, ratio: two.rate / one.rate,
      note: `2 front ends p50 ${two.p50.toFixed(1)} ms, p99 ${two.p99.toFixed(1)} ms; 1 front end p50 ${one.p50.toFixed(1)} ms, p99 ${one.p99.toFixed(1)} ms; ` +
        'one sequencer either way, every process and PostgreSQL on the same 2 cores',
    },
    {
      name: `failover: kill -9 of the sequencer → first new checkpoint, p50 of ${t.length}`, value: p50, unit: 'ms', baseline: LEASE_TTL_MS, ratio: p50 / LEASE_TTL_MS,
      note: `every kill: ${t.map((x) => Math.round(x)).join(', ')} ms; the baseline is the lease TTL (--lease-ttl ${LEASE_TTL_MS})`,
    },
    {
      name: `failover: kill -9 of the sequencer → first new checkpoint, max of ${t.length}`, value: max, unit: 'ms', baseline: LEASE_TTL_MS, ratio: max / LEASE_TTL_MS,
      target: '≤ 5000 ms', pass: max <= 5000,
    },
  ];
}
