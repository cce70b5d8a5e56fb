/** `pkglog monitor` and `pkglog audit`. */
import { fail } from '../core/errors.ts';
import type { CommandSpec, Io, Parsed } from '../runtime/cli.ts';
import { TRUST_FLAGS, TRUST_HELP, loadTrust, stateFrom, logClient, printReport } from './cli-common.ts';
import { monitor } from './monitor.ts';
import { audit } from './audit.ts';
import { auditIndex } from './audit-index.ts';
import { INDEX_LOG_PATH } from './index-history.ts';
import type { Policy } from '../core/policy.ts';
import { normalizeBaseURL } from '../runtime/http.ts';
import { DirTileSource, type Progress } from './follow.ts';
import { policyForLogKey, parseDuration, publicKeyArg, keyArgName } from './trust.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { SIG_TYPE_ED25519 } from '../core/note.ts';
import type { LogClient } from './http.ts';
import { EXIT } from './report.ts';

function sampleRate(p: Parsed): number {
  const s = p.str.sample;
  if (s === undefined) return 1;
  const v = Number(s);
  if (!(v >= 0 && v <= 1)) fail('usage', '--sample must be a fraction between 0 and 1 (e.g. 0.01)');
  return v;
}

function progress(io: Io, what: string, quiet: boolean) {
  return (p: Progress) => {
    if (quiet) return;
    const pct = p.total ? ((100 * p.done) / p.total).toFixed(1) : '100';
    io.stderr(`pkglog ${what}: ${p.start + p.done}/${p.start + p.total} entries (${pct}%), ${Math.round(p.rate)} entries/s\n`);
  };
}

export const MONITOR_SPEC: CommandSpec = {
  args: [],
  flags: { ...TRUST_FLAGS, watch: 'list', 'watch-key': 'list', sample: 'string', 'from-latest': 'boolean', follow: 'string', quiet: 'boolean' },
  usage: `Usage: pkglog monitor --log URL --policy P [--watch ECOSYSTEM/NAME]... [--watch-key KEY]... [options]

Follows the log through its tiles from the saved position: verifies the checkpoint against the policy and the
saved checkpoint, every new entry bundle and hash tile against the recomputed tree and root, decodes every entry,
checks signatures, and reports new entries of watched packages or publisher keys, publisher key changes of watched
packages, and any second artifact for an already logged file (all files). Resumable; bounded memory.

  --watch ECO/NAME       a package to report (repeatable), e.g. pypi/requests
  --watch-key KEY        a publisher key to report: its vkey (as keygen prints it), base64, or a file (repeatable)
  --sample RATE          check signatures of a random fraction of entries (default 1 = all)
  --from-latest          on the first run, start at the current checkpoint instead of entry 0
  --follow INTERVAL      keep polling (e.g. 30s) until interrupted
  --quiet                no progress lines on stderr
${TRUST_HELP}

Exit codes: 0 nothing wrong, 2 usage, 3 checkpoint fails the policy, 4 fork (evidence written), 5 publisher key
change of a watched package, 7 network, 8 the log broke a promise (second artifact, bad tile or signature; evidence
written under the state directory). See docs/client.md.
`,
};

export async function monitorCommand(p: Parsed, io: Io): Promise<number> {
  const trust = loadTrust(p)!;
  if (trust.logURL === undefined) fail('usage', '--log URL is required (or a policy with a log URL)');
  for (const w of p.list.watch!) if (!/^[a-z0-9-]{1,32}\/\S+$/.test(w)) fail('usage', `--watch ${w}: expected ECOSYSTEM/NAME, e.g. pypi/requests`);
  // Publisher keys: a vkey (as keygen prints it), bare base64, or a file holding one; reported in base64.
  const watchKeys = p.list['watch-key']!.map((k) => encodeBase64(publicKeyArg(k, { type: SIG_TYPE_ED25519, what: keyArgName('--watch-key', k) }).publicKey));
  const state = stateFrom(p, io);
  const log = logClient(trust.logURL);
  const interval = p.str.follow !== undefined ? parseDuration(p.str.follow) : undefined;
  for (;;) {
    const report = await monitor({
      log,
      policy: trust.policy,
      state,
      registries: trust.registries,
      watchPackages: p.list.watch!,
      watchKeys,
      nowMs: io.now(),
      sampleRate: sampleRate(p),
      fromLatest: p.bool['from-latest'],
      onProgress: progress(io, 'monitor', p.bool.quiet || p.bool.json),
      onEvent: (e) => {
        if (!p.bool.json) io.stdout(`${e.kind === 'key-change' ? 'KEY CHANGE' : 'NEW'}: ${e.message}\n`);
      },
    });
    const code = printReport(io, p, `pkglog monitor ${log.base}`, report);
    if (interval === undefined || code === EXIT.FORK || code === EXIT.LOG_MISBEHAVED) return code;
    await new Promise((r) => setTimeout(r, interval * 1000));
  }
}

