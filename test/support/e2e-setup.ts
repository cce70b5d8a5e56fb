/**
 * The set-up steps the real-process end-to-end tests share (test/e2e/index*.test.ts, mirror*.test.ts,
 * witness-quorum.test.ts, pq.test.ts): their processes and temporary directories, removed after the block; a log's
 * environment and its test registry; a witness that neither gossips nor polls during a test.
 */
import { rmSync } from 'node:fs';
import { REGISTRY, REGISTRY_NAME } from './submissions.ts';
import { pkglogOk, startProcess, type Started } from './process.ts';

/** Call inside a describe block: whatever is pushed is SIGKILLed (processes) and removed (directories) after it. */
export function cleanUpAfter(): { procs: Started[]; dirs: string[] } {
  const procs: Started[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return { procs, dirs };
}

/** The environment of `pkglog serve` (and its admin commands) on `dataDir` with `origin`, listening on port 0. */
export function logEnv(dataDir: string, origin: string): NodeJS.ProcessEnv {
  return { PKGLOG_DATA_DIR: dataDir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_ORIGIN: origin };
}

/** `pkglog registry add` of the test registry (test/support/submissions.ts) for pypi, in the log of `env`. */
export function addTestRegistry(env: NodeJS.ProcessEnv): Promise<string> {
  return pkglogOk(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], env);
}

/** `pkglog witness` on `dataDir` named `name`, port 0, gossip and polling effectively off (every 10 minutes). */
export function startWitness(dataDir: string, name: string, env: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<Started> {
  return startProcess(['witness', '--gossip-interval', '600000', '--poll-interval', '600000'], {
    PKGLOG_WITNESS_DATA_DIR: dataDir, PKGLOG_WITNESS_LISTEN: '127.0.0.1:0', PKGLOG_WITNESS_NAME: name, ...env,
  }, timeoutMs);
}
