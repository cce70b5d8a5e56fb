/** `pkglog mirror [add-log]`: command specs for runtime/cli.ts (one parser, help, one-line failures, docs/errors.md exit codes). */
import { EXIT } from '../core/errors.ts';
import { formatVerifierKey } from '../core/note.ts';
import { LOG_KEY_TYPES } from '../core/policy.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
import { runMain, usage, type Command, type CommandTable, type Parsed } from '../runtime/cli.ts';
import { processIo, type Io } from '../runtime/io.ts';
import { createLogger, resolveLogLevel } from '../runtime/logger.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';
import { normalizeBaseURL } from '../runtime/http.ts';
import { MirrorStore, MIN_INDEX_MULTIPLE } from './store.ts';
import { startMirror, DEFAULT_LIMITS, DEFAULT_POLL_INTERVAL_MS } from './main.ts';

const DEFAULT_DATA_DIR = 'pkglog-mirror-data';
const DEFAULT_LISTEN = '127.0.0.1:7390';

const MIRROR_USAGE = `Usage: pkglog mirror [options]            run a mirror (C2SP tlog-mirror)
       pkglog mirror add-log ORIGIN LOG_VKEY LOG_URL [--min-index N] [--no-pull] [--data-dir D]

Options (environment variable in parentheses):
  --data-dir D          state directory (PKGLOG_MIRROR_DATA_DIR; default ./${DEFAULT_DATA_DIR})
  --listen HOST:PORT    listen address (PKGLOG_MIRROR_LISTEN; default ${DEFAULT_LISTEN})
  --name NAME           mirror key name, used when the key is created (PKGLOG_MIRROR_NAME)
  --key-file F          Ed25519 cosigner key file, created 0600 on first start (PKGLOG_MIRROR_KEY_FILE; default D/mirror.key)
  --mldsa-key-file F    ML-DSA-44 key file, same name (PKGLOG_MIRROR_MLDSA_KEY_FILE; default D/mirror-mldsa.key)
  --cosign LIST         cosignatures to make: ed25519, ml-dsa-44 or both, comma-separated (PKGLOG_MIRROR_COSIGN;
                        default ed25519)
  --poll-interval MS    how often to pull logs in pull mode (PKGLOG_MIRROR_POLL_INTERVAL; default ${DEFAULT_POLL_INTERVAL_MS})
  --request-timeout MS  a whole request must arrive within this (default ${DEFAULT_LIMITS.requestTimeoutMs})
  --max-connections N   open connections in total (default ${DEFAULT_LIMITS.maxConnections})
  --log-level LEVEL     fatal, error, warn, info, debug, trace, silent (env PKGLOG_LOG_LEVEL, default info)

Endpoints (docs/mirror.md): POST /add-checkpoint, POST /add-entries, POST /sign-subtree (with an ML-DSA-44 key);
each log's copy under /<hex SHA-256 of its origin>/ (checkpoint with the mirror's cosignature, tile/…,
tile/entries/…); GET /vkey, /vkeys, /healthz, /readyz, /metrics. SIGTERM or SIGINT: requests in flight finish, then it exits 0.

add-log: mirror the log ORIGIN signed by LOG_VKEY (its vkey, Ed25519 or ML-DSA-44) whose tlog-tiles are at LOG_URL.
  The mirror pulls it (checkpoint, then entry bundles with subtree consistency proofs from its tiles) unless
  --no-pull is given (the log pushes with add-checkpoint and add-entries). --min-index N (default 0, a multiple of
  256) keeps the copy from entry N on, pruned below it as C2SP tlog-tiles describes: tlog-mirror allows N > 0 only
  under a retention policy of the log's ecosystem, and clients must not count the mirror for entries below N.
  A log cannot be removed, and re-adding an origin with a different key is refused.

Exit codes: 0 done, 1 cannot listen or already configured differently, 2 usage or unreadable files, 10 disk full.
`;

const dataDirOf = (p: Parsed, io: Io) => p.str['data-dir'] ?? io.env.PKGLOG_MIRROR_DATA_DIR ?? DEFAULT_DATA_DIR;

function whole(v: string | undefined, what: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min) usage(`${what} must be a whole number ≥ ${min}`);
  return Number(v);
}

const RUN_OPTIONS = ['data-dir', 'listen', 'name', 'key-file', 'mldsa-key-file', 'cosign', 'poll-interval', 'request-timeout', 'max-connections', 'log-level'] as const;

