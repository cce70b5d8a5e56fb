/** `pkglog serve`, `pkglog registry add|list`, `pkglog witnesses add|list`, `pkglog backup`, `pkglog fsck`. */
import { parseArgs } from 'node:util';
import { readFileSync, existsSync } from 'node:fs';
import { EXIT, PkglogError, exitCode } from '../core/errors.ts';
import { createLogger, resolveLogLevel } from '../runtime/logger.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';
import { resolveConfig } from './config.ts';
import { databaseFile, registriesFile, startLog, witnessesFile } from './main.ts';
import { backupDatabase } from './backup.ts';
import { runFsck } from './fsck.ts';
import { addRegistry, formatRegistryLine, loadRegistries, parseEcosystems, parseRate } from './registries.ts';
import { parseDecimal } from '../core/encoding.ts';
import { fail } from '../core/errors.ts';
import { addWitness } from './witness-config.ts';

const SERVE_HELP = `Usage: pkglog serve [options]

Runs the log: submissions, sequencer, C2SP tlog-tiles read API. The key is generated on first start.
  --data-dir DIR        data directory (SQLite store, key, registries)   [env PKGLOG_DATA_DIR, default ./data]
  --listen HOST:PORT    address to listen on                             [env PKGLOG_LISTEN, default 127.0.0.1:8080]
  --origin ORIGIN       checkpoint origin (= key name) for a new log     [env PKGLOG_ORIGIN, default pkglog.localhost/<id>]
  --key-file FILE       log signing key file                             [env PKGLOG_KEY_FILE, default DIR/log.key]
  --batch-interval MS   integrate pending submissions at least this often [env PKGLOG_BATCH_INTERVAL_MS, default 100]
  --max-pending N       pending pool size before 503                     [env PKGLOG_MAX_PENDING, default 20000]
  --verify-threads N    worker threads checking signatures (0: main thread) [env PKGLOG_VERIFY_THREADS, default cores-1]
  --witness-quorum K    cosignatures a checkpoint needs to be published  [env PKGLOG_WITNESS_QUORUM, default 0]
                        (0: publish at once and add cosignatures as they arrive)
  --witness-interval MS at least this long between add-checkpoint calls to one witness [default 1000]
  --witness-wait MS     with a quorum, how long a submission waits for a cosigned checkpoint [default 10000]
  --log-level LEVEL     fatal, error, warn, info, debug (one line per request), trace, silent
                        [env PKGLOG_LOG_LEVEL, default info]; JSON lines on stderr, readable on a terminal

SIGTERM or SIGINT: stop accepting (new requests get 503), commit and answer every accepted submission, exit 0;
a second signal exits at once. GET /healthz, /readyz and /metrics: docs/operations.md.
  --headers-timeout MS  a client must send its request headers within this  [env PKGLOG_HEADERS_TIMEOUT_MS, default 10000]
  --request-timeout MS  ... and its whole request within this (else 408)    [env PKGLOG_REQUEST_TIMEOUT_MS, default 30000]
  --max-connections N   open connections in total                          [env PKGLOG_MAX_CONNECTIONS, default 1000]
  --max-connections-per-client N  open connections from one address  [env PKGLOG_MAX_CONNECTIONS_PER_CLIENT, default 100]
  --publish-dir DIR     also write the tlog-tiles layout (checkpoint, tile/…) into DIR after each commit, for a
                        static file server or CDN origin (docs/storage.md, "Publication") [env PKGLOG_PUBLISH_DIR]

Witnesses are configured with 'pkglog witnesses add URL VKEY'.
`;
const REGISTRY_HELP = `Usage: pkglog registry add NAME KEY --ecosystem E[,E…] [--rate PER_SECOND] [--burst N] [--daily N] [--data-dir DIR]
       pkglog registry list [--data-dir DIR]

Registries allowed to submit. KEY is a C2SP vkey (Ed25519) or base64 of a 32-byte Ed25519 public key.
  --ecosystem E[,E…]  the ecosystems the registry may write (required; others get 403 wrong_ecosystem);
                      '*' allows every ecosystem
  --rate PER_SECOND   sustained entries per second (e.g. 50 or 0.5); over it: 429 rate_limited with Retry-After
  --burst N           entries at once above the rate (token bucket size; default the rate rounded up)
  --daily N           entries per UTC day
Each entry of a batch counts. A running log picks up changes within a second; quotas restart full when the log restarts.
`;
const WITNESSES_HELP = `Usage: pkglog witnesses add URL VKEY [--data-dir DIR]
       pkglog witnesses list [--data-dir DIR]

Witnesses the log asks to cosign its checkpoints (C2SP tlog-witness). VKEY is the witness's cosignature/v1 vkey.
Takes effect at the next start of the log.
`;

