/**
 * Group commit: compare-and-swaps submitted in the same turn of the event loop are applied in ONE SQLite
 * transaction, made durable by `durable()` (one fsync of the WAL off the event loop, shared with the commits made
 * while it runs: witness/store.ts), then each caller learns whether its own swap applied. The transaction itself is
 * synchronous (better-sqlite3): nothing is awaited inside it.
 */
export class CommitQueue<Op> {
  private pending: Array<{ op: Op; resolve: (ok: boolean) => void; reject: (e: unknown) => void }> = [];
  private scheduled = false;
  private readonly apply: (ops: Op[]) => boolean[];
  private readonly durable: () => Promise<void>;

  constructor(apply: (ops: Op[]) => boolean[], durable: () => Promise<void> = async () => {}) {
    this.apply = apply;
    this.durable = durable;
  }

  submit(op: Op): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    let results: boolean[];
    try {
      results = this.apply(batch.map((b) => b.op));
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    // Also a batch where no swap applied waits: its callers may retry against state they must not reply before.
    this.durable().then(
      () => batch.forEach((b, i) => b.resolve(results[i] === true)),
      (e: unknown) => batch.forEach((b) => b.reject(e)),
    );
  }
}