const run: Command = {
  spec: { usage: MIRROR_USAGE, flags: Object.fromEntries(RUN_OPTIONS.map((o) => [o, 'string'])), args: [] },
  async run(p, io) {
    const v = p.str;
    const env = io.env;
    const cosignList = (v.cosign ?? env.PKGLOG_MIRROR_COSIGN ?? 'ed25519').split(',').map((s) => s.trim());
    for (const c of cosignList) if (c !== 'ed25519' && c !== 'ml-dsa-44') usage(`--cosign: unknown cosignature ${JSON.stringify(c)} (use ed25519, ml-dsa-44)`);
    const cosign = { ed25519: cosignList.includes('ed25519'), mldsa: cosignList.includes('ml-dsa-44') };
    if (!cosign.ed25519 && !cosign.mldsa) usage('--cosign: at least one cosignature type');
    let level;
    try {
      level = resolveLogLevel(v['log-level'], env);
    } catch (e) {
      usage((e as Error).message);
    }
    const logger = createLogger({ level, base: { service: 'pkglog-mirror' } });
    const name = v.name ?? env.PKGLOG_MIRROR_NAME;
    const keyFile = v['key-file'] ?? env.PKGLOG_MIRROR_KEY_FILE;
    const mldsaKeyFile = v['mldsa-key-file'] ?? env.PKGLOG_MIRROR_MLDSA_KEY_FILE;
    const poll = whole(v['poll-interval'] ?? env.PKGLOG_MIRROR_POLL_INTERVAL, '--poll-interval', 10);
    const requestTimeout = whole(v['request-timeout'], '--request-timeout', 100);
    const maxConnections = whole(v['max-connections'], '--max-connections', 1);
    const running = await startMirror({
      logger,
      processMetrics: true,
      dataDir: dataDirOf(p, io),
      listen: v.listen ?? env.PKGLOG_MIRROR_LISTEN ?? DEFAULT_LISTEN,
      cosign,
      ...(name !== undefined ? { name } : {}),
      ...(keyFile !== undefined ? { keyFile } : {}),
      ...(mldsaKeyFile !== undefined ? { mldsaKeyFile } : {}),
      ...(poll !== undefined ? { pollIntervalMs: poll } : {}),
      limits: { ...(requestTimeout !== undefined ? { requestTimeoutMs: requestTimeout } : {}), ...(maxConnections !== undefined ? { maxConnections } : {}) },
    });
    const stopped = new Promise<number>((resolve) => {
      onShutdownSignal(logger, () => running.close(), (code) => (code === 0 ? resolve(EXIT.OK) : process.exit(code)));
    });
    io.stdout(`pkglog mirror: vkey ${running.vkey}\n`);
    for (const k of running.vkeys.slice(1)) io.stdout(`pkglog mirror: also-vkey ${k}\n`);
    io.stdout(`pkglog mirror: listening on ${running.url}\n`);
    logger.info({ url: running.url, dataDir: dataDirOf(p, io) }, `listening on ${running.url}`);
    return stopped;
  },
};

const addLog: Command = {
  spec: { usage: MIRROR_USAGE, flags: { 'data-dir': 'string', 'min-index': 'string', 'no-pull': 'boolean' }, args: ['ORIGIN', 'LOG_VKEY', 'LOG_URL'] },
  run(p, io) {
    const [origin, given, url] = p.positionals as [string, string, string];
    if (!/^https?:\/\/\S+$/.test(url)) usage('LOG_URL must be an http(s) URL');
    const minIndex = whole(p.str['min-index'], '--min-index', 0) ?? 0;
    if (minIndex % MIN_INDEX_MULTIPLE !== 0) usage(`--min-index must be a multiple of ${MIN_INDEX_MULTIPLE} (entry packages and bundles start at multiples of ${MIN_INDEX_MULTIPLE})`);
    const v = parsePublicKeyVerifier(given, { type: LOG_KEY_TYPES, what: 'LOG_VKEY', name: origin });
    const vkey = formatVerifierKey(v.name, v.type, v.publicKey);
    if (v.name !== origin) io.stderr(`pkglog mirror add-log: warning: the key name ${JSON.stringify(v.name)} differs from the origin ${JSON.stringify(origin)}\n`);
    const store = MirrorStore.open(dataDirOf(p, io));
    try {
      const log = store.addLog(origin, vkey, normalizeBaseURL(url), !p.bool['no-pull'], minIndex, Math.floor(io.now() / 1000));
      io.stdout(`pkglog mirror: mirroring ${log.origin} from ${log.url}${log.pull ? ' (pull mode)' : ' (the log pushes)'}\n`);
      io.stdout(`pkglog mirror: monitoring path /${log.originHash}/\n`);
      if (log.minIndex > 0) io.stdout(`pkglog mirror: keeping the log from entry ${log.minIndex.toLocaleString('en')} on (pruned below it; clients must not count this mirror for earlier entries)\n`);
    } finally {
      store.close();
    }
    return EXIT.OK;
  },
};

export const COMMANDS: CommandTable = {
  mirror: { usage: MIRROR_USAGE, default: run, subcommands: { 'add-log': addLog } },
};

export function main(argv: string[], io: Io = processIo): Promise<number> {
  return runMain(argv, io, COMMANDS);
}