const BACKUP_HELP = `Usage: pkglog backup --out FILE [--data-dir DIR]

Writes an online, consistent copy of the log's database (DIR/log.sqlite) to FILE while the log keeps running.
FILE must not exist. A restored copy cannot sign until it has caught up with what the log published
(see docs/operations.md, "Backup and restore").
`;

const FSCK_HELP = `Usage: pkglog fsck [--data-dir DIR] [--key-file FILE]

Checks the whole database (DIR/log.sqlite), also while the log runs: recomputes every leaf hash, hash tile and root from
the entries, verifies every checkpoint with the log key (DIR/log.key) and every cosignature of a witness in
witnesses.txt, and checks the index columns, the tree row, the meta rows and the append-only triggers.
Prints one line per problem: table, row, column and byte range. Exit 0: clean; 1: something is wrong.
`;

function out(s: string) {
  process.stdout.write(s);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'serve') return await serve(rest);
    if (command === 'registry') return registry(rest);
    if (command === 'witnesses') return manage(rest, WITNESSES_HELP, 'witnesses');
    if (command === 'backup') return await backup(rest);
    if (command === 'fsck') return fsck(rest);
    process.stderr.write(`pkglog: unknown command ${command}\n`);
    return 2;
  } catch (e) {
    if (e instanceof PkglogError) {
      process.stderr.write(`pkglog ${command}: ${e.message}\n`);
      return exitCode(e);
    }
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`pkglog ${command}: ${(e as Error).message}\n`);
      return EXIT.USAGE;
    }
    throw e;
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string' }, listen: { type: 'string' }, origin: { type: 'string' }, 'key-file': { type: 'string' },
      'batch-interval': { type: 'string' }, 'max-pending': { type: 'string' }, 'witness-quorum': { type: 'string' },
      'witness-interval': { type: 'string' }, 'witness-wait': { type: 'string' }, 'verify-threads': { type: 'string' },
      'headers-timeout': { type: 'string' }, 'request-timeout': { type: 'string' }, 'max-connections': { type: 'string' },
      'max-connections-per-client': { type: 'string' }, 'publish-dir': { type: 'string' }, 'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return out(SERVE_HELP), 0;
  const config = resolveConfig({
    dataDir: values['data-dir'], listen: values.listen, origin: values.origin, keyFile: values['key-file'],
    batchInterval: values['batch-interval'], maxPending: values['max-pending'], witnessQuorum: values['witness-quorum'],
    witnessInterval: values['witness-interval'], witnessWait: values['witness-wait'], verifyThreads: values['verify-threads'],
    headersTimeout: values['headers-timeout'], requestTimeout: values['request-timeout'],
    maxConnections: values['max-connections'], maxConnectionsPerClient: values['max-connections-per-client'],
    publishDir: values['publish-dir'],
  });
  // The guard stops signing for good (database file deleted or replaced, a damaged right edge): it has already refused
  // the batch (503) and logged why; stop listening, let those replies go out, and exit non-zero.
  let server: import('node:http').Server | undefined;
  const onFatal = () => {
    process.exitCode = EXIT.UNSAFE_STATE;
    server?.close();
    setTimeout(() => process.exit(EXIT.UNSAFE_STATE), 250);
  };
  const logger = createLogger({ level: resolveLogLevel(values['log-level']), base: { service: 'pkglog-log' } });
  const log = await startLog(config, logger, { onFatal, processMetrics: true });
  server = log.server;
  // Signals are handled before the listening line is printed: whoever reads it may stop the server at once.
  onShutdownSignal(logger, () => log.close());
  out(`pkglog: origin ${log.origin}\npkglog: vkey ${log.vkey}\npkglog: data ${config.dataDir}\npkglog: listening on ${log.url}\n`);
  logger.info({ origin: log.origin, url: log.url, dataDir: config.dataDir }, `listening on ${log.url}`);
  return 0;
}

