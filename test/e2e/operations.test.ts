/**
 * Operations, through the shipped command (real processes on 127.0.0.1 port 0):
 *   - /healthz, /readyz and /metrics on a log (with a witness quorum) and on its witness; request ids echoed and in
 *     the log lines; every stderr line is one JSON object;
 *   - redaction: every route and error path of both is exercised, and no log line, no start-up line and no HTTP
 *     response contains any private key material (the key files' text, the base64 or hex seed);
 *   - graceful shutdown: 500 concurrent submissions, SIGTERM mid-way: every request gets an answer (200, or 503 once
 *     the drain began; never a connection error), exit code 0, and after a restart every 200 is in the log at its
 *     index; the same through `npm start` with the signal sent to the npm process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { formatSubmission } from '../../core/entry.ts';
import { parseSignerKeyFields } from '../../core/note.ts';
import { addRegistry } from '../../server/registries.ts';
import { registriesFile } from '../../server/main.ts';
import { REPO_ROOT, runPkglog, startProcess, type Started } from '../support/process.ts';
import { tempDir } from '../support/log-harness.ts';
import { PUBLISHER, REGISTRY, REGISTRY_NAME, artifact, keyPair, sign, submissionBody } from '../support/submissions.ts';

const ORIGIN = 'ops.example/log';
const SLOW = keyPair('slow registry');

/** Every secret string a key file in `dir` holds: the file's text, its base64 key field, the seed in base64/hex. */
function secretsIn(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.key')) continue;
    const text = readFileSync(join(dir, f), 'utf8').trim();
    // PRIVATE+KEY+<name>+<hash>+<base64 key>: the base64 may itself hold '+' (so not lastIndexOf, whose tail can be short).
    out.push(text, text.split('+').slice(4).join('+'));
    const { seed } = parseSignerKeyFields(text);
    out.push(seed.toString('base64'), seed.toString('base64url'), seed.toString('hex'));
  }
  return out;
}

