/**
 * docs/operations.md "TLS via a reverse proxy": the ```nginx server block there, run by a real nginx in front of a real
 * log, terminates TLS and passes the log's answers through (status, JSON errors, Cache-Control). Only these lines are
 * replaced: `listen` (a free 127.0.0.1 port), `ssl_certificate`/`ssl_certificate_key` (a self-signed certificate for
 * 127.0.0.1 made with openssl), and the port of `proxy_pass` (the log's port 0). Never skipped: without nginx or
 * openssl it fails and says what to install (nginx runs through test/support/nginx.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type Started } from '../support/process.ts';
import { startNginx, type RunningNginx } from '../support/nginx.ts';
import { fencedBlocks, readDoc, section } from '../support/markdown.ts';

function which(bin: string): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    if (d && existsSync(join(d, bin))) return join(d, bin);
  }
  return undefined;
}

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function get(port: number, ca: string, path: string, opts: { method?: string; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', ca, headers: opts.body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('docs/operations.md: the nginx TLS block in front of a real log', function () {
  this.timeout(120_000);
  let dir: string;
  let log: Started | undefined;
  let nginx: RunningNginx | undefined;
  let nginxPort = 0;
  let ca = '';

  before(async () => {
    const openssl = which('openssl');
    assert.ok(openssl, 'openssl is not installed (this test needs it; it is never skipped): apt-get install -y openssl');
    dir = mkdtempSync(join(tmpdir(), 'pkglog-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const gen = spawnSync(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    ca = readFileSync(cert, 'utf8');

    log = await startProcess(['serve', '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    const logPort = new URL(log.url).port;

    const blocks = fencedBlocks(section(readDoc('docs/operations.md'), 'TLS via a reverse proxy'), 'nginx');
    assert.equal(blocks.length, 1, 'the TLS section has one ```nginx block');
    const counts = { listen: 0, cert: 0, key: 0, proxy: 0 };
    const block = (port: number) => blocks[0]!
      .replace(/^(\s*)listen\s+443\s+ssl(\s+http2)?;/m, (_m, sp: string, h2?: string) => (counts.listen++, `${sp}listen 127.0.0.1:${port} ssl${h2 ?? ''};`))
      .replace(/^(\s*)ssl_certificate\s+\S+;/m, (_m, sp: string) => (counts.cert++, `${sp}ssl_certificate ${cert};`))
      .replace(/^(\s*)ssl_certificate_key\s+\S+;/m, (_m, sp: string) => (counts.key++, `${sp}ssl_certificate_key ${key};`))
      .replace(/proxy_pass http:\/\/127\.0\.0\.1:8080;/, () => (counts.proxy++, `proxy_pass http://127.0.0.1:${logPort};`));
    nginx = await startNginx(dir, { block });
    assert.deepEqual(counts, { listen: 1, cert: 1, key: 1, proxy: 1 }, 'the block has the lines this test replaces');
    nginxPort = Number(new URL(nginx.url).port);
  });

  after(async () => {
    await nginx?.stop();
    await log?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the log over TLS, with its statuses, JSON errors and cache headers unchanged', async () => {
    const vkey = await get(nginxPort, ca, '/vkey');
    assert.equal(vkey.status, 200);
    assert.equal(vkey.body, `${log!.info.get('vkey')}\n`);

    const cp = await get(nginxPort, ca, '/checkpoint');
    assert.equal(cp.status, 200);
    assert.match(cp.body, /^pkglog\.localhost\/[0-9a-f]+\n0\n/);
    assert.equal(cp.headers['cache-control'], 'no-cache, max-age=1');

    const bad = await get(nginxPort, ca, '/v1/entries', { method: 'POST', body: '{"ecosystem": "pypi"}' });
    assert.equal(bad.status, 400);
    assert.match(String(bad.headers['content-type']), /^application\/json/);
    assert.equal((JSON.parse(bad.body) as { error: string }).error, 'malformed');

    const beyond = await get(nginxPort, ca, '/tile/0/000.p/1');
    assert.equal(beyond.status, 404);
    assert.equal(beyond.headers['cache-control'], undefined, 'a tile beyond the tree is not cacheable');
    assert.equal((JSON.parse(beyond.body) as { error: string }).error, 'not_found');
  });
});
