/**
 * `pkglog serve`, `pkglog registry add|list`, `pkglog witnesses add|list`, `pkglog backup`, `pkglog fsck`: their
 * command specs for runtime/cli.ts (one parser, help, one-line failures with the exit codes of docs/errors.md).
 */
import { readFileSync, existsSync } from 'node:fs';
import { EXIT } from '../core/errors.ts';
import { parseDecimal } from '../core/encoding.ts';
import { required, runMain, usage, type Command, type CommandTable, type Parsed } from '../runtime/cli.ts';
import { processIo, type Io } from '../runtime/io.ts';
import { createLogger, resolveLogLevel } from '../runtime/logger.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';
import { resolveConfig, resolveDatabase } from './config.ts';
import { formatMigration, migrateDatabase, migrateDataDir } from './migrate.ts';
import { databaseFile, lockFile, mirrorsFile, registriesFile, startLog, witnessesFile } from './main.ts';
import { addMirror } from './mirror-config.ts';
import { backupDatabase, backupIndexDatabase, indexBackupFile } from './backup.ts';
import { indexDatabaseFile } from './index-service.ts';
import { runFsck } from './fsck.ts';
import { addRegistry, formatRegistryLine, loadRegistries, parseEcosystems, parseRate } from './registries.ts';
import { addWitness } from './witness-config.ts';

const SERVE_HELP = `Usage: pkglog serve [options]

Runs the log: submissions, sequencer, C2SP tlog-tiles read API. The key is generated on first start.
  --data-dir DIR        data directory (SQLite store, key, registries)   [env PKGLOG_DATA_DIR, default ./data]
  --database URL        store everything in this PostgreSQL database (postgres://user@host/db) instead of
                        DIR/log.sqlite; the key, registries and high-water mark stay in DIR [env PKGLOG_DATABASE_URL]
  --listen HOST:PORT    address to listen on                             [env PKGLOG_LISTEN, default 127.0.0.1:8080]
  --origin ORIGIN       checkpoint origin (= key name) for a new log     [env PKGLOG_ORIGIN, default pkglog.localhost/<id>]
  --key-file FILE       log signing key file                             [env PKGLOG_KEY_FILE, default DIR/log.key]
  --mldsa on|off        also sign every checkpoint with the log's ML-DSA-44 key (a subtree/v1 cosignature,
                        tlog-checkpoint)                                 [env PKGLOG_MLDSA, default on]
  --mldsa-key-file FILE its ML-DSA-44 key file, created on first start  [env PKGLOG_MLDSA_KEY_FILE, default DIR/log-mldsa.key]
  --batch-interval MS   integrate pending submissions at least this often [env PKGLOG_BATCH_INTERVAL_MS, default 100]
  --max-pending N       pending pool size before 503                     [env PKGLOG_MAX_PENDING, default 20000]
  --verify-threads N    worker threads checking signatures (0: main thread) [env PKGLOG_VERIFY_THREADS, default cores-1]
  --witness-quorum K    cosignatures a checkpoint needs to be published  [env PKGLOG_WITNESS_QUORUM, default 0]
                        (0: publish at once and add cosignatures as they arrive)
  --witness-interval MS at least this long between add-checkpoint calls to one witness [default 1000]
  --witness-wait MS     with a quorum, how long a submission waits for a cosigned checkpoint [default 10000]
  --headers-timeout MS  a client must send its request headers within this  [env PKGLOG_HEADERS_TIMEOUT_MS, default 10000]
  --request-timeout MS  ... and its whole request within this (else 408)    [env PKGLOG_REQUEST_TIMEOUT_MS, default 30000]
  --max-connections N   open connections in total                          [env PKGLOG_MAX_CONNECTIONS, default 1000]
  --max-connections-per-client N  open connections from one address  [env PKGLOG_MAX_CONNECTIONS_PER_CLIENT, default 100]
  --publish-dir DIR     also write the tlog-tiles layout (checkpoint, tile/…) into DIR after each commit, for a
                        static file server or CDN origin (docs/storage.md, "Publication") [env PKGLOG_PUBLISH_DIR]
  --index               keep the verifiable package index (GET /v1/index/…) and its output log,
                        witnessed like the log (docs/index-format.md, "Server") [env PKGLOG_INDEX=1]
  --publish-s3 s3://BUCKET/PREFIX  the same layout into an S3 bucket [env PKGLOG_PUBLISH_S3]; credentials and
                        region: the AWS SDK's standard variables (AWS_ACCESS_KEY_ID, AWS_REGION, …)
  --s3-endpoint URL     an S3-compatible server (path-style) instead of AWS [env PKGLOG_S3_ENDPOINT]
  --lease-ttl MS        several front ends: the sequencer lease's lifetime (takeover after a crash within ~1.25×)
                        [env PKGLOG_LEASE_TTL_MS, default 3000]
  --commit-wait MS      several front ends: how long a submission waits to be committed before its 503
                        [env PKGLOG_COMMIT_WAIT_MS, default 10000]
  --log-level LEVEL     fatal, error, warn, info, debug (one line per request), trace, silent
                        [env PKGLOG_LOG_LEVEL, default info]; JSON lines on stderr, readable on a terminal

SIGTERM or SIGINT: stop accepting (new requests get 503), commit and answer every accepted submission, exit 0;
a second signal exits at once. GET /healthz, /readyz and /metrics: docs/operations.md.
Witnesses are configured with 'pkglog witnesses add URL VKEY'.
Exit codes: 0 stopped by SIGTERM/SIGINT, 1 cannot listen (address in use), 2 usage or unreadable files,
9 unsafe state (behind what it published), 10 disk full. See docs/errors.md.
`;
const REGISTRY_HELP = `Usage: pkglog registry add NAME KEY --ecosystem E[,E…] [--rate PER_SECOND] [--burst N] [--daily N] [--data-dir DIR]
       pkglog registry list [--data-dir DIR]

Registries allowed to submit. KEY is a C2SP vkey (Ed25519) or base64 of a 32-byte Ed25519 public key.
  --ecosystem E[,E…]  the ecosystems the registry may write (required; others get 403 wrong_ecosystem);
                      '*' allows every ecosystem
  --rate PER_SECOND   sustained entries per second (e.g. 50 or 0.5); over it: 429 rate_limited with Retry-After
  --burst N           entries at once above the rate (token bucket size; default the rate rounded up)
  --daily N           entries per UTC day
  --data-dir DIR      the log's data directory [env PKGLOG_DATA_DIR, default ./data]
Each entry of a batch counts. A running log picks up changes within a second; quotas restart full when the log restarts.
`;
const WITNESSES_HELP = `Usage: pkglog witnesses add URL VKEY [--data-dir DIR]
       pkglog witnesses list [--data-dir DIR]

Witnesses the log asks to cosign its checkpoints (C2SP tlog-witness). VKEY is the witness's cosignature/v1 or
ML-DSA-44 vkey; add both (two 'add' with the same URL) to keep both of its cosignatures: it counts once.
Takes effect at the next start of the log.
`;

