/**
 * A small upstream package registry for the proxy's end-to-end tests: a PEP 503 (HTML) / PEP 691 (JSON) simple
 * index under /simple/ with files under /files/, and the npm registry read API (packuments and tarballs) under /npm/.
 * Like a real registry it submits each upload to a pkglog log — signed by the publisher and countersigned by the
 * registry (test/support/submissions.ts) — through a `submit` callback: POST /v1/entries to a real `pkglog serve`,
 * or appending to the test double of test/client/log-double.ts. It can also misbehave: replace a file after it was
 * logged (with or without updating the hash its index declares) or list a file it never logged.
 *
 * Also builds tiny valid artifacts: a wheel (zip with the package, METADATA, WHEEL, RECORD) and an sdist with
 * python3's zipfile/tarfile, an npm tarball (package/package.json, gzip'd tar).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { formatVerifierKey, SIG_TYPE_ED25519 } from '../../core/note.ts';
import { formatSubmission, type Artifact, type Submission } from '../../core/entry.ts';
import type { Ed25519KeyPair } from '../../core/ed25519.ts';
import { keyPair, sign } from './submissions.ts';

export const PYPI_REGISTRY = { name: 'pypi.org', key: keyPair('upstream registry pypi') };
export const NPM_REGISTRY = { name: 'registry.npmjs.org', key: keyPair('upstream registry npm') };
export const UPSTREAM_PUBLISHER = keyPair('upstream publisher');

export function registryVkey(r: { name: string; key: Ed25519KeyPair }): string {
  return formatVerifierKey(r.name, SIG_TYPE_ED25519, r.key.publicKey);
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

interface StoredFile {
  ecosystem: 'pypi' | 'npm';
  name: string;
  version: string;
  filename: string;
  bytes: Buffer;
  /** The hash the index declares (differs from the bytes' after a sneaky replacement). */
  declaredSha256: string;
  /** npm's `integrity` in the packument (the same, for sha512). */
  declaredIntegrity: string;
  time: string;
}

function integrityOf(b: Buffer): string {
  return `sha512-${createHash('sha512').update(b).digest('base64')}`;
}

export type SubmitFn = (s: Submission) => Promise<void>;

