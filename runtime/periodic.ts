/** Runs an async task every `intervalMs` (never overlapping, the first run at once) until stopped. */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly fn: () => Promise<void>;
  private readonly intervalMs: number;

  constructor(fn: () => Promise<void>, intervalMs: number) {
    this.fn = fn;
    this.intervalMs = intervalMs;
  }

  start(): this {
    this.schedule(0);
    return this;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.fn()
        .catch(() => {})
        .finally(() => {
          this.running = undefined;
          this.schedule(this.intervalMs);
        });
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }
}