const MIRRORS_HELP = `Usage: pkglog mirrors add URL VKEY [--data-dir DIR]
       pkglog mirrors list [--data-dir DIR]

Mirrors the log pushes its published checkpoint and entries to (C2SP tlog-mirror add-checkpoint and add-entries,
docs/mirror.md); their cosignatures are published with the witnesses'. URL is the mirror's submission prefix, VKEY
its cosigner vkey. Takes effect at the next start of the log.
`;

const BACKUP_HELP = `Usage: pkglog backup --out FILE [--data-dir DIR]

Writes an online, consistent copy of the log's database (DIR/log.sqlite) to FILE while the log keeps running,
and, when the log keeps the package index (--index), of DIR/index.sqlite to FILE.index.sqlite.
FILE must not exist. A restored copy cannot sign until it has caught up with what the log published
(see docs/operations.md, "Backup and restore").
`;

const FSCK_HELP = `Usage: pkglog fsck [--data-dir DIR] [--key-file FILE]

Checks the whole database (DIR/log.sqlite), also while the log runs: recomputes every leaf hash, hash tile and root from
the entries, verifies every checkpoint with the log key (DIR/log.key; and DIR/log-mldsa.key when there) and every
cosignature of a witness in witnesses.txt, and checks the index columns, the tree row, the meta rows and the append-only triggers.
Prints one line per problem: table, row, column and byte range. Exit 0: clean; 1: something is wrong.
`;

const MIGRATE_HELP = `Usage: pkglog migrate [--database URL | --data-dir DIR]

Applies the store's pending schema migrations (numbered steps recorded in its schema_migrations table; see
docs/storage.md, "Migrations") and prints the version. Running it again does nothing. \`pkglog serve\` applies them
at start-up too; run this first to upgrade ahead of a deployment or to check the version.
  --database URL  a PostgreSQL database (postgres://…) [env PKGLOG_DATABASE_URL]; steps run under an advisory lock,
                  so it is safe while logs are running on that database
  --data-dir DIR  the SQLite store DIR/log.sqlite [env PKGLOG_DATA_DIR, default ./data]; takes the data directory's
                  lock, so it refuses while the log runs (the log migrates at its own start)
Exit 0: up to date. A newer schema than this pkglog knows is refused (exit 1); an unreachable server or a running log
on the data dir: exit 7.
`;