export const AUDIT_SPEC: CommandSpec = {
  args: [],
  flags: { ...TRUST_FLAGS, sample: 'string', tiles: 'string', quiet: 'boolean', 'work-dir': 'string', index: 'boolean', 'index-log': 'string' },
  usage: `Usage: pkglog audit --log URL [--policy P | --log-key VKEY] [--registry-key KEY]... [options]

Replays the whole log from its tiles: recomputes every hash tile and the root from the entry bundles and compares
them with the log's tiles and signed checkpoint, decodes every entry, checks every publisher signature and registry
countersignature, and checks that no file (ecosystem, name, version, filename) has two artifacts. Violations are
reported with evidence (pkglog-violation-evidence/v1, docs/client.md) that anyone with the log's key can check.

  --sample RATE          check signatures on a random fraction of entries (default 1 = all)
  --tiles DIR            read tiles and the checkpoint from a local mirror instead of --log
  --work-dir DIR         where the temporary file index lives (default the system temp directory)
  --quiet                no progress lines on stderr
  --index                audit the log's verifiable index instead (docs/index-format.md): rebuild the map from
                         the log's entries and check every revision the index's output log published (input tree
                         head and map root); a wrong map root is written as pkglog-index-evidence/v1 evidence
                         (pkglog evidence verify checks it). Needs --policy with a "log" line for the output log
  --index-log URL        the output log's tlog-tiles URL (default: the policy's URL for it, else <log>/v1/index/log)
${TRUST_HELP}
Without --policy or --log-key the log's own /vkey is used (trust on first use; a warning is printed).

Exit codes: 0 the log kept its promises, 2 usage, 3 checkpoint fails the policy, 7 network, 8 violations found.
`,
};

export async function auditCommand(p: Parsed, io: Io): Promise<number> {
  if (p.bool.index) return auditIndexCommand(p, io);
  let trust = loadTrust(p, false);
  if (p.str.mirror !== undefined && trust === undefined) fail('usage', '--mirror needs --policy or --log-key (the origin names the copy on the mirror)');
  let log: LogClient | undefined;
  const url = p.str.mirror !== undefined ? trust?.logURL : p.str.log ?? trust?.logURL;
  if (url !== undefined) log = logClient(url);
  if (trust === undefined) {
    if (log === undefined) fail('usage', '--log URL (or --tiles DIR with --log-key) is required');
    const vkey = (await log.get('vkey', 64 * 1024)).toString('utf8').trim();
    io.stderr(`pkglog audit: warning: no --policy or --log-key; trusting the key the log serves: ${vkey}\n`);
    trust = { policy: policyForLogKey(vkey, url), registries: (loadTrust({ ...p, str: { ...p.str, 'log-key': vkey } })!).registries };
  }
  const source = p.str.tiles !== undefined ? new DirTileSource(p.str.tiles) : log;
  if (source === undefined) fail('usage', '--log URL or --tiles DIR is required');
  const report = await audit({
    source,
    policy: trust.policy,
    registries: trust.registries,
    nowMs: io.now(),
    sampleRate: sampleRate(p),
    state: stateFrom(p, io),
    ...(p.str['work-dir'] !== undefined ? { workDir: p.str['work-dir'] } : {}),
    onProgress: progress(io, 'audit', p.bool.quiet || p.bool.json),
  });
  return printReport(io, p, `pkglog audit ${p.str.tiles ?? url}`, report);
}

async function auditIndexCommand(p: Parsed, io: Io): Promise<number> {
  const trust = loadTrust(p, false);
  if (trust === undefined || p.str.policy === undefined) fail('usage', '--index needs --policy FILE with "log" lines for the log and for its index\'s output log');
  if (p.str.tiles !== undefined) fail('usage', '--index reads the log over HTTP: give --log URL, not --tiles');
  if (trust.logURL === undefined) fail('usage', '--log URL is required (or a policy with a log URL)');
  const log = logClient(trust.logURL);
  const outputLog = p.str['index-log'] !== undefined ? logClient(p.str['index-log']) : outputLogFromPolicy(trust.policy, log);
  const report = await auditIndex({ log, outputLog, policy: trust.policy, state: stateFrom(p, io), nowMs: io.now() });
  return printReport(io, p, `pkglog audit --index ${outputLog.base}`, report);
}

/** The output log: the one other policy log with a URL, else <log>/v1/index/log. */
function outputLogFromPolicy(policy: Policy, log: LogClient): LogClient {
  const others = policy.logs.filter((l) => l.url !== undefined && normalizeBaseURL(l.url) !== log.base);
  return logClient(others.length === 1 ? others[0]!.url! : `${log.base}/${INDEX_LOG_PATH}`);
}
