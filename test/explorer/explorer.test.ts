/**
 * The web explorer in a real browser: Debian's Chromium driven by playwright-core (never a downloaded browser),
 * against a real `pkglog serve` process with a real witness (quorum 1), and against the same log's static tile layout
 * served by nginx. Search, the package page with a publisher key change, "check a file" for a logged and an unlogged
 * file, a tampered proof shown as failed, no request to any other origin, keyboard use and a phone-width screen.
 * Without /usr/bin/chromium the tests say so loudly and are counted as skipped (`.ci/run` installs it).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { formatSubmission } from '../../core/entry.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { PKGLOG_BIN, REPO_ROOT, startProcess, pkglogOk as pkglog, type Started } from '../support/process.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';
import { artifact, keyPair, REGISTRY, REGISTRY_NAME, sign, submissionBody } from '../support/submissions.ts';

const CHROMIUM = '/usr/bin/chromium';
const ORIGIN = 'example.test/explorer-log';
// As the machine's notes say: without the background-networking flags Chromium tries to reach Google's hosts.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions'];


async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = (await r.json()) as Record<string, unknown>;
  assert.equal(r.status, 200, JSON.stringify(j));
  return j;
}

describe('explorer: the web app in Debian Chromium (playwright-core)', function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  const procs: Started[] = [];
  let staticServer: StaticServer | undefined;
  let browser: Browser | undefined;
  let log: Started;
  let publishDir: string;
  let filesDir: string;
  let policyText: string;
  /** Every URL the browser asked for, across all pages. */
  const requested: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.error(`\n  !!! explorer browser tests SKIPPED: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it) !!!\n`);
      this.skip();
    }
    const logDir = tempDir('pkglog-explorer-log-');
    const wDir = tempDir('pkglog-explorer-w-');
    publishDir = tempDir('pkglog-explorer-pub-');
    filesDir = tempDir('pkglog-explorer-files-');
    dirs.push(logDir, wDir, publishDir, filesDir);
    const logKey = loadOrCreateLogKey(join(logDir, 'log.key'), ORIGIN);
    const logEnv = { PKGLOG_DATA_DIR: logDir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_ORIGIN: ORIGIN };
    await Promise.all([
      pkglog(['witness', 'add-log', ORIGIN, logKey.vkey, '--data-dir', wDir]),
      pkglog(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], logEnv),
    ]);
    const w = await startProcess(['witness', '--gossip-interval', '600000', '--poll-interval', '600000'], {
      PKGLOG_WITNESS_DATA_DIR: wDir, PKGLOG_WITNESS_LISTEN: '127.0.0.1:0', PKGLOG_WITNESS_NAME: 'witness.test/explorer',
    });
    procs.push(w);
    await pkglog(['witnesses', 'add', w.url, w.info.get('vkey')!], logEnv);
    log = await startProcess(['serve', '--witness-quorum', '1', '--witness-interval', '100', '--publish-dir', publishDir], logEnv);
    procs.push(log);

    // requests 1.0.0 … 1.0.3 by the usual publisher, then 1.0.4 by another key (the key change the page highlights).
    for (let i = 0; i < 4; i++) await post(log.url, submissionBody(i));
    await post(log.url, formatSubmission(sign(artifact(4), keyPair('another publisher'))));
    await post(log.url, submissionBody(5, { name: 'urllib3', filename: 'urllib3-1.0.5-py3-none-any.whl' }));
    writeFileSync(join(filesDir, 'requests-1.0.2-py3-none-any.whl'), 'content 2'); // artifact(2)'s SHA-256
    writeFileSync(join(filesDir, 'unlogged.whl'), 'nobody logged this');
    policyText = await (await fetch(`${log.url}/v1/policy`)).text();

    // The static copy: the publish dir (written by the log after each commit) plus the explorer's files.
    cpSync(join(REPO_ROOT, 'dist', 'explorer'), join(publishDir, 'explorer'), { recursive: true });
    cpSync(join(REPO_ROOT, 'dist', 'explorer', 'index.html'), join(publishDir, 'index.html'));
    mkdirSync(publishDir, { recursive: true });
    staticServer = await startStaticServer(publishDir);

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await staticServer?.close();
    for (const p of procs) await p.stop('SIGKILL');
    for (const d of dirs) removeDir(d);
  });

  async function open(url: string, opts: { width?: number; policy?: string } = {}): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser!.newContext({ viewport: { width: opts.width ?? 1200, height: 900 } });
    if (opts.policy !== undefined) {
      await context.addInitScript(`window.localStorage.setItem('pkglog.policy', ${JSON.stringify(opts.policy)})`);
    }
    const page = await context.newPage();
    page.on('request', (r) => requested.push(r.url()));
    page.on('pageerror', (e) => requested.push(`pageerror: ${e.message}`));
    await page.goto(url);
    return { page, context };
  }

  it('home: the latest checkpoint, verified in the browser, with its witness and the cosignature age; recent entries', async () => {
    const { page, context } = await open(log.url);
    try {
      await page.getByText('signature and witness quorum verified in this browser').waitFor();
      const card = await page.locator('section.card').first().innerText();
      assert.match(card, /Tree size\s+6/);
      assert.match(card, new RegExp(ORIGIN));
      assert.match(card, /witness\.test\/explorer — cosigned \d+ (s|min) ago/);
      const rows = page.locator('table tbody tr');
      assert.equal(await rows.count(), 6);
      assert.match(await rows.first().innerText(), /#5[\s\S]*pypi\/urllib3/);
    } finally {
      await context.close();
    }
  });

  it('search by package, by file name and by SHA-256 (keyboard only); the package page highlights the publisher key change', async () => {
    const { page, context } = await open(log.url);
    try {
      // Keyboard: the skip link, the brand link, then the search box; Enter submits.
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate('document.activeElement?.id'), 'q');
      await page.keyboard.type('pypi/requests');
      await page.keyboard.press('Enter');
      await page.locator('h1', { hasText: 'pypi/requests' }).waitFor();
      assert.match(await page.locator('main').innerText(), /5 files, 2 publisher keys/);
      const changed = page.locator('tr.key-change');
      assert.equal(await changed.count(), 1);
      assert.match(await changed.innerText(), /#4[\s\S]*1\.0\.4[\s\S]*publisher key changed/);
      assert.equal(await page.getByRole('note').count(), 1);

      await page.fill('#q', 'requests-1.0.1-py3-none-any.whl');
      await page.press('#q', 'Enter');
      await page.locator('caption', { hasText: 'Entries for file name requests-1.0.1-py3-none-any.whl' }).waitFor();
      assert.equal(await page.locator('tbody tr').count(), 1);

      const sha = artifact(3).sha256;
      await page.fill('#q', sha);
      await page.press('#q', 'Enter');
      await page.locator('caption', { hasText: `SHA-256 ${sha}` }).waitFor();
      assert.match(await page.locator('tbody tr').innerText(), /#3/);

      await page.fill('#q', 'pypi/requests/9.9.9');
      await page.press('#q', 'Enter');
      await page.locator('[data-result="none"]').waitFor();

      // The entry page: every field, the publisher key in full, the inclusion proof verified here.
      await page.goto(`${log.url}/#/entry/4`);
      await page.locator('#proof [data-status="verified"]').waitFor();
      const text = await page.locator('main').innerText();
      assert.match(text, /Entry 4/);
      assert.match(text, new RegExp(keyPair('another publisher').publicKey.toString('base64').replace(/[+/]/g, '\\$&')));
      assert.match(text, /included in the tree of size 6, signed by example\.test\/explorer-log and cosigned by 1 witness/);
    } finally {
      await context.close();
    }
  });

  it('check a file: a logged file verifies (hashed with WebCrypto), an unlogged one is reported as not in the log', async () => {
    const { page, context } = await open(log.url);
    try {
      await page.setInputFiles('#file', join(filesDir, 'requests-1.0.2-py3-none-any.whl'));
      await page.locator('#check-result [data-status="verified"]').waitFor();
      const result = await page.locator('#check-result').innerText();
      assert.match(result, new RegExp(artifact(2).sha256));
      assert.match(result, /#2 pypi\/requests 1\.0\.2/);
      assert.match(result, /cosigned by 1 witness/);

      await page.setInputFiles('#file', join(filesDir, 'unlogged.whl'));
      await page.locator('#check-result [data-status="not-logged"]').waitFor();
      assert.match(await page.locator('#check-result').innerText(), /not in the log/);
    } finally {
      await context.close();
    }
  });

  it('a tampered proof (one hash byte changed on the way) is shown as failed, for a file check and on the entry page', async () => {
    const { page, context } = await open(log.url);
    try {
      await page.route('**/v1/entries/*/proof', async (route) => {
        const res = await route.fetch();
        const lines = (await res.text()).split('\n');
        // Line 3 is the first inclusion-proof hash (after the header and the index line): flip one base64 digit.
        const i = lines.findIndex((l, n) => n >= 2 && /^[A-Za-z0-9+/]{43}=$/.test(l));
        assert.ok(i > 0, 'the proof has a hash line to tamper with');
        lines[i] = (lines[i]![0] === 'A' ? 'B' : 'A') + lines[i]!.slice(1);
        await route.fulfill({ response: res, body: lines.join('\n') });
      });
      await page.setInputFiles('#file', join(filesDir, 'requests-1.0.2-py3-none-any.whl'));
      await page.locator('#check-result [data-status="failed"]').waitFor();
      assert.match(await page.locator('#check-result').innerText(), /verification failed/);

      await page.goto(`${log.url}/#/entry/2`);
      await page.locator('#proof [data-status="failed"]').waitFor();
      assert.match(await page.locator('#proof').innerText(), /verification failed/);
    } finally {
      await context.close();
    }
  });

  it('a phone-width screen (375 px): nothing wider than the screen; inputs are labelled', async () => {
    const { page, context } = await open(`${log.url}/#/package/pypi/requests`, { width: 375 });
    try {
      await page.locator('tr.key-change').waitFor();
      const { scroll, client } = await page.evaluate('({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })') as { scroll: number; client: number };
      assert.ok(scroll <= client, `page is ${scroll} px wide on a ${client} px screen`);
      for (const id of ['q', 'file', 'policy']) {
        const label = await page.evaluate(`document.querySelector('label[for="${id}"]')?.textContent?.trim() ?? ''`) as string;
        assert.ok(label.length > 5, `#${id} has a label`);
      }
    } finally {
      await context.close();
    }
  });

  it('the static tile layout (nginx, no JSON API): checkpoint and entries verified from tiles with a saved policy', async () => {
    // The publish dir catches up after each commit; wait until it has the whole tree.
    const deadline = Date.now() + 20_000;
    while (!(await (await fetch(`${staticServer!.url}/checkpoint`)).text()).includes('\n6\n')) {
      assert.ok(Date.now() < deadline, 'the publish dir reached size 6');
      await new Promise((r) => setTimeout(r, 100));
    }
    const { page, context } = await open(`${staticServer!.url}/index.html`, { policy: policyText });
    try {
      await page.getByText('signature and witness quorum verified in this browser').waitFor();
      assert.match(await page.locator('#mode').innerText(), /Static tile layout/);
      assert.equal(await page.locator('table tbody tr').count(), 6);
      await page.goto(`${staticServer!.url}/index.html#/entry/3`);
      await page.locator('#proof [data-status="verified"]').waitFor();
      assert.match(await page.locator('#proof').innerText(), /included in the tree of size 6/);
    } finally {
      await context.close();
    }
  });

  it('made no request to any other origin', () => {
    const allowed = [log.url, staticServer!.url].map((u) => new URL(u).origin);
    const others = requested.filter((u) => u.startsWith('pageerror') || !allowed.includes(new URL(u).origin));
    assert.ok(requested.length > 20, `saw ${requested.length} requests`);
    assert.deepEqual(others, []);
  });
});
