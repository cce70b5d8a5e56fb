/**
 * The log's Prometheus metrics, in the app's own registry (runtime/metrics.ts). Counters and histograms are updated
 * as things happen (submissions, batches); gauges are read from the components when /metrics is scraped, so nothing
 * is computed between scrapes. Every metric is listed in docs/operations.md ("Metrics and alerts").
 */
import { Counter, Gauge, Histogram, type Registry } from '../runtime/metrics.ts';
import type { WitnessStatus } from './witnessing.ts';

/** Outcome label of a submission: `logged`, or the error code it was refused with (a bounded set: core/errors.ts). */
export type SubmissionOutcome = string;

export interface LogMetricsSources {
  treeSize(): number | Promise<number>;
  /** The published (with a quorum: cosigned) tree size. */
  publishedSize(): number | Promise<number>;
  pending(): number;
  /** Configured registry names: only these become `registry` label values (others are `unknown`). */
  isRegistry(name: string): boolean;
  witnesses?(): WitnessStatus[];
  verifyRestarts?(): number;
}

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class LogMetrics {
  private readonly src: LogMetricsSources;
  private readonly submissions: Counter<'registry' | 'outcome'>;
  private readonly quotaRefusals: Counter<'registry'>;
  private readonly batchSize: Histogram;
  private readonly integration: Histogram;
  private readonly commit: Histogram;
  private readonly failedBatches: Counter;

  constructor(registry: Registry, src: LogMetricsSources) {
    this.src = src;
    const registers = [registry];
    this.submissions = new Counter({
      name: 'pkglog_submissions_total',
      help: 'Submissions answered (single and batch entries), by registry and outcome (logged, or the error code)',
      labelNames: ['registry', 'outcome'], registers,
    });
    this.quotaRefusals = new Counter({
      name: 'pkglog_quota_refusals_total',
      help: 'Submissions refused by a per-registry quota (429 rate_limited), by registry',
      labelNames: ['registry'], registers,
    });
    this.batchSize = new Histogram({
      name: 'pkglog_batch_size_entries',
      help: 'New entries per committed batch (one store transaction and one signed checkpoint each)',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000], registers,
    });
    this.integration = new Histogram({
      name: 'pkglog_integration_duration_seconds',
      help: 'Time from a verified submission entering the pending pool to its batch being committed and answered',
      buckets: SECONDS, registers,
    });
    this.commit = new Histogram({
      name: 'pkglog_commit_duration_seconds',
      help: 'Time to integrate, sign and commit one batch (the store transaction and the high-water mark)',
      buckets: SECONDS, registers,
    });
    this.failedBatches = new Counter({
      name: 'pkglog_batch_failures_total',
      help: 'Batches that could not be committed (every submission in them was refused with 503; nothing was logged)',
      registers,
    });
    new Gauge({
      name: 'pkglog_tree_size_entries', help: 'Entries in the newest signed checkpoint', registers,
      async collect() { this.set(await src.treeSize()); },
    });
    new Gauge({
      name: 'pkglog_published_tree_size_entries', help: 'Size of the published checkpoint (with a witness quorum: the newest one cosigned by the quorum)', registers,
      async collect() { this.set(await src.publishedSize()); },
    });
    new Gauge({
      name: 'pkglog_pending_submissions', help: 'Verified submissions waiting in the pending pool for the next batch', registers,
      collect() { this.set(src.pending()); },
    });
    if (src.verifyRestarts) {
      const restarts = src.verifyRestarts;
      new Counter({
        name: 'pkglog_verify_worker_restarts_total', help: 'Signature verification workers replaced after they exited, failed or stalled', registers,
        collect() { this.reset(); this.inc(restarts()); },
      });
    }
    if (src.witnesses) {
      const witnesses = src.witnesses;
      new Counter({
        name: 'pkglog_witness_requests_total', help: 'add-checkpoint requests sent, by witness URL', labelNames: ['witness'], registers,
        collect() { this.reset(); for (const w of witnesses()) this.inc({ witness: w.url }, w.requests); },
      });
      new Counter({
        name: 'pkglog_witness_cosignatures_total', help: 'Cosignatures received, verified and stored, by witness URL', labelNames: ['witness'], registers,
        collect() { this.reset(); for (const w of witnesses()) this.inc({ witness: w.url }, w.cosignatures); },
      });
      new Counter({
        name: 'pkglog_witness_failures_total', help: 'Failed add-checkpoint exchanges (network, HTTP, bad answer, inconsistent), by witness URL', labelNames: ['witness'], registers,
        collect() { this.reset(); for (const w of witnesses()) this.inc({ witness: w.url }, w.failuresTotal); },
      });
      new Gauge({
        name: 'pkglog_witness_consecutive_failures', help: 'Failures since the last success, by witness URL (0: healthy)', labelNames: ['witness'], registers,
        collect() { this.reset(); for (const w of witnesses()) this.set({ witness: w.url }, w.failures); },
      });
      new Gauge({
        name: 'pkglog_witness_cosigned_tree_size_entries', help: 'Newest tree size this witness cosigned, by witness URL (0: none yet)', labelNames: ['witness'], registers,
        collect() { this.reset(); for (const w of witnesses()) this.set({ witness: w.url }, w.cosignedSize ?? 0); },
      });
    }
  }

  /** One answered submission (a batch entry counts as one). `registry` is the submitted name, if any. */
  submission(registry: unknown, outcome: SubmissionOutcome): void {
    const r = typeof registry === 'string' && this.src.isRegistry(registry) ? registry : 'unknown';
    this.submissions.inc({ registry: r, outcome });
    if (outcome === 'rate_limited') this.quotaRefusals.inc({ registry: r });
  }

  /** A settled batch (the sequencer's onBatch). */
  batch(b: { fresh: number; failed: boolean; commitMs: number; waitedMs: number[] }): void {
    if (b.failed) {
      this.failedBatches.inc();
      return;
    }
    if (b.fresh > 0) {
      this.batchSize.observe(b.fresh);
      this.commit.observe(b.commitMs / 1000);
    }
    for (const w of b.waitedMs) this.integration.observe(w / 1000);
  }
}
