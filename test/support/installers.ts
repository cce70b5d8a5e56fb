/**
 * Runs the real installers for the proxy tests, isolated from this machine's configuration so that they exercise
 * only the proxy: pip with PIP_CONFIG_FILE=/dev/null (no global, site or user config: no extra index URLs or
 * find-links), --isolated (no PIP_* environment), no cache; npm in a temporary project with its own userconfig and
 * cache, no audit, no fund, no update notifier. Both run asynchronously (the fixtures serve from this process).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function cleanEnv(drop: RegExp, add: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !drop.test(k))), ...add };
}

/** pip's environment: no configuration file at all, no PIP_* variables (also --isolated on every call). */
export function pipEnv(): NodeJS.ProcessEnv {
  return cleanEnv(/^PIP_/i, { PIP_CONFIG_FILE: '/dev/null', PYTHONDONTWRITEBYTECODE: '1' });
}

const PIP_FLAGS = ['--isolated', '--no-cache-dir', '--disable-pip-version-check', '--no-input', '--retries', '0', '--timeout', '60'];

/** `python3 -m pip download --no-deps -d DIR SPEC --index-url INDEX`. */
export function pipDownload(index: string, dir: string, spec: string): Promise<Ran> {
  return run('python3', ['-m', 'pip', ...PIP_FLAGS, 'download', '--no-deps', '--only-binary', ':all:', '--index-url', index, '-d', dir, spec], { env: pipEnv() });
}

/** A fresh virtual environment (without its own pip: the system pip installs into it with --python). */
export async function makeVenv(dir: string): Promise<string> {
  const r = await run('python3', ['-m', 'venv', '--without-pip', dir]);
  if (r.code !== 0) throw new Error(`python3 -m venv failed: ${r.stderr}`);
  return join(dir, 'bin', 'python');
}

/** `pip install --no-deps SPEC` into the venv of `python`, through `index`. */
export function pipInstall(python: string, index: string, spec: string): Promise<Ran> {
  return run('python3', ['-m', 'pip', '--python', python, ...PIP_FLAGS, 'install', '--no-deps', '--only-binary', ':all:', '--index-url', index, spec], { env: pipEnv() });
}

/** A temporary npm project with its own .npmrc-free userconfig and cache; returns a runner of npm in it. */
export function npmProject(dir: string): (args: string[]) => Promise<Ran> {
  mkdirSync(join(dir, 'project'), { recursive: true });
  writeFileSync(join(dir, 'project', 'package.json'), JSON.stringify({ name: 'proxy-test-project', version: '1.0.0', private: true }, null, 2));
  writeFileSync(join(dir, 'npmrc'), '');
  writeFileSync(join(dir, 'global-npmrc'), '');
  const env = cleanEnv(/^npm_/i, {
    npm_config_userconfig: join(dir, 'npmrc'),
    npm_config_globalconfig: join(dir, 'global-npmrc'),
    npm_config_cache: join(dir, 'npm-cache'),
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_fetch_retries: '0',
    NO_UPDATE_NOTIFIER: '1',
  });
  return (args) => run('npm', [...args, '--no-audit', '--no-fund', '--cache', join(dir, 'npm-cache')], { env, cwd: join(dir, 'project') });
}
