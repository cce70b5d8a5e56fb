/**
 * Prometheus metrics: every process (and every app built in a test) has its OWN prom-client Registry, never the
 * global default one, so two logs or a log and a witness in one test process do not collide. Metric names start with
 * `pkglog_` and carry their unit (`_seconds`, `_entries`, `_total` for counters). docs/operations.md, "Metrics and
 * alerts", lists every metric.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The Content-Type of the Prometheus text exposition format (version 0.0.4). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface RegistryOptions {
  /** Also the Node.js process metrics (CPU, memory, event-loop lag, file descriptors), prefixed `pkglog_`. */
  processMetrics?: boolean;
}

export function createRegistry(opts: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'pkglog_' });
  return registry;
}
