/**
 * Runs a real nginx (the Debian package; `.ci/run` installs it) serving a directory with the server block of
 * docs/nginx-example.conf — only its `listen` and `root` lines replaced — on a free 127.0.0.1 port, with its own
 * prefix, pid file, logs and temp paths in a temporary directory, in the foreground (`daemon off`). Never skipped:
 * without nginx, startNginx throws and says how to install it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort, REPO_ROOT } from './process.ts';

export const NGINX_EXAMPLE = join(REPO_ROOT, 'docs', 'nginx-example.conf');

export interface RunningNginx {
  url: string;
  prefix: string;
  child: ChildProcess;
  errors(): string;
  stop(): Promise<void>;
}

/** The nginx binary, or undefined. */
export function findNginx(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) if (d && existsSync(join(d, 'nginx'))) return join(d, 'nginx');
  return undefined;
}


/** The example server block with `listen` and `root` replaced (throws if the example no longer has them). */
export function serverBlock(root: string, port: number, example = readFileSync(NGINX_EXAMPLE, 'utf8')): string {
  let n = 0;
  const out = example
    .replace(/^(\s*)listen\s+[^;]+;/m, (_m, sp: string) => (n++, `${sp}listen 127.0.0.1:${port};`))
    .replace(/^(\s*)root\s+[^;]+;/m, (_m, sp: string) => (n++, `${sp}root ${root};`));
  if (n !== 2) throw new Error(`${NGINX_EXAMPLE} has no listen or root line to replace`);
  return out.replace(/^\s*#.*$/gm, '');
}

/**
 * `block(port)`: another server block to run instead of the example's (e.g. docs/operations.md's TLS proxy); it must
 * listen on 127.0.0.1:port. Readiness is any HTTP answer on the port (a TLS port answers plain HTTP with a 400).
 */
export async function startNginx(root: string, opts: { workers?: number; block?: (port: number) => string } = {}): Promise<RunningNginx> {
  const bin = findNginx();
  if (bin === undefined) {
    throw new Error('nginx is not installed (this test needs it; it is never skipped): install the Debian package, ' +
      'e.g. `apt-get update && apt-get install -y nginx` (.ci/run does this on CI)');
  }
  const prefix = mkdtempSync(join(tmpdir(), 'pkglog-nginx-'));
  for (const d of ['logs', 'tmp']) mkdirSync(join(prefix, d));
  const port = await freePort();
  // As root, nginx's workers would run as `nobody`, who cannot read a 0700 temp directory: keep them as this user.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : '';
  const conf = `${user}worker_processes ${opts.workers ?? 1};
daemon off;
master_process on;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
${opts.block ? opts.block(port) : serverBlock(root, port)}
}
`;
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const child = spawn(bin, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'logs', 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const errors = () => {
    try {
      return out + readFileSync(join(prefix, 'logs', 'error.log'), 'utf8');
    } catch {
      return out;
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      rmSync(prefix, { recursive: true, force: true });
      throw new Error(`nginx exited at start (${child.exitCode ?? child.signalCode}): ${errors()}`);
    }
    try {
      await (await fetch(`${url}/checkpoint`)).arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nginx did not answer on ${url}: ${errors()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url, prefix, child, errors,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
