/** `pkglog verify` and `pkglog proof`. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fail } from '../core/errors.ts';
import { reason, type CommandSpec, type Io, type Parsed } from '../runtime/cli.ts';
import { TRUST_FLAGS, TRUST_HELP, loadTrust, stateFrom, logClient, printReport, parseTime, artifactFromFlags } from './cli-common.ts';
import { hashFile } from './artifact.ts';
import { verifyArtifact } from './verify.ts';
import { parseDuration } from './trust.ts';
import { postQuantumPolicy } from '../core/policy.ts';
import { EXIT } from './report.ts';
import { parseTlogProof } from '../core/tlog-proof.ts';

const PACKAGE_FLAGS: CommandSpec['flags'] = { ecosystem: 'string', name: 'string', version: 'string', filename: 'string' };

export const VERIFY_SPEC: CommandSpec = {
  args: ['FILE'],
  flags: {
    ...TRUST_FLAGS,
    ...PACKAGE_FLAGS,
    proof: 'string',
    offline: 'boolean',
    'max-age': 'string',
    'min-age': 'string',
    'strict-keys': 'boolean',
    gossip: 'boolean',
    'no-state': 'boolean',
    at: 'string',
    'require-pq': 'boolean',
    index: 'string',
  },
  usage: `Usage: pkglog verify FILE --ecosystem E --name N --version V [options]

Checks that FILE is exactly the artifact logged for the package: its SHA-256 and the entry's fields, the publisher
signature and the registry countersignature, the inclusion proof, and that the checkpoint satisfies the policy
(log signature, witness quorum). Keeps the newest verified checkpoint per log and reports a fork (with evidence)
when a new one is not consistent with it.

Package:
  --ecosystem E --name N --version V
  --filename F           the logged filename (default: FILE's base name)
Proof:
  --proof FILE           verify offline with this tlog-proof (no network unless --log is given)
  --offline              never use the network
  --index N              the entry's index in the log: its proof is built from the log's tiles (for a log URL
                         with no lookup service, e.g. a static tlog-tiles mirror)
                         With --mirror URL and --proof FILE, the entry named by the proof file is read from the
                         mirror, with the mirror's checkpoint (and its cosignature)
${TRUST_HELP}
Checks:
  --max-age DURATION     require a quorum of cosignatures newer than this (e.g. 1h), against freeze attacks
  --require-pq           count only post-quantum (ML-DSA-44) signatures: the log's ML-DSA cosignature and a
                         quorum of ML-DSA witness cosignatures (Ed25519 ones are ignored)
  --min-age DURATION     require the artifact to provably be in the log for at least this long (e.g. 90d)
  --strict-keys          fail (exit 5) when earlier entries of the package are signed by other publisher keys
  --gossip               give the checkpoint to the policy's witnesses; fail (exit 4) if any reports a fork
  --no-state             do not read or update the saved checkpoints
  --at TIME              evaluate ages as of TIME (unix seconds or ISO 8601) instead of now

Exit codes: 0 verified, 1 artifact does not verify, 2 usage, 3 checkpoint fails the policy (signature, quorum,
max-age), 4 fork, 5 publisher key change (--strict-keys), 6 too young (--min-age), 7 network. See docs/client.md.
`,
};

export async function verifyCommand(p: Parsed, io: Io): Promise<number> {
  const file = p.positionals[0]!;
  const want = artifactFromFlags(p, file);
  const trust = loadTrust(p)!;
  if (p.bool['require-pq']) trust.policy = postQuantumPolicy(trust.policy);
  let proofText = p.str.proof !== undefined ? readProof(p.str.proof) : undefined;
  if (p.bool.offline && proofText === undefined) fail('usage', '--offline needs --proof FILE');
  let index = indexArg(p.str.index);
  if (p.str.mirror !== undefined && p.bool.offline) fail('usage', '--mirror and --offline exclude each other');
  if (p.str.mirror !== undefined && proofText !== undefined && index === undefined) {
    // The proof file names the entry; its checkpoint and inclusion proof are fetched fresh from the mirror.
    index = parseTlogProof(proofText).index;
    proofText = undefined;
  }
  if (index !== undefined && proofText !== undefined) fail('usage', '--index and --proof exclude each other');
  // With a proof file the network is used only when --log is given explicitly.
  const url = p.bool.offline ? undefined : proofText !== undefined && p.str.mirror === undefined ? p.str.log : trust.logURL;
  if (proofText === undefined && url === undefined) fail('usage', 'give --proof FILE, or --log URL (or a policy with a log URL)');
  const state = p.bool['no-state'] ? undefined : stateFrom(p, io);
  const nowMs = p.str.at !== undefined ? parseTime(p.str.at) : io.now();
  const report = await verifyArtifact({
    fileSha256: await hashFile(file),
    want,
    policy: trust.policy,
    registries: trust.registries,
    ...(proofText !== undefined ? { proofText } : {}),
    ...(index !== undefined ? { index } : {}),
    ...(url !== undefined ? { log: logClient(url) } : {}),
    ...(state !== undefined ? { state, onFork: (f) => (f.evidence ? state.saveEvidence(f.origin, f.evidence, io.now()) : undefined) } : {}),
    nowMs,
    ...(p.str['max-age'] !== undefined ? { maxAgeSeconds: parseDuration(p.str['max-age']) } : {}),
    ...(p.str['min-age'] !== undefined ? { minAgeSeconds: parseDuration(p.str['min-age']) } : {}),
    strictKeys: p.bool['strict-keys'],
    gossip: p.bool.gossip,
  });
  report.data.file = file;
  return printReport(io, p, `pkglog verify ${file} (${want.ecosystem}/${want.name} ${want.version})`, report);
}

function indexArg(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(s) || !Number.isSafeInteger(Number(s))) fail('usage', `--index ${s}: expected an entry index (0, 1, 2, …)`);
  return Number(s);
}

function readProof(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    return fail('not_found', `cannot read proof file ${path}: ${reason(e)}`);
  }
}

export const PROOF_SPEC: CommandSpec = {
  args: ['FILE'],
  flags: { ...TRUST_FLAGS, ...PACKAGE_FLAGS, out: 'string', 'no-state': 'boolean', index: 'string' },
  usage: `Usage: pkglog proof FILE --ecosystem E --name N --version V [--filename F] [--out FILE.tlog-proof] [options]

Finds FILE's entry in the log, fetches a C2SP tlog-proof for it (the entry rides in its "extra" line), verifies it
like pkglog verify, and writes it (default FILE.tlog-proof) so a registry can publish it next to the file;
pkglog verify --proof then works with no network at all. With --index N the entry is read from the log's tiles
and no lookup service is needed (any C2SP tlog-tiles URL will do).

  --filename F           the logged filename (default: FILE's base name)
  --out FILE             where to write the proof (default FILE.tlog-proof)
  --no-state             do not read or update the saved checkpoints
${TRUST_HELP}

Exit codes: as pkglog verify; the proof is written only when it verifies.
`,
};

export async function proofCommand(p: Parsed, io: Io): Promise<number> {
  const file = p.positionals[0]!;
  const want = artifactFromFlags(p, file);
  const trust = loadTrust(p)!;
  if (p.bool['require-pq']) trust.policy = postQuantumPolicy(trust.policy);
  if (trust.logURL === undefined) fail('usage', '--log URL is required (or a policy with a log URL)');
  const log = logClient(trust.logURL);
  const index = indexArg(p.str.index);
  const sha = await hashFile(file);
  let fetched: string | undefined;
  const state = p.bool['no-state'] ? undefined : stateFrom(p, io);
  // verifyArtifact fetches the proof; capture it through a wrapping client.
  const orig = log.entryProof.bind(log);
  log.entryProof = async (i: number) => (fetched = await orig(i));
  const report = await verifyArtifact({
    fileSha256: sha,
    want,
    policy: trust.policy,
    registries: trust.registries,
    log,
    ...(index !== undefined ? { index } : {}),
    ...(state !== undefined ? { state, onFork: (f) => (f.evidence ? state.saveEvidence(f.origin, f.evidence, io.now()) : undefined) } : {}),
    nowMs: io.now(),
  });
  const out = p.str.out ?? `${file}.tlog-proof`;
  if (report.exitCode === EXIT.OK && fetched !== undefined) {
    writeFileSync(out, fetched);
    report.data.proofFile = out;
    report.pass('written', `tlog-proof written to ${out}`);
  }
  return printReport(io, p, `pkglog proof ${file}`, report);
}