/** A submit callback that POSTs to a real log's /v1/entries and insists on a 200. */
export function submitToLog(logURL: string): SubmitFn {
  return async (s) => {
    const res = await fetch(`${logURL}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(formatSubmission(s)) });
    if (res.status !== 200) throw new Error(`log refused ${s.filename}: ${res.status} ${await res.text()}`);
  };
}

export class UpstreamRegistry {
  readonly files: StoredFile[] = [];
  url = '';
  private server?: Server;
  /** Serve the PyPI project pages as PEP 503 HTML even when JSON is asked for. */
  htmlOnly = false;

  constructor(private readonly submit: SubmitFn, private readonly publisher: Ed25519KeyPair = UPSTREAM_PUBLISHER) {}

  /** Uploads a file: stores it and (unless `log: false`) submits it to the log as the registry would. */
  async upload(f: { ecosystem: 'pypi' | 'npm'; name: string; version: string; filename: string; bytes: Buffer }, opts: { log?: boolean; publisher?: Ed25519KeyPair } = {}): Promise<void> {
    const sha256 = sha256Hex(f.bytes);
    if (opts.log !== false) {
      const reg = f.ecosystem === 'pypi' ? PYPI_REGISTRY : NPM_REGISTRY;
      const a: Artifact = { ecosystem: f.ecosystem, name: f.name, version: f.version, filename: f.filename, sha256 };
      // npm's own digest (sha512) goes into the entry too (leaf version 2), as `pkglog submit` does.
      if (f.ecosystem === 'npm') a.nativeDigest = { algorithm: 'sha512', digest: createHash('sha512').update(f.bytes).digest() };
      await this.submit(sign(a, opts.publisher ?? this.publisher, reg.key, reg.name));
    }
    this.files.push({ ...f, declaredSha256: sha256, declaredIntegrity: integrityOf(f.bytes), time: new Date().toISOString() });
  }

  /** Replaces a file's bytes after it was logged; `declare`: the index then declares the new hash (else the old). */
  replace(filename: string, bytes: Buffer, declare: boolean): void {
    const f = this.files.find((x) => x.filename === filename);
    if (f === undefined) throw new Error(`no file ${filename}`);
    f.bytes = bytes;
    if (declare) {
      f.declaredSha256 = sha256Hex(bytes);
      f.declaredIntegrity = integrityOf(bytes);
    }
  }

  private pypiPage(name: string, json: boolean): { type: string; body: string } | undefined {
    const files = this.files.filter((f) => f.ecosystem === 'pypi' && f.name === name);
    if (files.length === 0) return undefined;
    if (json) {
      return {
        type: 'application/vnd.pypi.simple.v1+json',
        body: JSON.stringify({ meta: { 'api-version': '1.0' }, name, files: files.map((f) => ({ filename: f.filename, url: `../../files/${f.filename}`, hashes: { sha256: f.declaredSha256 }, 'requires-python': '>=3.7' })) }),
      };
    }
    const links = files.map((f) => `<a href="${this.url}/files/${f.filename}#sha256=${f.declaredSha256}" data-requires-python="&gt;=3.7">${f.filename}</a><br/>`);
    return { type: 'text/html', body: `<!DOCTYPE html><html><body><h1>Links for ${name}</h1>\n${links.join('\n')}\n</body></html>` };
  }

  private packument(name: string): Record<string, unknown> | undefined {
    const files = this.files.filter((f) => f.ecosystem === 'npm' && f.name === name);
    if (files.length === 0) return undefined;
    const versions: Record<string, unknown> = {};
    const time: Record<string, string> = {};
    for (const f of files) {
      versions[f.version] = {
        name,
        version: f.version,
        dist: {
          tarball: `${this.url}/npm/${name}/-/${f.filename}`,
          shasum: createHash('sha1').update(f.bytes).digest('hex'),
          integrity: f.declaredIntegrity,
        },
      };
      time[f.version] = f.time;
    }
    return { _id: name, name, 'dist-tags': { latest: files.at(-1)!.version }, versions, time };
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      let m: RegExpExecArray | null;
      const send = (status: number, type: string, body: string | Buffer) => {
        res.writeHead(status, { 'content-type': type });
        res.end(body);
      };
      if ((m = /^\/simple\/([^/]+)\/$/.exec(path))) {
        const page = this.pypiPage(m[1]!, !this.htmlOnly && (req.headers.accept ?? '').includes('application/vnd.pypi.simple.v1+json'));
        return page ? send(200, page.type, page.body) : send(404, 'text/plain', 'not found\n');
      }
      if ((m = /^\/files\/([^/]+)$/.exec(path))) {
        const f = this.files.find((x) => x.ecosystem === 'pypi' && x.filename === m![1]);
        return f ? send(200, 'application/octet-stream', f.bytes) : send(404, 'text/plain', 'not found\n');
      }
      if ((m = /^\/npm\/(.+)\/-\/([^/]+)$/.exec(path))) {
        const f = this.files.find((x) => x.ecosystem === 'npm' && x.name === m![1] && x.filename === m![2]);
        return f ? send(200, 'application/octet-stream', f.bytes) : send(404, 'text/plain', 'not found\n');
      }
      if ((m = /^\/npm\/(.+)$/.exec(path))) {
        const doc = this.packument(m[1]!);
        return doc ? send(200, 'application/json', JSON.stringify(doc)) : send(404, 'application/json', '{"error":"Not found"}');
      }
      send(404, 'text/plain', 'not found\n');
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (this.server === undefined) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

const BUILD = `
import sys, zipfile, tarfile, io, hashlib, base64, json, time
kind, out, name, version = sys.argv[1:5]
mod = name.replace('-', '_')
if kind == 'wheel':
    dist = mod + '-' + version + '.dist-info'
    files = {
        mod + '/__init__.py': 'VERSION = %r\\n' % version,
        dist + '/METADATA': 'Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\nSummary: a test package\\n' % (name, version),
        dist + '/WHEEL': 'Wheel-Version: 1.0\\nGenerator: pkglog-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
    }
    record = []
    for p, c in files.items():
        d = base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b'=').decode()
        record.append('%s,sha256=%s,%d' % (p, d, len(c.encode())))
    record.append(dist + '/RECORD,,')
    files[dist + '/RECORD'] = '\\n'.join(record) + '\\n'
    with zipfile.ZipFile(out, 'w') as z:
        for p, c in files.items():
            z.writestr(zipfile.ZipInfo(p, (2020, 1, 1, 0, 0, 0)), c)
else:
    manifest = json.dumps({'name': name, 'version': version, 'main': 'index.js', 'license': 'MIT', 'description': 'a test package'})
    files = {'package/package.json': manifest, 'package/index.js': 'module.exports = %s;\\n' % json.dumps(version)}
    with tarfile.open(out, 'w:gz', format=tarfile.USTAR_FORMAT) as t:
        for p, c in files.items():
            b = c.encode()
            ti = tarfile.TarInfo(p); ti.size = len(b); ti.mtime = 1577836800; ti.mode = 0o644
            t.addfile(ti, io.BytesIO(b))
`;

function build(kind: 'wheel' | 'npm', name: string, version: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-artifact-'));
  try {
    const out = join(dir, 'out');
    execFileSync('python3', ['-c', BUILD, kind, out, name, version], { stdio: ['ignore', 'ignore', 'pipe'] });
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A minimal valid pure-Python wheel `<name>-<version>-py3-none-any.whl` with a `<name>` module holding VERSION. */
export function buildWheel(name: string, version: string): { filename: string; bytes: Buffer } {
  return { filename: `${name.replace(/-/g, '_')}-${version}-py3-none-any.whl`, bytes: build('wheel', name, version) };
}

/** A minimal npm package tarball (`package/package.json`, `package/index.js` exporting the version). */
export function buildNpmTarball(name: string, version: string): { filename: string; bytes: Buffer } {
  return { filename: `${name.split('/').pop()}-${version}.tgz`, bytes: build('npm', name, version) };
}