async function backup(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'data-dir': { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return out(BACKUP_HELP), 0;
  if (values.out === undefined) {
    process.stderr.write(BACKUP_HELP);
    return 2;
  }
  const { dataDir } = resolveConfig({ dataDir: values['data-dir'] });
  const r = await backupDatabase(databaseFile(dataDir), values.out);
  out(`pkglog backup: tree size ${r.treeSize} written to ${r.out}\n`);
  return 0;
}

function fsck(args: string[]): number {
  const { values } = parseArgs({ args, options: { 'data-dir': { type: 'string' }, 'key-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return out(FSCK_HELP), 0;
  const config = resolveConfig({ dataDir: values['data-dir'], keyFile: values['key-file'] });
  const r = runFsck({ dbPath: databaseFile(config.dataDir), keyFile: config.keyFile, witnessesFile: witnessesFile(config.dataDir) });
  out(r.text);
  return r.ok ? EXIT.OK : EXIT.VERIFY_FAILED;
}

function registry(args: string[]): number {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, options: {
      'data-dir': { type: 'string' }, ecosystem: { type: 'string' }, rate: { type: 'string' }, burst: { type: 'string' },
      daily: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return out(REGISTRY_HELP), 0;
  const { dataDir } = resolveConfig({ dataDir: values['data-dir'] });
  const file = registriesFile(dataDir);
  const [verb, name, key, ...extra] = positionals;
  if (verb === 'list' && name === undefined) {
    for (const r of loadRegistries(file).values()) {
      out(formatRegistryLine(r.name, r.publicKey.toString('base64'), { ...r, ecosystems: r.ecosystems === '*' ? '*' : [...r.ecosystems] }) + '\n');
    }
    return 0;
  }
  if (verb !== 'add' || name === undefined || key === undefined || extra.length > 0) {
    process.stderr.write(REGISTRY_HELP);
    return 2;
  }
  if (values.ecosystem === undefined) fail('malformed', `--ecosystem is required: the ecosystems ${name} may write (e.g. --ecosystem pypi; '*' for all)`);
  addRegistry(file, name, key, {
    ecosystems: parseEcosystems(values.ecosystem),
    ...(values.rate !== undefined ? { rate: parseRate(values.rate) } : {}),
    ...(values.burst !== undefined ? { burst: parseDecimal(values.burst, 'burst', 1_000_000_000) } : {}),
    ...(values.daily !== undefined ? { daily: parseDecimal(values.daily, 'daily', 1_000_000_000) } : {}),
  });
  out(`added registry ${name} to ${file}\n`);
  return 0;
}

function manage(args: string[], help: string, what: 'witnesses'): number {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, options: { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return out(help), 0;
  const { dataDir } = resolveConfig({ dataDir: values['data-dir'] });
  const file = witnessesFile(dataDir);
  const [verb, a, b, ...extra] = positionals;
  if (verb === 'list' && a === undefined) {
    if (existsSync(file)) out(readFileSync(file, 'utf8'));
    return 0;
  }
  if (verb !== 'add' || a === undefined || b === undefined || extra.length > 0) {
    process.stderr.write(help);
    return 2;
  }
  addWitness(file, a, b);
  out(`added witness ${a} to ${file}\n`);
  return 0;
}
