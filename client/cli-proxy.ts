/** `pkglog proxy`: the verifying proxy for pip and npm (client/proxy.ts; docs/proxy.md). */
import { EXIT } from '../core/errors.ts';
import { usage, type CommandSpec, type Io, type Parsed } from '../runtime/cli.ts';
import { parseListen } from '../runtime/listen.ts';
import { normalizeBaseURL } from '../runtime/http.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';
import { TRUST_FLAGS, TRUST_HELP, loadTrust, stateFrom, logClient } from './cli-common.ts';
import { parseDuration } from './trust.ts';
// The logger (pino), the HTTP server and the gate are loaded when the proxy starts: other commands of this module
// (verify, …) do not pay for them at start-up.

export const DEFAULT_PROXY_LISTEN = '127.0.0.1:3141';

export const PROXY_SPEC: CommandSpec = {
  args: [],
  flags: {
    ...Object.fromEntries(Object.entries(TRUST_FLAGS).filter(([k]) => k !== 'json')),
    'upstream-pypi': 'string',
    'upstream-npm': 'string',
    'min-age': 'string',
    listen: 'string',
    'allow-key-change': 'boolean',
    'cache-size': 'string',
    'max-file-size': 'string',
    'log-level': 'string',
  },
  usage: `Usage: pkglog proxy --upstream-pypi URL --upstream-npm URL --policy P [--min-age 90d] [--listen 127.0.0.1:3141]

A verifying proxy for pip and npm. Serves the PEP 503/691 simple index of the upstream Python index under
/pypi/simple/<project>/ (pip --index-url http://HOST:PORT/pypi/simple/) and the npm registry read API of the
upstream npm registry under /npm/ (npm --registry http://HOST:PORT/npm/). Every file it hands out is downloaded,
hashed and checked first: its hash is in the log under that package, version and filename, the entry's signatures
verify, it is included in a checkpoint that satisfies the policy and is consistent with the saved state, no other
publisher key signed earlier entries of the package, and (--min-age) it was cosigned at least that long ago.
Index pages and packuments list only the files and versions that pass; a refused file gets HTTP 403 with the
reason (pip and npm print it), and the proxy logs why. See docs/proxy.md.

Upstreams:
  --upstream-pypi URL    the upstream simple index (e.g. https://pypi.org/simple)
  --upstream-npm URL     the upstream npm registry (e.g. https://registry.npmjs.org)
${TRUST_HELP.replace('\n  --json                 machine-readable output', '')}
Checks:
  --min-age DURATION     serve only artifacts provably in the log for at least this long (e.g. 90d)
  --allow-key-change     serve artifacts whose package had other publisher keys before (only logged as a warning)
Serving:
  --listen HOST:PORT     where to listen (default ${DEFAULT_PROXY_LISTEN}; port 0 picks one)
  --cache-size N         verified results kept (default 10000)
  --max-file-size BYTES  largest file downloaded and checked (default 268435456)
  --log-level LEVEL      fatal, error, warn, info (default), debug, trace, silent

Runs until SIGTERM or SIGINT.
`,
};

function whole(v: string | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^[1-9][0-9]{0,15}$/.test(v) || !Number.isSafeInteger(Number(v))) usage(`${what} must be a whole number ≥ 1`);
  return Number(v);
}

export async function proxyCommand(p: Parsed, io: Io): Promise<number> {
  const up = (flag: 'upstream-pypi' | 'upstream-npm') => (p.str[flag] !== undefined ? normalizeBaseURL(p.str[flag]!) : undefined);
  const upstreamPypi = up('upstream-pypi');
  const upstreamNpm = up('upstream-npm');
  if (upstreamPypi === undefined && upstreamNpm === undefined) usage('give --upstream-pypi URL, --upstream-npm URL, or both');
  const trust = loadTrust(p)!;
  if (trust.logURL === undefined) usage('--log URL is required (or a policy with a log URL)');
  if (trust.registries.size === 0) usage('give the registries whose countersignatures count: --registry-key KEY (repeatable)');
  const listen = parseListen(p.str.listen ?? DEFAULT_PROXY_LISTEN);
  const [{ createLogger, resolveLogLevel }, { ArtifactGate }, { startProxy }] = await Promise.all([
    import('../runtime/logger.ts'), import('./proxy-check.ts'), import('./proxy.ts'),
  ]);
  let level;
  try {
    level = resolveLogLevel(p.str['log-level'], io.env);
  } catch (e) {
    usage((e as Error).message);
  }
  const logger = createLogger({ level, base: { service: 'pkglog-proxy' } });
  const gate = new ArtifactGate({
    policy: trust.policy,
    registries: trust.registries,
    log: logClient(trust.logURL),
    state: stateFrom(p, io),
    ...(p.str['min-age'] !== undefined ? { minAgeSeconds: parseDuration(p.str['min-age']) } : {}),
    strictKeys: !p.bool['allow-key-change'],
    now: io.now,
    cacheSize: whole(p.str['cache-size'], '--cache-size', 10_000),
  });
  const running = await startProxy({
    gate,
    logger,
    ...(upstreamPypi !== undefined ? { upstreamPypi } : {}),
    ...(upstreamNpm !== undefined ? { upstreamNpm } : {}),
    maxFileBytes: whole(p.str['max-file-size'], '--max-file-size', 256 * 1024 * 1024),
  }, listen);
  const stopped = new Promise<number>((resolve) => {
    onShutdownSignal(logger, () => running.close(), (code) => (code === 0 ? resolve(EXIT.OK) : process.exit(code)));
  });
  io.stdout(`pkglog proxy: pypi ${running.url}/pypi/simple/\n`);
  io.stdout(`pkglog proxy: npm ${running.url}/npm/\n`);
  io.stdout(`pkglog proxy: listening on ${running.url}\n`);
  logger.info({ url: running.url, log: trust.logURL, upstreamPypi, upstreamNpm }, `listening on ${running.url}`);
  return stopped;
}
