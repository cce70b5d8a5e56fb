/**
 * `pkglog witness …` and `pkglog evidence …`: main(argv) with argv = ['witness', ...rest] or ['evidence', ...rest].
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { exitCode, fail, isPkglogError } from '../core/errors.ts';
import { formatVerifierKey, SIG_TYPE_COSIGNATURE_V1 } from '../core/note.ts';
import { LOG_KEY_TYPES } from '../core/policy.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
import { parseEvidence, verifyEvidence } from '../core/evidence.ts';
import { WitnessStore } from './store.ts';
import { validateLogVkey } from './witness.ts';
import { createLogger, resolveLogLevel } from '../runtime/logger.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';
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
                        default ed25519; ed25519,ml-dsa-44 for both). GET /vkey serves the Ed25519 key, GET /vkeys every key in use
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

add-log: witness the log ORIGIN signed by LOG_VKEY (its vkey as serve/keygen print it — Ed25519 or ML-DSA-44 —, or its base64 Ed25519 key). With LOG_URL the witness also
  polls the log's /checkpoint and builds consistency proofs from its tiles (pull mode). A log cannot be removed,
  and re-adding an origin with a different key is refused: that could cosign a split view.
add-peer: exchange cosigned checkpoints with the witness at URL (cosigner key WITNESS_VKEY) to detect forks.
`;

const EVIDENCE_USAGE = `Usage: pkglog evidence verify FILE --log-vkey VKEY

Checks fork evidence (docs/evidence-format.md): both checkpoints must be validly signed by the log key VKEY and
provably contradict each other. Exit status 0: valid evidence of a fork; 1: invalid evidence; 2: usage error.
`;

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

function err(s: string): void {
  process.stderr.write(s.endsWith('\n') ? s : s + '\n');
}


function interval(v: string | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 10) fail('usage', `${what} must be a number of milliseconds ≥ 10`);
  return n;
}

function positive(v: string | undefined, what: string, opts: { min?: number; fraction?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const ok = opts.fraction ? /^\d+(\.\d+)?$/.test(v) && n > 0 : /^\d+$/.test(v) && n >= (opts.min ?? 1);
  if (!ok || !Number.isFinite(n)) fail('usage', `${what} must be a ${opts.fraction ? 'positive number' : `whole number ≥ ${opts.min ?? 1}`}`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'evidence') return await evidenceMain(rest);
    return await witnessMain(rest);
  } catch (e) {
    if (isPkglogError(e, 'usage') || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`pkglog ${command}: ${(e as Error).message}\n`);
      err(command === 'evidence' ? EVIDENCE_USAGE : WITNESS_USAGE);
      return 2;
    }
    if (isPkglogError(e)) {
      err(`pkglog ${command}: ${e.message}\n`);
      return exitCode(e);
    }
    throw e;
  }
}

async function witnessMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      listen: { type: 'string' },
      name: { type: 'string' },
      'key-file': { type: 'string' },
      'mldsa-key-file': { type: 'string' },
      cosign: { type: 'string' },
      'gossip-interval': { type: 'string' },
      'poll-interval': { type: 'string' },
      'headers-timeout': { type: 'string' },
      'request-timeout': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-connections-per-client': { type: 'string' },
      'gossip-rate': { type: 'string' },
      'gossip-burst': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(WITNESS_USAGE);
    return 0;
  }
  const env = process.env;
  const dataDir = values['data-dir'] ?? env.PKGLOG_WITNESS_DATA_DIR ?? DEFAULT_DATA_DIR;
  const [sub, ...pos] = positionals;
  const nowSeconds = Math.floor(Date.now() / 1000);
  if (sub === 'add-log') {
    if (pos.length < 2 || pos.length > 3) fail('usage', 'add-log needs ORIGIN LOG_VKEY [LOG_URL]');
    const [origin, given, url] = pos as [string, string, string | undefined];
    // The vkey keygen printed, or the bare base64 key (named by ORIGIN); stored as the canonical vkey.
    const v = parsePublicKeyVerifier(given, { type: LOG_KEY_TYPES, what: 'LOG_VKEY', name: origin });
    const vkey = formatVerifierKey(v.name, v.type, v.publicKey);
    if (v.name !== origin) err(`pkglog witness: warning: the key name ${JSON.stringify(v.name)} differs from the origin ${JSON.stringify(origin)}`);
    if (url !== undefined && !/^https?:\/\/\S+$/.test(url)) fail('usage', 'LOG_URL must be an http(s) URL');
    const store = WitnessStore.open(dataDir);
    try {
      const log = store.addLog(origin, vkey, url ?? null, nowSeconds);
      out(`pkglog witness: witnessing ${log.origin}${log.url ? ` (pull from ${log.url})` : ''}`);
      out(`pkglog witness: monitoring path /${log.originHash}/checkpoint`);
    } finally {
      store.close();
    }
    return 0;
  }
  if (sub === 'add-peer') {
    if (pos.length !== 2) fail('usage', 'add-peer needs URL WITNESS_VKEY');
    const [url, vkey] = pos as [string, string];
    if (!/^https?:\/\/\S+$/.test(url)) fail('usage', 'URL must be an http(s) URL');
    parsePublicKeyVerifier(vkey, { type: SIG_TYPE_COSIGNATURE_V1, what: 'WITNESS_VKEY' });
    const store = WitnessStore.open(dataDir);
    try {
      store.addPeer(url.replace(/\/+$/, ''), vkey, nowSeconds);
    } finally {
      store.close();
    }
    out(`pkglog witness: gossiping with ${url}`);
    return 0;
  }
  if (sub !== undefined) fail('usage', `unknown witness subcommand ${JSON.stringify(sub)}`);

  const keyFile = values['key-file'] ?? env.PKGLOG_WITNESS_KEY_FILE;
  const mldsaKeyFile = values['mldsa-key-file'] ?? env.PKGLOG_WITNESS_MLDSA_KEY_FILE;
  const cosignList = (values.cosign ?? env.PKGLOG_WITNESS_COSIGN ?? 'ed25519').split(',').map((s) => s.trim());
  for (const c of cosignList) if (c !== 'ed25519' && c !== 'ml-dsa-44') fail('usage', `--cosign: unknown cosignature ${JSON.stringify(c)} (use ed25519, ml-dsa-44)`);
  const cosign = { ed25519: cosignList.includes('ed25519'), mldsa: cosignList.includes('ml-dsa-44') };
  const name = values.name ?? env.PKGLOG_WITNESS_NAME;
  const limits: Partial<HttpLimits> = {};
  const set = (k: keyof HttpLimits, n: number | undefined) => {
    if (n !== undefined) limits[k] = n;
  };
  set('headersTimeoutMs', positive(values['headers-timeout'], '--headers-timeout', { min: 10 }));
  set('requestTimeoutMs', positive(values['request-timeout'], '--request-timeout', { min: 10 }));
  set('maxConnections', positive(values['max-connections'], '--max-connections'));
  set('maxConnectionsPerClient', positive(values['max-connections-per-client'], '--max-connections-per-client'));
  set('gossipRate', positive(values['gossip-rate'], '--gossip-rate', { fraction: true }));
  set('gossipBurst', positive(values['gossip-burst'], '--gossip-burst'));
  const logger = createLogger({ level: resolveLogLevel(values['log-level']), base: { service: 'pkglog-witness' } });
  const running = await startWitness({
    limits,
    logger,
    processMetrics: true,
    dataDir,
    listen: values.listen ?? env.PKGLOG_WITNESS_LISTEN ?? DEFAULT_LISTEN,
    ...(name !== undefined ? { name } : {}),
    ...(keyFile !== undefined ? { keyFile } : {}),
    ...(mldsaKeyFile !== undefined ? { mldsaKeyFile } : {}),
    cosign,
    gossipIntervalMs: interval(values['gossip-interval'], DEFAULT_GOSSIP_INTERVAL_MS, '--gossip-interval'),
    pollIntervalMs: interval(values['poll-interval'], DEFAULT_POLL_INTERVAL_MS, '--poll-interval'),
  });
  // Signals are handled before the listening line is printed: whoever reads it may stop the witness at once.
  const stopped = new Promise<number>((resolve) => {
    onShutdownSignal(logger, () => running.close(), (code) => (code === 0 ? resolve(0) : process.exit(code)));
  });
  out(`pkglog witness: vkey ${running.vkey}`);
  for (const k of running.vkeys.slice(1)) out(`pkglog witness: also-vkey ${k}`);
  out(`pkglog witness: listening on ${running.url}`);
  logger.info({ url: running.url, dataDir }, `listening on ${running.url}`);
  return stopped;
}

async function evidenceMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'log-vkey': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out(EVIDENCE_USAGE);
    return 0;
  }
  const [sub, file, ...extra] = positionals;
  if (sub !== 'verify' || file === undefined || extra.length > 0) fail('usage', 'expected: evidence verify FILE --log-vkey VKEY');
  if (values['log-vkey'] === undefined) fail('usage', '--log-vkey is required');
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (e) {
    err(`pkglog evidence: cannot read ${file}: ${(e as Error).message}`);
    return 1;
  }
  let verifier;
  try {
    verifier = validateLogVkey(values['log-vkey']);
  } catch (e) {
    fail('usage', `--log-vkey: ${(e as Error).message}`);
  }
  try {
    const summary = verifyEvidence(parseEvidence(text), verifier);
    out(`pkglog evidence: VALID fork evidence: ${summary.description}`);
    return 0;
  } catch (e) {
    if (!isPkglogError(e)) throw e;
    err(`pkglog evidence: INVALID evidence (${e.code}): ${e.message}`);
    return 1;
  }
}
