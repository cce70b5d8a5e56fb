/**
 * `pkglog witness [add-log|add-peer]` and `pkglog evidence verify`: their command specs for runtime/cli.ts (one parser,
 * help, one-line failures with the exit codes of docs/errors.md).
 */
import { readFileSync } from 'node:fs';
import { EXIT, fail, isPkglogError } from '../core/errors.ts';
import { formatVerifierKey, SIG_TYPE_COSIGNATURE_V1 } from '../core/note.ts';
import { LOG_KEY_TYPES } from '../core/policy.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
import { parseEvidence, verifyEvidence } from '../core/evidence.ts';
import { parseIndexEvidence, verifyIndexEvidence, INDEX_EVIDENCE_FORMAT } from '../core/index-evidence.ts';

/** Index mismatch evidence (pkglog-index-evidence/v1) rather than fork evidence: by its format field. */
function isIndexEvidence(text: Buffer): boolean {
  const head = text.subarray(0, 200).toString('utf8');
  return /^\s*\{\s*"format"\s*:\s*"([^"]*)"/.exec(head)?.[1] === INDEX_EVIDENCE_FORMAT;
}
import { reason, required, runMain, usage, type Command, type CommandTable, type Parsed } from '../runtime/cli.ts';
import { processIo, type Io } from '../runtime/io.ts';
import { createLogger, resolveLogLevel } from '../runtime/logger.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';
import { WitnessStore } from './store.ts';
import { startWitness, DEFAULT_GOSSIP_INTERVAL_MS, DEFAULT_LIMITS, DEFAULT_POLL_INTERVAL_MS, type HttpLimits } from './main.ts';

const DEFAULT_DATA_DIR = 'pkglog-witness-data';
const DEFAULT_LISTEN = '127.0.0.1:7380';

const WITNESS_USAGE = `Usage: pkglog witness [options]            run a witness (C2SP tlog-witness)
       pkglog witness add-log ORIGIN LOG_VKEY [LOG_URL] [--data-dir D]
       pkglog witness add-peer URL WITNESS_VKEY [--data-dir D]

Options (environment variable in parentheses):
  --data-dir D          state directory (PKGLOG_WITNESS_DATA_DIR; default ./${DEFAULT_DATA_DIR})
  --listen HOST:PORT    listen address (PKGLOG_WITNESS_LISTEN; default ${DEFAULT_LISTEN})
  --name NAME           witness key name, used when the key is created (PKGLOG_WITNESS_NAME)
  --key-file F          cosigner key file, created 0600 on first start (PKGLOG_WITNESS_KEY_FILE; default D/witness.key)
  --mldsa-key-file F    ML-DSA-44 key file, same name, created 0600 on first start (PKGLOG_WITNESS_MLDSA_KEY_FILE;
                        default D/witness-mldsa.key)
  --cosign LIST         cosignatures to return: ed25519, ml-dsa-44 or both, comma-separated (PKGLOG_WITNESS_COSIGN;
                        default ed25519,ml-dsa-44: both). GET /vkey serves the Ed25519 key, GET /vkeys every key in use
  --gossip-interval MS  how often to compare checkpoints with peers (default ${DEFAULT_GOSSIP_INTERVAL_MS})
  --poll-interval MS    how often to poll logs added with a URL (default ${DEFAULT_POLL_INTERVAL_MS})
  --headers-timeout MS  a request's headers must arrive within this, else 408 (default ${DEFAULT_LIMITS.headersTimeoutMs})
  --request-timeout MS  a whole request must arrive within this, else 408 (default ${DEFAULT_LIMITS.requestTimeoutMs})
  --max-connections N   open connections in total (default ${DEFAULT_LIMITS.maxConnections})
  --max-connections-per-client N   open connections per IP address (default ${DEFAULT_LIMITS.maxConnectionsPerClient})
  --gossip-rate R       POST /v1/gossip requests per second per client (default ${DEFAULT_LIMITS.gossipRate})
  --gossip-burst N      POST /v1/gossip requests per client at once (default ${DEFAULT_LIMITS.gossipBurst})
  --log-level LEVEL     fatal, error, warn, info, debug (one line per request), trace, silent
                        (env PKGLOG_LOG_LEVEL, default info); JSON lines on stderr, readable on a terminal

SIGTERM or SIGINT: new requests get 503, those in flight finish, then it exits 0 (a second signal: at once).
GET /healthz, /readyz, /metrics: docs/operations.md.

Only one witness runs on a data dir (it holds D/witness.lock). The key file must be readable by its owner only
(mode 0600): a key file that group or others can read is refused.

add-log: witness the log ORIGIN signed by LOG_VKEY (its vkey as serve/keygen print it — Ed25519 or ML-DSA-44 —, or
  its base64 Ed25519 key).
  With LOG_URL the witness also polls the log's /checkpoint and builds consistency proofs from its tiles (pull mode).
  A log cannot be removed, and re-adding an origin with a different key is refused: that could cosign a split view.
add-peer: exchange cosigned checkpoints with the witness at URL (cosigner key WITNESS_VKEY) to detect forks.

Exit codes: 0 done (witness: stopped by SIGTERM/SIGINT), 1 cannot listen (address in use) or already configured
differently, 2 usage or unreadable files, 10 disk full. See docs/errors.md.
`;