const SERVE_OPTIONS = [
  'data-dir', 'database', 'listen', 'origin', 'key-file', 'mldsa', 'mldsa-key-file', 'batch-interval', 'max-pending', 'verify-threads', 'witness-quorum',
  'witness-interval', 'witness-wait', 'headers-timeout', 'request-timeout', 'max-connections', 'max-connections-per-client',
  'publish-dir', 'publish-s3', 's3-endpoint', 'log-level', 'lease-ttl', 'commit-wait',
] as const;

/** The environment the configuration falls back on is the command's (io.env), not necessarily the process's. */
function config(p: Parsed, io: Io) {
  const v = p.str;
  return resolveConfig({
    dataDir: v['data-dir'], listen: v.listen, origin: v.origin, keyFile: v['key-file'], mldsa: v.mldsa, mldsaKeyFile: v['mldsa-key-file'],
    batchInterval: v['batch-interval'], maxPending: v['max-pending'], witnessQuorum: v['witness-quorum'],
    witnessInterval: v['witness-interval'], witnessWait: v['witness-wait'], verifyThreads: v['verify-threads'],
    headersTimeout: v['headers-timeout'], requestTimeout: v['request-timeout'],
    maxConnections: v['max-connections'], maxConnectionsPerClient: v['max-connections-per-client'],
    publishDir: v['publish-dir'], publishS3: v['publish-s3'], s3Endpoint: v['s3-endpoint'], database: v.database, leaseTtl: v['lease-ttl'], commitWait: v['commit-wait'], ...(p.bool.index ? { index: true } : {}),
  }, io.env);
}

/** --log-level (or PKGLOG_LOG_LEVEL); a bad level is a usage error. */
export function logLevel(p: Parsed, io: Io) {
  try {
    return resolveLogLevel(p.str['log-level'], io.env);
  } catch (e) {
    return usage((e as Error).message);
  }
}

const serve: Command = {
  spec: { usage: SERVE_HELP, flags: { ...Object.fromEntries(SERVE_OPTIONS.map((o) => [o, 'string'])), index: 'boolean' }, args: [] },
  async run(p, io) {
    const cfg = config(p, io);
    // The guard stops signing for good (database file deleted or replaced, a damaged right edge): it has already
    // refused the batch (503) and logged why; stop listening, let those replies go out, and exit non-zero.
    let server: import('node:http').Server | undefined;
    const onFatal = () => {
      process.exitCode = EXIT.UNSAFE_STATE;
      server?.close();
      setTimeout(() => process.exit(EXIT.UNSAFE_STATE), 250);
    };
    const logger = createLogger({ level: logLevel(p, io), base: { service: 'pkglog-log' } });
    const log = await startLog(cfg, logger, { onFatal, processMetrics: true });
    server = log.server;
    // Signals are handled before the listening line is printed: whoever reads it may stop the server at once.
    onShutdownSignal(logger, () => log.close());
    io.stdout(`pkglog: origin ${log.origin}\npkglog: vkey ${log.vkey}\n${log.vkeys.slice(1).map((k) => `pkglog: also-vkey ${k}\n`).join('')}pkglog: data ${cfg.dataDir}\npkglog: listening on ${log.url}\n`);
    logger.info({ origin: log.origin, url: log.url, dataDir: cfg.dataDir }, `listening on ${log.url}`);
    return EXIT.OK;
  },
};

const dataDirOf = (p: Parsed, io: Io) => resolveConfig({ dataDir: p.str['data-dir'] }, io.env).dataDir;

const registry = {
  usage: REGISTRY_HELP,
  subcommands: {
    add: {
      spec: { usage: REGISTRY_HELP, flags: { 'data-dir': 'string', ecosystem: 'string', rate: 'string', burst: 'string', daily: 'string' }, args: ['NAME', 'KEY'] },
      run(p, io) {
        const [name, key] = p.positionals as [string, string];
        if (p.str.ecosystem === undefined) usage(`option '--ecosystem' is required: the ecosystems ${name} may write (e.g. --ecosystem pypi; '*' for all)`);
        const file = registriesFile(dataDirOf(p, io));
        addRegistry(file, name, key, {
          ecosystems: parseEcosystems(p.str.ecosystem),
          ...(p.str.rate !== undefined ? { rate: parseRate(p.str.rate) } : {}),
          ...(p.str.burst !== undefined ? { burst: parseDecimal(p.str.burst, 'burst', 1_000_000_000) } : {}),
          ...(p.str.daily !== undefined ? { daily: parseDecimal(p.str.daily, 'daily', 1_000_000_000) } : {}),
        });
        io.stdout(`added registry ${name} to ${file}\n`);
        return EXIT.OK;
      },
    },
    list: {
      spec: { usage: REGISTRY_HELP, flags: { 'data-dir': 'string' }, args: [] },
      run(p, io) {
        for (const r of loadRegistries(registriesFile(dataDirOf(p, io))).values()) {
          io.stdout(formatRegistryLine(r.name, r.publicKey.toString('base64'), { ...r, ecosystems: r.ecosystems === '*' ? '*' : [...r.ecosystems] }) + '\n');
        }
        return EXIT.OK;
      },
    },
  },
} satisfies CommandTable[string];

