/**
 * The set-ups the proxy's end-to-end tests (test/e2e/proxy-pip.test.ts, proxy-npm.test.ts) share: a real
 * `pkglog proxy` process; an upstream registry (test/support/upstream-registry.ts) submitting to a real
 * `pkglog serve`; or one appending to the log test double (test/client/log-double.ts) whose witness's clock starts
 * 100 days ago, so that what is uploaded before the test moves the clock to now is provably old (--min-age).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ed25519KeyPair } from '../../core/ed25519.ts';
import { LogDouble, TestWitness } from '../client/log-double.ts';
import { runPkglog, startProcess, type Started } from './process.ts';
import { UpstreamRegistry, submitToLog, registryVkey, PYPI_REGISTRY, NPM_REGISTRY } from './upstream-registry.ts';

/** `pkglog proxy` in front of `upstream` for the given ecosystems (pypi: its /simple index, npm: its /npm registry). */
export function startProxy(dir: string, policy: string, upstream: string, ecosystems: Array<'pypi' | 'npm'>, extra: string[] = []): Promise<Started> {
  const upstreams = ecosystems.flatMap((e) => (e === 'pypi' ? ['--upstream-pypi', `${upstream}/simple`] : ['--upstream-npm', `${upstream}/npm`]));
  return startProcess([
    'proxy', ...upstreams, '--policy', policy,
    '--registry-key', registryVkey(PYPI_REGISTRY), '--registry-key', registryVkey(NPM_REGISTRY),
    '--state-dir', join(dir, 'proxy-state'), '--listen', '127.0.0.1:0', ...extra,
  ], { PKGLOG_LOG_FORMAT: 'json' });
}

/**
 * A real `pkglog serve` in `dir`/log that knows `registry` for `ecosystem`, the policy `dir`/policy.txt trusting it
 * (no witnesses), and an upstream registry submitting each upload to it (started).
 */
export async function logAndUpstream(dir: string, registry: { name: string; key: Ed25519KeyPair }, ecosystem: 'pypi' | 'npm'): Promise<{ log: Started; upstream: UpstreamRegistry; policy: string }> {
  const r = runPkglog(['registry', 'add', registry.name, registryVkey(registry), '--ecosystem', ecosystem, '--data-dir', join(dir, 'log')]);
  assert.equal(r.status, 0, `registry add\n${r.stdout}\n${r.stderr}`);
  const log = await startProcess(['serve', '--data-dir', join(dir, 'log'), '--listen', '127.0.0.1:0', '--batch-interval', '20']);
  const policy = join(dir, 'policy.txt');
  writeFileSync(policy, `log ${log.info.get('vkey')} ${log.url}\nquorum none\n`);
  const upstream = new UpstreamRegistry(submitToLog(log.url));
  await upstream.start();
  return { log, upstream, policy };
}

/**
 * The log test double `origin` (listening) with one witness whose clock is `now` − 100 days, the policy
 * `dir`/policy.txt trusting them, and an upstream registry appending each upload to the double at the witness's
 * clock and publishing (started).
 */
export async function doubleAndUpstream(dir: string, origin: string, now: number): Promise<{ double: LogDouble; witness: TestWitness; upstream: UpstreamRegistry; policy: string; stop(): Promise<void> }> {
  const double = new LogDouble(origin);
  const witness = new TestWitness('witness.example.test', now - 100 * 86400);
  double.witnesses = [witness];
  await double.listen();
  const upstream = new UpstreamRegistry(async (s) => {
    double.append([{ ...s, integratedTime: witness.clock * 1000 }]);
    double.publish();
  });
  await upstream.start();
  const policy = join(dir, 'policy.txt');
  writeFileSync(policy, double.policy());
  return {
    double, witness, upstream, policy,
    async stop() {
      await upstream.stop();
      await double.close();
    },
  };
}
