/**
 * The one logger of every pkglog process (log, witness, clients): pino, one JSON object per line on stderr, or
 * pino-pretty's human-readable lines when stderr is a terminal. stdout is kept for what a command prints as its
 * result (the start-up lines `pkglog: origin …`, `pkglog: listening on …` of serve and witness, a client's output).
 *
 * Levels: fatal, error, warn, info (default), debug (adds one access line per HTTP request), trace, silent.
 * `--log-level LEVEL` on `pkglog serve` and `pkglog witness`, else PKGLOG_LOG_LEVEL; PKGLOG_LOG_FORMAT=json|pretty
 * forces the format. Every line carries `component` (log, sequencer, witnessing, witness, http, …) and, while
 * serving a request, `reqId` (see requestId below). docs/operations.md, "Logs".
 *
 * Nothing secret is logged: no call site passes key material, and the field names below are censored in case one
 * ever does (test/e2e/operations.test.ts greps every line and every response for the key files' bytes).
 */
import { randomUUID } from 'node:crypto';
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';
import pinoPretty from 'pino-pretty';

export type Logger = PinoLogger;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'json' | 'pretty';

/** Field names that could hold key material: their values are replaced by "[redacted]" wherever they appear. */
const REDACT = ['seed', 'privateKey', 'private_key', 'secret', 'signer', 'keyFileContents', 'password', 'authorization']
  .flatMap((k) => [k, `*.${k}`]);

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go (tests pass a stream and read it back); default stderr (fd 2), written synchronously. */
  stream?: DestinationStream;
  /** Default: pretty when the output is stderr and stderr is a terminal, else json. */
  format?: LogFormat;
  /** Fields on every line, e.g. { component: 'log' }. */
  base?: Record<string, unknown>;
}

/** Is this a log level name? */
export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/**
 * The level from the --log-level flag, else the environment (PKGLOG_LOG_LEVEL), else info. Throws a plain Error
 * naming the choices for anything else (the command layer reports it as a usage error).
 */
export function resolveLogLevel(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const given = flag ?? env.PKGLOG_LOG_LEVEL;
  if (given === undefined || given === '') return 'info';
  const v = given.trim().toLowerCase();
  if (!isLogLevel(v)) {
    throw Object.assign(new Error(`log level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(given)}`), { code: 'ERR_PARSE_ARGS_LOG_LEVEL' });
  }
  return v;
}

function resolveFormat(opts: LoggerOptions, env: NodeJS.ProcessEnv): LogFormat {
  if (opts.format !== undefined) return opts.format;
  const forced = env.PKGLOG_LOG_FORMAT?.trim().toLowerCase();
  if (forced === 'json' || forced === 'pretty') return forced;
  return opts.stream === undefined && process.stderr.isTTY ? 'pretty' : 'json';
}

/** A new root logger. Synchronous writes: a line logged before exit (or before a crash) is on disk. */
export function createLogger(opts: LoggerOptions = {}, env: NodeJS.ProcessEnv = process.env): Logger {
  const format = resolveFormat(opts, env);
  const options: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    base: { pid: process.pid, ...opts.base },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Levels by name ("level":"info"), as most log shippers expect.
    formatters: { level: (label) => ({ level: label }) },
  };
  let stream: DestinationStream;
  if (format === 'pretty') {
    stream = pinoPretty({
      destination: opts.stream ?? 2,
      sync: true,
      colorize: opts.stream === undefined && process.stderr.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      messageFormat: '{if component}{component}: {end}{msg}',
      singleLine: true,
    });
  } else {
    stream = opts.stream ?? pino.destination({ dest: 2, sync: true });
  }
  return pino(options, stream);
}

/**
 * A logger whose lines go to a `(msg) => void` callback (in-process tests and embedders that collect messages): the
 * callback gets each line's message; one logged at error or warn level without the `error: ` / `warning: ` prefix
 * gets it (as the old callbacks' messages had).
 */
export function callbackLogger(fn: (msg: string) => void, level: LogLevel = 'info'): Logger {
  const stream: DestinationStream = {
    write(line: string) {
      try {
        const o = JSON.parse(line) as { level?: string; msg?: string };
        const msg = String(o.msg ?? '');
        const prefix = o.level === 'error' || o.level === 'fatal' ? 'error: ' : o.level === 'warn' ? 'warning: ' : '';
        fn(prefix !== '' && !msg.startsWith(prefix) ? prefix + msg : msg);
      } catch {
        fn(line.trimEnd());
      }
    },
  };
  return createLogger({ level, stream, format: 'json' });
}

/** A logger that drops everything (in-process tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Adapts a logger to the `(msg: string) => void` callbacks some components still take. The message is kept as the call
 * site wrote it; one starting with `error: ` (the alarm prefix those components use) is logged at error level, one
 * starting with `warning: ` at warn, others at `level`.
 */
export function lineLog(logger: Logger, level: 'info' | 'warn' | 'error' | 'debug' = 'info'): (msg: string) => void {
  return (msg: string) => {
    if (msg.startsWith('error: ')) logger.error(msg);
    else if (msg.startsWith('warning: ')) logger.warn(msg);
    else logger[level](msg);
  };
}

/** Adapts a logger to the `(level, msg) => void` callbacks (the witness's components). */
export function levelLog(logger: Logger): (level: 'info' | 'warn' | 'error', msg: string) => void {
  return (level, msg) => logger[level](msg);
}

/** An incoming X-Request-Id is used when it is this (printable, bounded); otherwise a new one is generated. */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The request id for a request: the client's X-Request-Id when well-formed, else a fresh random UUID. */
export function requestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** One log line for an error: its name, code and message, never a stack trace. */
export function errorLine(e: unknown): string {
  const err = e as { name?: unknown; code?: unknown; message?: unknown };
  const name = typeof err?.name === 'string' ? err.name : 'Error';
  const code = typeof err?.code === 'string' ? ` ${err.code}` : '';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return `${name}${code}: ${message}`.replace(/[\r\n]+/g, ' ');
}