const witnesses = {
  usage: WITNESSES_HELP,
  subcommands: {
    add: {
      spec: { usage: WITNESSES_HELP, flags: { 'data-dir': 'string' }, args: ['URL', 'VKEY'] },
      run(p, io) {
        const [url, vkey] = p.positionals as [string, string];
        const file = witnessesFile(dataDirOf(p, io));
        addWitness(file, url, vkey);
        io.stdout(`added witness ${url} to ${file}\n`);
        return EXIT.OK;
      },
    },
    list: {
      spec: { usage: WITNESSES_HELP, flags: { 'data-dir': 'string' }, args: [] },
      run(p, io) {
        const file = witnessesFile(dataDirOf(p, io));
        if (existsSync(file)) io.stdout(readFileSync(file, 'utf8'));
        return EXIT.OK;
      },
    },
  },
} satisfies CommandTable[string];

const mirrors = {
  usage: MIRRORS_HELP,
  subcommands: {
    add: {
      spec: { usage: MIRRORS_HELP, flags: { 'data-dir': 'string' }, args: ['URL', 'VKEY'] },
      run(p, io) {
        const [url, vkey] = p.positionals as [string, string];
        const file = mirrorsFile(dataDirOf(p, io));
        addMirror(file, url, vkey);
        io.stdout(`added mirror ${url} to ${file}\n`);
        return EXIT.OK;
      },
    },
    list: {
      spec: { usage: MIRRORS_HELP, flags: { 'data-dir': 'string' }, args: [] },
      run(p, io) {
        const file = mirrorsFile(dataDirOf(p, io));
        if (existsSync(file)) io.stdout(readFileSync(file, 'utf8'));
        return EXIT.OK;
      },
    },
  },
} satisfies CommandTable[string];

const backup: Command = {
  spec: { usage: BACKUP_HELP, flags: { 'data-dir': 'string', out: 'string' }, args: [] },
  async run(p, io) {
    const out = required(p, 'out');
    const dir = dataDirOf(p, io);
    const r = await backupDatabase(databaseFile(dir), out);
    io.stdout(`pkglog backup: tree size ${r.treeSize} written to ${r.out}\n`);
    if (existsSync(indexDatabaseFile(dir))) {
      const i = await backupIndexDatabase(indexDatabaseFile(dir), indexBackupFile(out));
      io.stdout(`pkglog backup: the package index (${i.revisions} revisions) written to ${i.out}\n`);
    }
    return EXIT.OK;
  },
};

const fsck: Command = {
  spec: { usage: FSCK_HELP, flags: { 'data-dir': 'string', 'key-file': 'string' }, args: [] },
  run(p, io) {
    const cfg = resolveConfig({ dataDir: p.str['data-dir'], keyFile: p.str['key-file'] }, io.env);
    const r = runFsck({ dbPath: databaseFile(cfg.dataDir), keyFile: cfg.keyFile, witnessesFile: witnessesFile(cfg.dataDir), ...(cfg.mldsaKeyFile ? { mldsaKeyFile: cfg.mldsaKeyFile } : {}) });
    io.stdout(r.text);
    return r.ok ? EXIT.OK : EXIT.VERIFY_FAILED;
  },
};

const migrate: Command = {
  spec: { usage: MIGRATE_HELP, flags: { 'data-dir': 'string', database: 'string' }, args: [] },
  async run(p, io) {
    const database = resolveDatabase(p.str.database, io.env);
    const r = database === undefined
      ? migrateDataDir(lockFile(dataDirOf(p, io)), databaseFile(dataDirOf(p, io)))
      : await migrateDatabase(database);
    io.stdout(formatMigration(r) + '\n');
    return EXIT.OK;
  },
};

export const COMMANDS: CommandTable = { serve, registry, witnesses, mirrors, backup, fsck, migrate };

export function main(argv: string[], io: Io = processIo): Promise<number> {
  return runMain(argv, io, COMMANDS);
}