function metric(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name}{`) === false && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('operations: health, metrics, logs and redaction (real log and witness)', function () {
  this.timeout(120_000);
  const root = tempDir('pkglog-ops-');
  const logDir = join(root, 'log');
  const witnessDir = join(root, 'witness');
  const procs: Started[] = [];
  /** Every response body and header block seen. */
  const responses: string[] = [];
  let log: Started;
  let witness: Started;

  async function get(url: string, init: RequestInit = {}): Promise<Response & { text_: string }> {
    const res = await fetch(url, init);
    const text = await res.text();
    responses.push(`${res.status} ${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${text}`);
    return Object.assign(res, { text_: text });
  }

  before(async () => {
    addRegistry(registriesFile(logDir), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: '*' });
    addRegistry(registriesFile(logDir), 'slow.example', SLOW.publicKey.toString('base64'), { ecosystems: '*', daily: 1 });
    // First start: the log creates its key; the witness is told about it; the log is told about the witness.
    const first = await startProcess(['serve', '--data-dir', logDir, '--listen', '127.0.0.1:0', '--origin', ORIGIN]);
    const vkey = first.info.get('vkey')!;
    assert.equal(await first.stop(), 0);
    const added = runPkglog(['witness', 'add-log', ORIGIN, vkey, '--data-dir', witnessDir]);
    assert.equal(added.status, 0, added.stderr);
    witness = await startProcess(['witness', '--data-dir', witnessDir, '--listen', '127.0.0.1:0', '--log-level', 'debug']);
    procs.push(witness);
    const w = runPkglog(['witnesses', 'add', witness.url, witness.info.get('vkey')!, '--data-dir', logDir]);
    assert.equal(w.status, 0, w.stderr);
    log = await startProcess(['serve', '--data-dir', logDir, '--listen', '127.0.0.1:0', '--witness-quorum', '1', '--batch-interval', '20', '--log-level', 'debug']);
    procs.push(log);
  });

  after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('answers /healthz and /readyz (store, signing, sequencer, cosigned) on the log and the witness', async () => {
    for (const base of [log.url, witness.url]) {
      const h = await get(`${base}/healthz`);
      assert.equal(h.status, 200);
      assert.deepEqual(JSON.parse(h.text_), { status: 'ok' });
    }
    const r = await until('the log is ready', async () => {
      const x = await get(`${log.url}/readyz`);
      return x.status === 200 ? x : undefined;
    });
    const body = JSON.parse(r.text_) as { status: string; checks: Array<{ name: string; ok: boolean }> };
    assert.equal(body.status, 'ready');
    assert.deepEqual(body.checks.map((c) => c.name), ['store', 'signing', 'sequencer', 'cosigned']);
    assert.ok(body.checks.every((c) => c.ok));
    const wr = await get(`${witness.url}/readyz`);
    assert.equal(wr.status, 200, wr.text_);
    assert.deepEqual(JSON.parse(wr.text_).checks.map((c: { name: string }) => c.name), ['store', 'key']);
  });

  it('exercises every route and error path; metrics count them; request ids are echoed and logged', async () => {
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      get(`${log.url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
    // Submissions: logged, duplicate, bad signature, unknown registry, malformed JSON, too large, quota, batch.
    for (let i = 0; i < 3; i++) assert.equal((await post('/v1/entries', submissionBody(i), { 'x-request-id': `ops-test-${i}` })).status, 200);
    const dup = await post('/v1/entries', submissionBody(0));
    assert.equal(dup.status, 200);
    const bad = formatSubmission(sign(artifact(10), PUBLISHER, keyPair('not the registry key'), REGISTRY_NAME));
    assert.equal((await post('/v1/entries', bad, { 'x-request-id': 'ops-bad-signature' })).status, 403);
    assert.equal((await post('/v1/entries', formatSubmission(sign(artifact(11), PUBLISHER, keyPair('nobody'), 'nobody.example')))).status, 403);
    assert.equal((await post('/v1/entries', '{"not json')).status, 400);
    assert.equal((await post('/v1/entries', 'x'.repeat(70_000))).status, 413);
    assert.equal((await post('/v1/entries', formatSubmission(sign(artifact(20), PUBLISHER, SLOW, 'slow.example')))).status, 200);
    assert.equal((await post('/v1/entries', formatSubmission(sign(artifact(21), PUBLISHER, SLOW, 'slow.example')))).status, 429);
    const batch = await post('/v1/entries/batch', { entries: [submissionBody(4), submissionBody(5), bad] });
    assert.equal(batch.status, 200);
    assert.deepEqual(JSON.parse(batch.text_).results.map((r: { status?: number }) => r.status ?? 200), [200, 200, 403]);
    assert.equal((await post('/v1/entries/batch', { entries: [] })).status, 400);

    // Reads, good and bad.
    const id = 'x'.repeat(300);
    const cp = await get(`${log.url}/checkpoint`, { headers: { 'x-request-id': id } });
    assert.equal(cp.status, 200);
    assert.match(cp.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/, 'an oversized X-Request-Id is replaced');
    const echoed = await get(`${log.url}/vkey`, { headers: { 'x-request-id': 'ops-vkey.1' } });
    assert.equal(echoed.headers.get('x-request-id'), 'ops-vkey.1');
    for (const [path, status] of [
      ['/tile/0/000.p/1', 200], ['/tile/entries/000.p/1', 200], ['/tile/9/000', 404], ['/tile/x', 400],
      ['/v1/entries/0', 200], ['/v1/entries/999', 404], ['/v1/entries/0/proof', 200], ['/v1/entries/x', 400],
      ['/v1/proof/inclusion?index=0&size=2', 200], ['/v1/proof/inclusion?index=5&size=2', 400], ['/v1/proof/consistency?old=1&size=2', 200],
      ['/v1/lookup/pypi/requests', 200], [`/v1/lookup/sha256/${createHash('sha256').update('content 0').digest('hex')}`, 200], ['/v1/lookup/sha256/zz', 400],
      ['/v1/checkpoints/1', 200], ['/v1/checkpoints/99999', 404], ['/nowhere', 404], ['/metrics', 200],
    ] as const) {
      const r = await get(`${log.url}${path}`);
      assert.equal(r.status, status, `${path}: ${r.text_}`);
    }

    // The witness: every route, and refusals.
    const w = witness.url;
    const originHash = createHash('sha256').update(ORIGIN).digest('hex');
    await until('the witness cosigned', async () => ((await get(`${w}/${originHash}/checkpoint`)).status === 200 ? true : undefined));
    for (const [path, init, status] of [
      ['/vkey', {}, 200], ['/v1/evidence', {}, 200], ['/v1/evidence/1', {}, 404], [`/v1/history/${originHash}`, {}, 200],
      ['/add-checkpoint', { method: 'POST', body: 'old 0\n\nnot a checkpoint' }, 400], ['/v1/gossip', { method: 'POST', body: 'garbage' }, 400],
      ['/nowhere', {}, 404], ['/metrics', {}, 200],
    ] as const) {
      const r = await get(`${w}${path}`, init);
      assert.equal(r.status, status, `witness ${path}: ${r.text_}`);
    }

    // Metrics on the log.
    const m = (await get(`${log.url}/metrics`)).text_;
    assert.equal(metric(m, 'pkglog_submissions_total', '{registry="pypi.org",outcome="logged"}'), 6); // 3 + dup + 2 in the batch
    assert.equal(metric(m, "pkglog_submissions_total", `{registry="pypi.org",outcome="bad_signature"}`), 2, m);
    assert.equal(metric(m, 'pkglog_submissions_total', '{registry="unknown",outcome="unknown_key"}'), 1);
    assert.equal(metric(m, 'pkglog_submissions_total', '{registry="slow.example",outcome="rate_limited"}'), 1);
    assert.equal(metric(m, 'pkglog_quota_refusals_total', '{registry="slow.example"}'), 1);
    assert.equal(metric(m, 'pkglog_tree_size_entries'), 6);
    assert.equal(metric(m, 'pkglog_pending_submissions'), 0);
    assert.ok(metric(m, 'pkglog_batch_size_entries_count')! >= 1);
    assert.ok(metric(m, 'pkglog_integration_duration_seconds_count')! >= 6);
    assert.ok(metric(m, 'pkglog_commit_duration_seconds_count')! >= 1);
    assert.ok(metric(m, 'pkglog_witness_requests_total', `{witness="${w}"}`)! >= 1);
    assert.ok(metric(m, 'pkglog_witness_cosignatures_total', `{witness="${w}"}`)! >= 1);
    assert.equal(metric(m, 'pkglog_witness_failures_total', `{witness="${w}"}`), 0);
    assert.ok(metric(m, 'pkglog_verify_worker_restarts_total') !== undefined || !m.includes('pkglog_verify_worker'));
    assert.ok(metric(m, 'pkglog_http_requests_total', '{method="POST",code="403"}')! >= 2);
    assert.match(m, /^pkglog_process_cpu_seconds_total /m, 'process metrics');
    // Metrics on the witness.
    const wm = (await get(`${w}/metrics`)).text_;
    assert.ok(metric(wm, 'pkglog_witness_add_checkpoint_total', '{outcome="cosigned"}')! >= 1);
    assert.equal(metric(wm, 'pkglog_witness_add_checkpoint_total', '{outcome="malformed"}'), 1);
    assert.equal(metric(wm, 'pkglog_witness_fork_evidence'), 0);
    assert.equal(metric(wm, 'pkglog_witness_logs'), 1);

    // Logs: JSON lines; the refusal is one line with its request id; debug access lines carry the id too.
    const lines = log.stderr().split('\n').filter((l) => l !== '');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const refusal = parsed.filter((o) => o.reqId === 'ops-bad-signature' && String(o.msg).startsWith('refused POST /v1/entries: 403 bad_signature'));
    assert.equal(refusal.length, 1, lines.join('\n'));
    assert.equal(refusal[0]!.level, 'info');
    assert.ok(parsed.some((o) => o.reqId === 'ops-test-0' && o.msg === 'request' && o.status === 200), 'debug access line with the request id');
    assert.ok(!parsed.some((o) => 'err' in o || /\n\s+at /.test(String(o.msg))), 'no stack trace for refusals');
    for (const l of witness.stderr().split('\n').filter((x) => x !== '')) JSON.parse(l);
  });

  it('no log line, start-up line or HTTP response holds private key material', async () => {
    const secrets = [...secretsIn(logDir), ...secretsIn(witnessDir)];
    assert.ok(secrets.length >= 10, `found ${secrets.length} secrets`);
    const everything = [log.stdout(), log.stderr(), witness.stdout(), witness.stderr(), ...responses].join('\n');
    assert.ok(everything.length > 10_000, `captured ${everything.length} characters`);
    for (const s of secrets) {
      assert.ok(s.length >= 40, 'every secret string is long enough not to match by chance');
      assert.ok(!everything.includes(s), `a secret (${s.slice(0, 6)}…) appears in the output`);
    }
  });
});

