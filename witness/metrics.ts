/**
 * The witness's Prometheus metrics, in its own registry (runtime/metrics.ts); gauges are read from the store when
 * /metrics is scraped (a count and the logs table, both small). docs/operations.md, "Metrics and alerts".
 */
import { Counter, Gauge, type Registry } from '../runtime/metrics.ts';
import type { WitnessStore } from './store.ts';

export class WitnessMetrics {
  private readonly addCheckpoint: Counter<'outcome'>;
  private readonly gossip: Counter<'result'>;

  constructor(registry: Registry, store: WitnessStore) {
    const registers = [registry];
    this.addCheckpoint = new Counter({
      name: 'pkglog_witness_add_checkpoint_total',
      help: 'add-checkpoint requests answered, by outcome (cosigned, or the error code: stale_size, inconsistent, bad_signature, …)',
      labelNames: ['outcome'], registers,
    });
    this.gossip = new Counter({
      name: 'pkglog_witness_gossip_total',
      help: 'Gossip checks answered (POST /v1/gossip), by result (consistent, fork, unknown, or the error code)',
      labelNames: ['result'], registers,
    });
    new Gauge({
      name: 'pkglog_witness_fork_evidence', help: 'Pieces of fork evidence recorded (any value above 0 needs an operator: docs/operations.md)', registers,
      collect() { this.set(store.isOpen() ? store.evidenceCount() : 0); },
    });
    new Gauge({
      name: 'pkglog_witness_logs', help: 'Logs this witness is configured to witness', registers,
      collect() { this.set(store.isOpen() ? store.listLogs().length : 0); },
    });
  }

  addCheckpointAnswered(outcome: string): void {
    this.addCheckpoint.inc({ outcome });
  }

  gossipAnswered(result: string): void {
    this.gossip.inc({ result });
  }
}
