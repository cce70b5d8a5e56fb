/**
 * Signal handling of the long-running commands (serve, witness): the first SIGTERM or SIGINT starts the graceful
 * shutdown (`close`: drain, commit, close the store) and exits 0 when it is done (1 if it failed); a second signal
 * exits at once with 128 + the signal number (130 for SIGINT, 143 for SIGTERM), without waiting.
 */
import type { Logger } from './logger.ts';

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export function onShutdownSignal(logger: Logger, close: () => Promise<void>, exit: (code: number) => void = (c) => process.exit(c)): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now, without waiting for the requests in flight`);
      exit(SIGNAL_EXIT[signal] ?? 1);
      return;
    }
    stopping = true;
    logger.info(`${signal}: shutting down gracefully (send it again to exit at once)`);
    close().then(() => exit(0), (e: unknown) => {
      logger.error({ err: e }, `shutdown failed: ${(e as Error)?.message ?? String(e)}`);
      exit(1);
    });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