/** POSTs `n` submissions at once; sends `signal` to `target` once `after` of them were answered 200. */
/** POST /v1/entries on a connection of its own; `written` is called once the whole request is handed to the OS. */
function post(url: string, body: string, written: () => void): Promise<{ status: number; body: { index?: number; entry?: string; error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/v1/entries`, {
      method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode!, body: JSON.parse(text) });
        } catch (e) {
          reject(e);
        }
      });
      res.on('error', reject);
    });
    req.on('finish', written);
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * n concurrent submissions; `signal` is called once `after` of them are answered 200 AND every one of them has been
 * sent (handed to the OS), while some are still unanswered: "in flight" as the server sees it. (On a loaded machine this process may not even have
 * written the later requests when the early ones are answered; a connection the server accepted but on which no
 * request ever came is not a request in flight, and is closed at the end of the drain.)
 */
async function submitAndSignal(url: string, n: number, offset: number, after: number, signal: () => void) {
  let ok = 0;
  let written = 0;
  let answered = 0;
  let signalled = false;
  const maybeSignal = () => {
    if (ok >= after && written === n && answered < n && !signalled) {
      signalled = true;
      signal();
    }
  };
  const results = await Promise.all(Array.from({ length: n }, async (_, i) => {
    try {
      const res = await post(url, JSON.stringify(submissionBody(offset + i)), () => {
        written++;
        maybeSignal();
      });
      answered++;
      if (res.status === 200) ok++;
      maybeSignal();
      return res;
    } catch (e) {
      answered++;
      return { status: 0, body: { error: `${(e as Error).message}: ${String((e as { cause?: unknown }).cause)}` } };
    }
  }));
  return { results, signalled };
}

async function checkAllLogged(dataDir: string, results: Array<{ status: number; body: { index?: number; entry?: string } }>) {
  const again = await startProcess(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0']);
  try {
    for (const r of results.filter((x) => x.status === 200)) {
      const got = (await (await fetch(`${again.url}/v1/entries/${r.body.index}`)).json()) as { leaf: string };
      assert.equal(got.leaf, r.body.entry, `entry ${r.body.index} as answered`);
    }
  } finally {
    assert.equal(await again.stop(), 0);
  }
}

describe('graceful shutdown (real processes)', function () {
  this.timeout(180_000);
  const root = tempDir('pkglog-drain-');
  after(() => rmSync(root, { recursive: true, force: true }));

  const check = (results: Array<{ status: number; body: { error?: string } }>, stderr: string) => {
    const statuses = new Map<number, number>();
    for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    const summary = JSON.stringify([...statuses]);
    assert.ok(results.every((r) => r.status === 200 || (r.status === 503 && r.body.error === 'overloaded')), `every request answered 200 or 503: ${summary} ${JSON.stringify(results.find((r) => r.status !== 200 && r.status !== 503))}\n${stderr.slice(-3000)}`);
    assert.ok((statuses.get(200) ?? 0) > 0, summary);
    return summary;
  };

  it('pkglog serve: 500 concurrent submissions, SIGTERM mid-way: every request answered, exit 0, every 200 logged', async () => {
    const dataDir = join(root, 'serve');
    addRegistry(registriesFile(dataDir), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: '*' });
    const log = await startProcess(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--batch-interval', '30', '--max-connections-per-client', '2000', '--verify-threads', '1']);
    const exited = new Promise<number | null>((r) => log.child.once('exit', (code) => r(code)));
    const { results, signalled } = await submitAndSignal(log.url, 500, 0, 20, () => log.child.kill('SIGTERM'));
    assert.ok(signalled, 'SIGTERM was sent while submissions were in flight');
    const code = await exited;
    const summary = check(results, log.stderr());
    assert.equal(code, 0, `exit code; ${summary}\n${log.stderr().slice(-2000)}`);
    assert.match(log.stderr(), /every accepted request was answered/);
    await checkAllLogged(dataDir, results);
  });

  it('npm start: the signal sent to the npm process drains the server the same way', async () => {
    const dataDir = join(root, 'npm');
    addRegistry(registriesFile(dataDir), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: '*' });
    const cli = process.env.npm_execpath;
    const [cmd, args] = cli !== undefined && cli.endsWith('.js') ? [process.execPath, [cli, 'start', '--silent']] : ['npm', ['start', '--silent']];
    const npm = spawn(cmd, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, PKGLOG_DATA_DIR: dataDir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_BATCH_INTERVAL_MS: '30', PKGLOG_MAX_CONNECTIONS_PER_CLIENT: '2000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
    npm.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => npm.once('exit', (code) => r(code)));
    try {
      const url = await until('npm start listens', () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], 60_000);
      const { results, signalled } = await submitAndSignal(url, 300, 1000, 20, () => npm.kill('SIGTERM'));
      assert.ok(signalled);
      const code = await exited;
      const summary = check(results, err);
      assert.equal(code, 0, `npm exit code; ${summary}\n${err.slice(-2000)}`);
      assert.match(err, /every accepted request was answered/);
      await checkAllLogged(dataDir, results);
    } finally {
      if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    }
  });
});
