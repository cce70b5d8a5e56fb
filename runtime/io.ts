/**
 * What a command may touch of its process: its two output streams, its environment and the clock. Every command is
 * `main(argv, io)`, so tests run it in-process with a captured Io (test/support/cli.ts) and only a few smoke tests
 * need a real process.
 */
export interface Io {
  /** Writes to standard output (text as given: callers end their lines with "\n"). */
  stdout(s: string): void;
  /** Writes to standard error. */
  stderr(s: string): void;
  env: NodeJS.ProcessEnv;
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The real process's streams, environment and clock. */
export const processIo: Io = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  env: process.env,
  now: () => Date.now(),
};
