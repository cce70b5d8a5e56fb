/**
 * End to end, issue 9 "tiles-only clients": a real log with entries, its tlog-tiles read API (checkpoint, hash tiles,
 * entry bundles) copied into a directory served by a static file server on 127.0.0.1 — a real nginx started by the
 * test when the machine has one, else a node:http static server — and then `pkglog verify` (online: --index, or a
 * tlog-proof), `pkglog proof`, `pkglog monitor` and `pkglog audit` against the static URL only, which has no pkglog
 * JSON endpoint at all. A tampered static tile makes each of them fail, naming the tile.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestLog, removeDir } from '../support/log-harness.ts';
import { REGISTRY, REGISTRY_NAME, artifact, submissionBody } from '../support/submissions.ts';
import { startStaticServer, copyTiles, type StaticServer } from '../support/static-server.ts';
import { distStaleness } from '../support/process.ts';
import { encodeBase64 } from '../../core/encoding.ts';
import { planConsistencyProof } from '../../core/merkle.ts';
import { planRangesRead } from '../../core/tile-hashes.ts';
import { formatTilePath, TILE_WIDTH } from '../../core/tiles.ts';
import { cli, runAsync } from '../client/helpers.ts';

describe('e2e: tiles-only clients against a static tlog-tiles URL', function () {
  this.timeout(180_000);
  let log: Awaited<ReturnType<typeof startTestLog>>;
  let web: StaticServer;
  let tmp: string;
  let site: string;
  const registryKey = `${REGISTRY_NAME}=${encodeBase64(REGISTRY.publicKey)}`;

  async function submit(from: number, to: number): Promise<void> {
    for (let i = from; i < to; i += 50) {
      const rs = await Promise.all(
        Array.from({ length: Math.min(50, to - i) }, (_, k) =>
          fetch(`${log.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i + k)) }),
        ),
      );
      for (const r of rs) assert.equal(r.status, 200, await r.text());
    }
  }

  /** The artifact of entry i as a file (its bytes hash to the logged sha256), and the package flags for it. */
  function artifactFile(i: number): string[] {
    const a = artifact(i);
    const path = join(tmp, a.filename);
    writeFileSync(path, `content ${i}`);
    return [path, '--ecosystem', a.ecosystem, '--name', a.name, '--version', a.version];
  }

  const trust = (state: string) => ['--log', web.url, '--log-key', log.vkey, '--registry-key', registryKey, '--state-dir', join(tmp, state)];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'pkglog-e2e-static-'));
    site = join(tmp, 'site');
    log = await startTestLog();
    await submit(0, 600);
    assert.equal(await copyTiles(log.url, site), 600);
    web = await startStaticServer(site);
    // Said, not silent: which static server this run used.
    console.log(`      (static tiles served by ${web.kind} at ${web.url})`);
  });
  after(async () => {
    await web?.close();
    await log?.close();
    if (log) removeDir(log.dataDir);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the static URL has tiles and no pkglog JSON endpoint', async () => {
    assert.equal((await fetch(`${web.url}/tile/0/000`)).status, 200);
    assert.equal((await fetch(`${web.url}/tile/0/002.p/88`)).status, 200);
    for (const path of ['v1/lookup/sha256/00', 'v1/entries/5/proof', 'v1/proof/consistency?old=1&size=2', 'vkey']) {
      const r = await fetch(`${web.url}/${path}`);
      await r.arrayBuffer();
      assert.equal(r.status, 404, path);
    }
  });

  it('audit and monitor work against the static URL alone', async () => {
    const a = await cli(['audit', ...trust('state-a'), '--quiet', '--json']);
    assert.equal(a.code, 0, a.out + a.err);
    assert.equal(a.json().entries, 600);
    const m = await cli(['monitor', ...trust('state'), '--quiet', '--watch', 'pypi/requests', '--json']);
    assert.equal(m.code, 0, m.out + m.err);
    assert.equal(m.json().to, 600);
  });

  it('verify --index (online, tiles only) and proof --index, then verify --proof offline', async () => {
    const v = await cli(['verify', ...artifactFile(5), ...trust('state'), '--index', '5', '--json']);
    assert.equal(v.code, 0, v.out + v.err);
    const checks = v.json().checks as Array<{ id: string; status: string; message: string }>;
    assert.match(checks.find((c) => c.id === 'lookup')!.message, /entry 5 and its inclusion proof read from the tiles/);
    assert.equal(checks.find((c) => c.id === 'inclusion')!.status, 'pass');
    assert.equal(checks.find((c) => c.id === 'consistency')!.status, 'pass'); // same size as monitor saved
    assert.equal(checks.find((c) => c.id === 'key-continuity')!.status, 'skip'); // needs a lookup service
    const out = join(tmp, 'entry-300.tlog-proof');
    const p = await cli(['proof', ...artifactFile(300), ...trust('state'), '--index', '300', '--out', out]);
    assert.equal(p.code, 0, p.out + p.err);
    assert.match(readFileSync(out, 'utf8'), /^c2sp\.org\/tlog-proof@v1\n/);
    const off = await cli(['verify', ...artifactFile(300), '--log-key', log.vkey, '--registry-key', registryKey, '--proof', out, '--offline', '--no-state']);
    assert.equal(off.code, 0, off.out + off.err);
  });

  it('verify without --index or --proof says the static URL has no lookup service (exit 2)', async () => {
    const v = await cli(['verify', ...artifactFile(7), ...trust('state')]);
    assert.equal(v.code, 2, v.out + v.err);
    assert.match(v.out, /offers no lookup service .*give the entry's --index N, or --proof FILE/);
  });

  it('after the log grows: monitor proves consistency from tiles; verify --index as a real process against the static server', async function () {
    await submit(600, 700);
    assert.equal(await copyTiles(log.url, site), 700);
    const m = await cli(['monitor', ...trust('state'), '--quiet', '--json']);
    assert.equal(m.code, 0, m.out + m.err);
    const checks = m.json().checks as Array<{ id: string; message: string }>;
    assert.match(checks.find((c) => c.id === 'consistency')!.message, /consistent with the saved size 600; state advanced/);
    const stale = distStaleness();
    assert.equal(stale, undefined, `dist/ is stale (${stale}): run npm run build (npm test does)`);
    const v = await runAsync(['verify', ...artifactFile(650), ...trust('state'), '--index', '650']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /entry 650 is included in the checkpoint of size 700/);
  });

  it('a tampered static tile: verify, audit and monitor fail with a clear message naming the tile', async () => {
    await submit(700, 800);
    assert.equal(await copyTiles(log.url, site), 800);
    // A full level-0 tile that the consistency proof 700 → 800 reads (so monitor's saved state at 700 meets it too).
    const plan = planRangesRead(planConsistencyProof(700, 800), 800);
    const victim = plan.tiles.find((t) => t.level === 0 && t.width === TILE_WIDTH);
    assert.ok(victim, plan.tiles.map(formatTilePath).join(' '));
    const path = formatTilePath(victim);
    const file = join(site, path);
    const bytes = readFileSync(file);
    bytes[40] ^= 0x01;
    writeFileSync(file, bytes);

    const index = victim.index * TILE_WIDTH + 3;
    const v = await cli(['verify', ...artifactFile(index), ...trust('state-v'), '--index', String(index)]);
    assert.equal(v.code, 1, v.out + v.err);
    assert.match(v.out, new RegExp(`hash tile ${path} does not match the signed tree of size 800 .*tampered or corrupt tile`));

    const a = await cli(['audit', ...trust('state-a2'), '--quiet']);
    assert.equal(a.code, 8, a.out + a.err);
    assert.match(a.out, new RegExp(`hash tile ${path} served by the log differs from the tile recomputed from its entry bundles`));

    const m = await cli(['monitor', ...trust('state'), '--quiet']);
    assert.equal(m.code, 8, m.out + m.err);
    assert.match(m.out, new RegExp(`hash tile ${path} does not match the signed tree of size 800 .*tampered or corrupt tile`));
  });
});
