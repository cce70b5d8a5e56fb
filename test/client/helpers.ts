/** Client test helpers: temp dirs, running the client CLI in-process with captured output. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../client/cli.ts';

export function tempDir(prefix = 'pkglog-client-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
  json(): Record<string, any>;
}

/** Runs `pkglog <argv…>` (client commands) in-process. */
export async function cli(argv: string[], opts: { now?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    stdout: (s) => void (out += s),
    stderr: (s) => void (err += s),
    env: opts.env ?? {},
    now: () => opts.now ?? Date.now(),
  });
  return {
    code,
    out,
    err,
    json() {
      return JSON.parse(out);
    },
  };
}

export function writeFile(dir: string, name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** Runs `node bin/pkglog.js ARGS…` as a real process without blocking the event loop (in-process servers keep serving). */
export async function runAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { spawn } = await import('node:child_process');
  const { PKGLOG_BIN } = await import('../support/process.ts');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