const EVIDENCE_USAGE = `Usage: pkglog evidence verify FILE --log-vkey VKEY

Checks fork evidence (docs/evidence-format.md): both checkpoints must be validly signed by the log key VKEY and
provably contradict each other. Index mismatch evidence (pkglog-index-evidence/v1, from pkglog audit --index) is
checked against the index's output log key VKEY: its revision's map root is not the map of the entries it names.
Exit status 0: valid evidence; 1: invalid evidence; 2: usage error or unreadable FILE.
`;

function interval(v: string | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 10) usage(`${what} must be a number of milliseconds ≥ 10`);
  return n;
}

function positive(v: string | undefined, what: string, opts: { min?: number; fraction?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const ok = opts.fraction ? /^\d+(\.\d+)?$/.test(v) && n > 0 : /^\d+$/.test(v) && n >= (opts.min ?? 1);
  if (!ok || !Number.isFinite(n)) usage(`${what} must be a ${opts.fraction ? 'positive number' : `whole number ≥ ${opts.min ?? 1}`}`);
  return n;
}

const dataDirOf = (p: Parsed, io: Io) => p.str['data-dir'] ?? io.env.PKGLOG_WITNESS_DATA_DIR ?? DEFAULT_DATA_DIR;
const nowSeconds = (io: Io) => Math.floor(io.now() / 1000);

const RUN_OPTIONS = [
  'data-dir', 'listen', 'name', 'key-file', 'mldsa-key-file', 'cosign', 'gossip-interval', 'poll-interval',
  'headers-timeout', 'request-timeout', 'max-connections', 'max-connections-per-client', 'gossip-rate', 'gossip-burst',
  'log-level',
] as const;

const run: Command = {
  spec: { usage: WITNESS_USAGE, flags: Object.fromEntries(RUN_OPTIONS.map((o) => [o, 'string'])), args: [] },
  async run(p, io) {
    const v = p.str;
    const keyFile = v['key-file'] ?? io.env.PKGLOG_WITNESS_KEY_FILE;
    const name = v.name ?? io.env.PKGLOG_WITNESS_NAME;
    const mldsaKeyFile = v['mldsa-key-file'] ?? io.env.PKGLOG_WITNESS_MLDSA_KEY_FILE;
    const cosignList = (v.cosign ?? io.env.PKGLOG_WITNESS_COSIGN ?? 'ed25519,ml-dsa-44').split(',').map((s) => s.trim());
    for (const c of cosignList) if (c !== 'ed25519' && c !== 'ml-dsa-44') usage(`--cosign: unknown cosignature ${JSON.stringify(c)} (use ed25519, ml-dsa-44)`);
    const cosign = { ed25519: cosignList.includes('ed25519'), mldsa: cosignList.includes('ml-dsa-44') };
    const limits: Partial<HttpLimits> = {};
    const set = (k: keyof HttpLimits, n: number | undefined) => {
      if (n !== undefined) limits[k] = n;
    };
    set('headersTimeoutMs', positive(v['headers-timeout'], '--headers-timeout', { min: 10 }));
    set('requestTimeoutMs', positive(v['request-timeout'], '--request-timeout', { min: 10 }));
    set('maxConnections', positive(v['max-connections'], '--max-connections'));
    set('maxConnectionsPerClient', positive(v['max-connections-per-client'], '--max-connections-per-client'));
    set('gossipRate', positive(v['gossip-rate'], '--gossip-rate', { fraction: true }));
    set('gossipBurst', positive(v['gossip-burst'], '--gossip-burst'));
    let level;
    try {
      level = resolveLogLevel(v['log-level'], io.env);
    } catch (e) {
      usage((e as Error).message);
    }
    const logger = createLogger({ level, base: { service: 'pkglog-witness' } });
    const running = await startWitness({
      limits,
      logger,
      processMetrics: true,
      dataDir: dataDirOf(p, io),
      listen: v.listen ?? io.env.PKGLOG_WITNESS_LISTEN ?? DEFAULT_LISTEN,
      ...(name !== undefined ? { name } : {}),
      ...(keyFile !== undefined ? { keyFile } : {}),
      ...(mldsaKeyFile !== undefined ? { mldsaKeyFile } : {}),
      cosign,
      gossipIntervalMs: interval(v['gossip-interval'], DEFAULT_GOSSIP_INTERVAL_MS, '--gossip-interval'),
      pollIntervalMs: interval(v['poll-interval'], DEFAULT_POLL_INTERVAL_MS, '--poll-interval'),
    });
    // Signals are handled before the listening line is printed: whoever reads it may stop the witness at once.
    const stopped = new Promise<number>((resolve) => {
      onShutdownSignal(logger, () => running.close(), (code) => (code === 0 ? resolve(EXIT.OK) : process.exit(code)));
    });
    io.stdout(`pkglog witness: vkey ${running.vkey}\n`);
    for (const k of running.vkeys.slice(1)) io.stdout(`pkglog witness: also-vkey ${k}\n`);
    io.stdout(`pkglog witness: listening on ${running.url}\n`);
    logger.info({ url: running.url, dataDir: dataDirOf(p, io) }, `listening on ${running.url}`);
    return stopped;
  },
};

const addLog: Command = {
  spec: { usage: WITNESS_USAGE, flags: { 'data-dir': 'string' }, args: ['ORIGIN', 'LOG_VKEY', '[LOG_URL]'] },
  run(p, io) {
    const [origin, given, url] = p.positionals as [string, string, string | undefined];
    if (url !== undefined && !/^https?:\/\/\S+$/.test(url)) usage('LOG_URL must be an http(s) URL');
    // The vkey keygen printed, or the bare base64 key (named by ORIGIN); stored as the canonical vkey.
    const v = parsePublicKeyVerifier(given, { type: LOG_KEY_TYPES, what: 'LOG_VKEY', name: origin });
    const vkey = formatVerifierKey(v.name, v.type, v.publicKey);
    if (v.name !== origin) io.stderr(`pkglog witness add-log: warning: the key name ${JSON.stringify(v.name)} differs from the origin ${JSON.stringify(origin)}\n`);
    const store = WitnessStore.open(dataDirOf(p, io));
    try {
      const log = store.addLog(origin, vkey, url ?? null, nowSeconds(io));
      io.stdout(`pkglog witness: witnessing ${log.origin}${log.url ? ` (pull from ${log.url})` : ''}\n`);
      io.stdout(`pkglog witness: monitoring path /${log.originHash}/checkpoint\n`);
    } finally {
      store.close();
    }
    return EXIT.OK;
  },
};

const addPeer: Command = {
  spec: { usage: WITNESS_USAGE, flags: { 'data-dir': 'string' }, args: ['URL', 'WITNESS_VKEY'] },
  run(p, io) {
    const [url, vkey] = p.positionals as [string, string];
    if (!/^https?:\/\/\S+$/.test(url)) usage('URL must be an http(s) URL');
    parsePublicKeyVerifier(vkey, { type: SIG_TYPE_COSIGNATURE_V1, what: 'WITNESS_VKEY' });
    const store = WitnessStore.open(dataDirOf(p, io));
    try {
      store.addPeer(url.replace(/\/+$/, ''), vkey, nowSeconds(io));
    } finally {
      store.close();
    }
    io.stdout(`pkglog witness: gossiping with ${url}\n`);
    return EXIT.OK;
  },
};

const evidenceVerify: Command = {
  spec: { usage: EVIDENCE_USAGE, flags: { 'log-vkey': 'string' }, args: ['FILE'] },
  run(p, io) {
    const file = p.positionals[0]!;
    const given = required(p, 'log-vkey');
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (e) {
      return fail('not_found', `cannot read ${file}: ${reason(e)}`);
    }
    const verifier = parsePublicKeyVerifier(given, { type: LOG_KEY_TYPES, what: '--log-vkey' });
    try {
      if (isIndexEvidence(text)) {
        const summary = verifyIndexEvidence(parseIndexEvidence(text), verifier);
        io.stdout(`pkglog evidence: VALID index evidence: ${summary.description}\n`);
        return EXIT.OK;
      }
      const summary = verifyEvidence(parseEvidence(text), verifier);
      io.stdout(`pkglog evidence: VALID fork evidence: ${summary.description}\n`);
      return EXIT.OK;
    } catch (e) {
      if (!isPkglogError(e)) throw e;
      io.stderr(`pkglog evidence: INVALID evidence (${e.code}): ${e.message}\n`);
      return EXIT.VERIFY_FAILED;
    }
  },
};

export const COMMANDS: CommandTable = {
  witness: { usage: WITNESS_USAGE, default: run, subcommands: { 'add-log': addLog, 'add-peer': addPeer } },
  evidence: { usage: EVIDENCE_USAGE, subcommands: { verify: evidenceVerify } },
};

export function main(argv: string[], io: Io = processIo): Promise<number> {
  return runMain(argv, io, COMMANDS);
}
