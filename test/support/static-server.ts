/**
 * A static file server on 127.0.0.1 over a directory, for tests of tiles-only clients: a real nginx (started by the
 * test, `daemon off`, its own prefix, config and logs in a temp directory) when the machine has one, else a minimal
 * node:http static server (GET/HEAD of files, 404 otherwise). `kind` says which; tests name it in their output.
 * Also: copying a log's published read API (checkpoint, hash tiles, entry bundles) into such a directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { formatTilePath, tileWidth } from '../../core/tiles.ts';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { freePort } from './process.ts';

export interface StaticServer {
  url: string;
  kind: 'nginx' | 'node:http';
  close(): Promise<void>;
}

const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx'];

export function nginxPath(): string | undefined {
  return NGINX_CANDIDATES.find((p) => existsSync(p));
}

async function waitReady(url: string, child: ChildProcess, errorLog: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''}`);
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`nginx did not answer at ${url}`);
}

async function startNginx(bin: string, root: string): Promise<StaticServer> {
  const prefix = mkdtempSync(join(tmpdir(), 'pkglog-nginx-'));
  for (const d of ['tmp', 'logs']) mkdirSync(join(prefix, d));
  // Workers may run as another user: the served tree must be readable by them.
  chmodSync(root, 0o755);
  chmodSync(dirname(root), 0o755);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const errorLog = join(prefix, 'logs', 'error.log');
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(
      conf,
      `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 128; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  default_type application/octet-stream;
  # The web explorer's files (a module script needs a JavaScript type).
  types { text/html html; text/javascript js; text/css css; }
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { try_files $uri =404; }
  }
}
`,
    );
    const child = spawn(bin, ['-p', prefix, '-c', conf, '-e', errorLog], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitReady(`${url}/`, child, errorLog);
    } catch (e) {
      child.kill('SIGKILL');
      if (attempt < 3 && /Address already in use/.test(stderr + String(e))) continue; // the port was taken meanwhile
      throw new Error(`${(e as Error).message}\n${stderr}`);
    }
    return {
      url,
      kind: 'nginx',
      async close() {
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
        rmSync(prefix, { recursive: true, force: true });
      },
    };
  }
}

async function startNode(root: string): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(root, path);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path.includes('..') || !existsSync(file)) {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>404 Not Found</body></html>');
      return;
    }
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch {
      res.writeHead(404).end();
      return;
    }
    const type = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' }[extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': data.length }).end(req.method === 'HEAD' ? undefined : data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    kind: 'node:http',
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** nginx over `root` if the machine has it, else the node:http server. */
export function startStaticServer(root: string): Promise<StaticServer> {
  const bin = nginxPath();
  return bin !== undefined ? startNginx(bin, root) : startNode(root);
}

/**
 * Copies a log's tlog-tiles read API as of its current checkpoint from `logURL` into `dir` (emptied first, so no
 * partial tile of an older size survives): `checkpoint`, every hash tile `tile/<L>/<N>[.p/<W>]`, every entry bundle.
 * Returns the checkpoint's tree size.
 */
export async function copyTiles(logURL: string, dir: string): Promise<number> {
  rmSync(join(dir, 'tile'), { recursive: true, force: true });
  const get = async (path: string): Promise<Buffer> => {
    const r = await fetch(`${logURL}/${path}`);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
  };
  const checkpoint = await get('checkpoint');
  const size = parseCheckpoint(parseSignedNote(checkpoint).text).treeSize;
  const put = (path: string, data: Buffer) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  };
  for (let level = -1; level === -1 || tileWidth(level, 0, size) > 0; level++) {
    for (let index = 0; tileWidth(level, index, size) > 0; index++) {
      const path = formatTilePath({ level, index, width: tileWidth(level, index, size) });
      put(path, await get(path));
    }
  }
  put('checkpoint', checkpoint);
  return size;
}
