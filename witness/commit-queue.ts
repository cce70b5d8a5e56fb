/**
 * Group commit: compare-and-swaps submitted in the same turn of the event loop are applied in ONE durable SQLite
 * transaction (one fsync), then each caller learns whether its own swap applied. The transaction itself is
 * synchronous (better-sqlite3): nothing is awaited inside it.
 */
export class CommitQueue<Op> {
  private pending: Array<{ op: Op; resolve: (ok: boolean) => void; reject: (e: unknown) => void }> = [];
  private scheduled = false;
  private readonly apply: (ops: Op[]) => boolean[];

  constructor(apply: (ops: Op[]) => boolean[]) {
    this.apply = apply;
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
    batch.forEach((b, i) => b.resolve(results[i] === true));
  }
}
