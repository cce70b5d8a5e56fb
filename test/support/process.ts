/** Runs `pkglog` subcommands as real processes for end-to-end tests (127.0.0.1, port 0). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PKGLOG_BIN = fileURLToPath(new URL('../../bin/pkglog.js', import.meta.url));

export interface Started {
  child: ChildProcess;
  /** Lines `<prefix>: <key> <value>` printed before the process said it was listening. */
  info: Map<string, string>;
  url: string;
  stdout: () => string;
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `node bin/pkglog.js ARGS…` and resolves once it prints `… listening on <url>`.
 * Lines like `pkglog: vkey <v>` are collected into `info` (key `vkey`).
 */
export function startProcess(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<Started> {
  const child = spawn(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const info = new Map<string, string>();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pkglog ${args.join(' ')} did not start in time\nstdout: ${out}\nstderr: ${err}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        const m = /^[^:]+: (\S+) (.*)$/.exec(line);
        if (m) info.set(m[1]!, m[2]!);
        const l = /listening on (http:\/\/\S+)/.exec(line);
        if (l) {
          clearTimeout(timer);
          resolve({
            child, info, url: l[1]!, stdout: () => out, stderr: () => err,
            async stop(signal = 'SIGTERM') {
              if (child.exitCode === null && child.signalCode === null) child.kill(signal);
              return exited;
            },
          });
          return;
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pkglog ${args.join(' ')} exited with ${code}\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** Runs a short pkglog command to completion. */
export function runPkglog(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', input, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
