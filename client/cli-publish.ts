/** `pkglog keygen` and `pkglog submit`. */
import { writeFileSync } from 'node:fs';
import { required, type CommandSpec, type Io, type Parsed } from '../runtime/cli.ts';
import { artifactFromFlags, logClient } from './cli-common.ts';
import { keygen, loadSignerKey, signSubmission, submit, SubmitRejected } from './submit.ts';
import { hashFile, NATIVE_DIGEST_OF } from './artifact.ts';
import type { Artifact } from '../core/entry.ts';
import { EXIT } from './report.ts';
import { fail } from '../core/errors.ts';

export const KEYGEN_SPEC: CommandSpec = {
  args: [],
  flags: { name: 'string', out: 'string', cosigner: 'boolean', alg: 'string', json: 'boolean' },
  usage: `Usage: pkglog keygen --name NAME [--out FILE] [--cosigner] [--alg ed25519|ml-dsa-44] [--json]

Creates a C2SP signed-note signer key file (PRIVATE+KEY+NAME+…, mode 0600; never overwrites) and prints its
verifier key (vkey). Ed25519 (type 0x01) by default — for publishers, registries and logs; --cosigner makes a
cosignature/v1 (type 0x04) key for a witness. --alg ml-dsa-44 makes a post-quantum ML-DSA-44 key (type 0x06,
subtree/v1 cosignatures) for a log or a witness. The default file is NAME.key (with "/" replaced by "_").
Key types and file formats: docs/keys.md.

Exit codes: 0 created, 1 the file exists, 2 usage.
`,
};

export async function keygenCommand(p: Parsed, io: Io): Promise<number> {
  const name = required(p, 'name');
  const out = p.str.out ?? `${name.replace(/[/\\]/g, '_')}.key`;
  const alg = p.str.alg ?? 'ed25519';
  if (alg !== 'ed25519' && alg !== 'ml-dsa-44') fail('usage', `--alg must be ed25519 or ml-dsa-44, not ${JSON.stringify(alg)}`);
  // An existing file is a `conflict` (exit 1), reported by runtime/cli.ts like every failure.
  const { vkey } = keygen(name, out, p.bool.cosigner, alg);
  if (p.bool.json) io.stdout(JSON.stringify({ ok: true, keyFile: out, vkey }) + '\n');
  else {
    io.stdout(`${vkey}\n`);
    io.stderr(`pkglog keygen: wrote the signer key to ${out} (keep it secret); its verifier key is printed above\n`);
  }
  return EXIT.OK;
}

export const SUBMIT_SPEC: CommandSpec = {
  args: ['FILE'],
  flags: {
    ecosystem: 'string',
    name: 'string',
    version: 'string',
    filename: 'string',
    'publisher-key': 'string',
    'registry-key': 'string',
    log: 'string',
    'proof-out': 'string',
    json: 'boolean',
  },
  usage: `Usage: pkglog submit FILE --ecosystem E --name N --version V [--filename F]
                     --publisher-key FILE --registry-key FILE --log URL [--proof-out FILE] [--json]

Signs FILE's artifact (ecosystem, name, version, filename, SHA-256; for npm also its SHA-512, the digest npm's
lockfiles pin, as the entry's native digest: docs/leaf-format.md version 2) with the publisher key, countersigns it with
the registry key (the registry name is the registry key's name; the log must know it: pkglog registry add NAME VKEY --ecosystem E),
submits it to the log, checks the answer, prints the entry index and writes the tlog-proof
(default FILE.tlog-proof). Resubmitting the identical artifact returns the original entry ("already logged as entry N").

Exit codes: 0 logged, 1 rejected (409 conflict: a different artifact is already logged for this file; 403 bad
signature or unknown registry; 400/413 malformed), 2 usage, 7 network or log error.
`,
};

export async function submitCommand(p: Parsed, io: Io): Promise<number> {
  const file = p.positionals[0]!;
  const artifact = { ...artifactFromFlags(p, file), sha256: await hashFile(file) };
  // The ecosystem's own digest goes into the entry too (leaf version 2): npm lockfiles pin sha512 `integrity`.
  const native = NATIVE_DIGEST_OF[artifact.ecosystem];
  const withNative: Artifact = native !== undefined ? { ...artifact, nativeDigest: { algorithm: native, digest: await hashFile(file, native) } } : artifact;
  const publisher = loadSignerKey(required(p, 'publisher-key'), 'publisher');
  const registry = loadSignerKey(required(p, 'registry-key'), 'registry');
  const log = logClient(required(p, 'log'));
  const s = signSubmission(withNative, publisher, registry);
  try {
    const r = await submit(log, s);
    const out = p.str['proof-out'] ?? `${file}.tlog-proof`;
    writeFileSync(out, r.proof);
    if (p.bool.json) io.stdout(JSON.stringify({ ok: true, index: r.index, existing: r.existing, leafHash: r.leafHash, integratedTime: r.integratedTime, treeSize: r.treeSize, proofFile: out }) + '\n');
    else {
      const what = `${artifact.ecosystem}/${artifact.name} ${artifact.version} ${artifact.filename}`;
      io.stdout(`${r.existing ? `${what} is already logged as entry ${r.index}` : `logged ${what} as entry ${r.index}`} (sha256 ${artifact.sha256})\ntlog-proof written to ${out}\n`);
    }
    return EXIT.OK;
  } catch (e) {
    if (e instanceof SubmitRejected) {
      if (p.bool.json) io.stdout(JSON.stringify({ ok: false, exitCode: EXIT.VERIFY_FAILED, status: e.status, error: e.message, ...(e.details ?? {}) }) + '\n');
      else io.stderr(`pkglog submit: ${e.message}\n`);
      return EXIT.VERIFY_FAILED;
    }
    throw e;
  }
}
