/**
 * The explorer page: the latest checkpoint and its witnesses, recent entries, search, entry and package pages, and
 * "check a file" (hashed with WebCrypto, looked up, its proof verified here with core code). Routes are URL
 * fragments (#/entry/12, #/package/pypi/requests, #/search?q=…), so the page works from any static file server too.
 * Nothing from the log is inserted as HTML: every value goes through textContent.
 */
import { LogData, errorMessage, type EntryView } from './data.ts';
import { publisherKeyChanges, type VerifiedEntryView } from './verify.ts';

type Child = Node | string | null | undefined | false;

function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}

const $ = (id: string) => document.getElementById(id)!;
const data = new LogData();
const store = (() => {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
})();

function age(seconds: number): string {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function time(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function status(ok: boolean, text: string): HTMLElement {
  return h('p', { class: ok ? 'ok' : 'bad', 'data-status': ok ? 'verified' : 'failed' }, ok ? '✓ ' : '✗ ', text);
}

function entryLink(e: EntryView): HTMLElement {
  return h('a', { href: `#/entry/${e.index}` }, `#${e.index}`);
}

function packageLink(e: Pick<EntryView, 'ecosystem' | 'name'>): HTMLElement {
  return h('a', { href: `#/package/${encodeURIComponent(e.ecosystem)}/${encodeURIComponent(e.name)}` }, `${e.ecosystem}/${e.name}`);
}

function entriesTable(entries: EntryView[], caption: string, changes?: boolean[]): HTMLElement {
  const rows = entries.map((e, i) =>
    h('tr', changes?.[i] ? { class: 'key-change' } : {},
      h('td', { 'data-label': 'Entry' }, entryLink(e)),
      h('td', { 'data-label': 'Package' }, packageLink(e)),
      h('td', { 'data-label': 'Version' }, e.version),
      h('td', { 'data-label': 'File', class: 'mono' }, e.filename),
      h('td', { 'data-label': 'Publisher key', class: 'mono' }, e.publisherKey.slice(0, 12) + '…', changes?.[i] ? h('strong', { class: 'badge' }, ' publisher key changed') : null),
      h('td', { 'data-label': 'Logged' }, time(e.integratedTime)),
    ));
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...['Entry', 'Package', 'Version', 'File', 'Publisher key', 'Logged'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows));
}

function show(...nodes: Child[]): void {
  const main = $('main');
  main.replaceChildren(...nodes.filter((n): n is Node | string => n !== null && n !== undefined && n !== false));
}

function failure(e: unknown): HTMLElement {
  return h('p', { class: 'bad', role: 'alert' }, '✗ ', errorMessage(e));
}

async function home(): Promise<void> {
  const cp = await data.checkpoint();
  const card = h('section', { 'aria-labelledby': 'cp-h', class: 'card' }, h('h2', { id: 'cp-h' }, 'Latest checkpoint'));
  const dl = h('dl', {});
  const row = (k: string, v: Child, mono = false) => dl.append(h('dt', {}, k), h('dd', mono ? { class: 'mono' } : {}, v));
  row('Tree size', String(cp.treeSize));
  if (cp.verified) {
    row('Origin', cp.verified.origin);
    row('Root hash', cp.verified.rootHash, true);
    row('Signed by', cp.verified.logKey);
  }
  card.append(dl);
  if (cp.verified) {
    card.append(status(true, `signature and witness quorum verified in this browser (${data.policySource?.from === 'saved' ? 'your saved policy' : "the log's published policy"})`));
    const ws = cp.verified.cosigners;
    card.append(h('h3', {}, 'Witnesses'), ws.length === 0
      ? h('p', {}, 'No witness cosignature counted by the policy.')
      : h('ul', { class: 'witnesses' }, ...ws.map((w) => h('li', {}, '✓ ', h('span', { class: 'mono' }, w.name), ` — cosigned ${age(w.timestamp)}`))));
  } else card.append(status(false, `checkpoint not verified: ${cp.error}`));
  card.append(h('details', {}, h('summary', {}, 'The checkpoint as served'), h('pre', {}, cp.note)));
  const recent = await data.recent(cp.treeSize, 10);
  show(card, recent.length === 0 ? h('p', {}, 'The log is empty.') : entriesTable(recent, 'Recent entries'));
}

async function entryPage(index: number): Promise<void> {
  const e = await data.entry(index, (await data.checkpoint()).treeSize);
  const dl = h('dl', {});
  const row = (k: string, v: Child, mono = false) => dl.append(h('dt', {}, k), h('dd', mono ? { class: 'mono' } : {}, v));
  row('Index', String(e.index));
  row('Package', packageLink(e));
  row('Version', e.version);
  row('File name', e.filename, true);
  row('SHA-256', e.sha256, true);
  row('Publisher key', e.publisherKey, true);
  row('Registry', e.registryName);
  row('Logged', time(e.integratedTime));
  const proof = h('section', { 'aria-labelledby': 'proof-h', id: 'proof' }, h('h2', { id: 'proof-h' }, 'Inclusion proof'));
  show(h('h1', {}, `Entry ${e.index}`), dl, proof);
  try {
    const v = await data.verifiedEntry(index);
    proof.append(status(true, verifiedText(v)), proofDetails(v));
  } catch (err) {
    proof.append(status(false, `verification failed: ${errorMessage(err)}`));
  }
}

function verifiedText(v: VerifiedEntryView): string {
  const n = v.checkpoint.cosigners.length;
  return `included in the tree of size ${v.checkpoint.treeSize}, signed by ${v.checkpoint.logKey} and cosigned by ${n} witness${n === 1 ? '' : 'es'} (checked in this browser)`;
}

function proofDetails(v: VerifiedEntryView): HTMLElement {
  return h('details', {}, h('summary', {}, `${v.inclusionProof.length} proof hashes`),
    h('p', {}, 'Leaf hash: ', h('span', { class: 'mono' }, v.leafHash)),
    h('ol', { start: '0', class: 'mono' }, ...v.inclusionProof.map((p) => h('li', {}, p))));
}

async function packagePage(ecosystem: string, name: string): Promise<void> {
  const history = await data.lookupPackage(ecosystem, name);
  const changes = publisherKeyChanges(history);
  const keys = new Set(history.map((e) => e.publisherKey));
  show(
    h('h1', {}, `${ecosystem}/${name}`),
    h('p', {}, `${history.length} file${history.length === 1 ? '' : 's'}, ${keys.size} publisher key${keys.size === 1 ? '' : 's'}.`),
    changes.some(Boolean) ? h('p', { class: 'warn', role: 'note' }, '⚠ The publisher key changed in this history: the highlighted entries were signed by a different key than the one before them.') : null,
    history.length === 0 ? h('p', {}, 'No entries for this package.') : entriesTable(history, 'History (in log order)', changes),
  );
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** The package a file name belongs to, by the ecosystems' naming rules (wheel, sdist, npm tarball). */
function packageOfFile(filename: string): Array<{ ecosystem: string; name: string }> {
  const out: Array<{ ecosystem: string; name: string }> = [];
  const wheel = /^([A-Za-z0-9_.]+)-[^-]+(-[^-]+)?-[^-]+-[^-]+-[^-]+\.whl$/.exec(filename);
  const sdist = /^(.+?)-\d[^-]*\.(tar\.gz|zip|tar\.bz2)$/.exec(filename);
  const pypiName = (wheel ?? sdist)?.[1];
  if (pypiName) out.push({ ecosystem: 'pypi', name: pypiName.toLowerCase().replace(/[-_.]+/g, '-') });
  const npm = /^(.+?)-\d+\.\d+\.\d+[^/]*\.tgz$/.exec(filename);
  if (npm) out.push({ ecosystem: 'npm', name: npm[1]! });
  return out;
}

async function search(q: string): Promise<void> {
  q = q.trim();
  let results: EntryView[] = [];
  let what: string;
  if (SHA256_HEX.test(q)) {
    what = `SHA-256 ${q.toLowerCase()}`;
    results = await data.lookupSha256(q);
  } else if (/^[a-z0-9-]+\/[^/\s]+(\/[^/\s]+)?$/.test(q)) {
    const [ecosystem, name, version] = q.split('/') as [string, string, string | undefined];
    if (version === undefined) {
      location.hash = `#/package/${encodeURIComponent(ecosystem)}/${encodeURIComponent(name)}`;
      return;
    }
    what = `${ecosystem}/${name} version ${version}`;
    results = await data.lookupPackage(ecosystem, name, version);
  } else {
    what = `file name ${q}`;
    for (const p of packageOfFile(q)) results.push(...(await data.lookupPackage(p.ecosystem, p.name)).filter((e) => e.filename === q));
  }
  show(h('h1', {}, 'Search'), results.length === 0
    ? h('p', { 'data-result': 'none' }, `No entry for ${what}.`)
    : entriesTable(results, `Entries for ${what}`));
}

async function route(focus = true): Promise<void> {
  const hash = decodeURI(location.hash.replace(/^#/, '')) || '/';
  const [path, query] = hash.split('?', 2) as [string, string | undefined];
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  show(h('p', { class: 'loading' }, 'Loading…'));
  try {
    if (parts[0] === 'entry' && parts.length === 2 && /^\d+$/.test(parts[1]!)) await entryPage(Number(parts[1]));
    else if (parts[0] === 'package' && parts.length === 3) await packagePage(parts[1]!, parts[2]!);
    else if (parts[0] === 'search') await search(new URLSearchParams(query ?? '').get('q') ?? '');
    else await home();
  } catch (e) {
    show(failure(e));
  }
  // After a navigation, the new content is where keyboard and screen-reader users continue (not on first load).
  if (focus) $('main').focus({ preventScroll: true });
}

async function hashFile(file: File): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function checkFile(file: File): Promise<void> {
  const out = $('check-result');
  out.replaceChildren(h('p', { class: 'loading' }, `Hashing ${file.name}…`));
  try {
    const sha256 = await hashFile(file);
    const found = await data.lookupSha256(sha256);
    const head = h('p', {}, h('span', {}, file.name), ' — SHA-256 ', h('span', { class: 'mono', 'data-sha256': sha256 }, sha256));
    if (found.length === 0) {
      out.replaceChildren(head, h('p', { class: 'bad', 'data-status': 'not-logged' }, '✗ This file is not in the log. Do not trust it as a published artifact.'));
      return;
    }
    const items = await Promise.all(found.map(async (e) => {
      try {
        const v = await data.verifiedEntry(e.index);
        if (v.entry.sha256 !== sha256) throw new Error(`the proof is for another file (SHA-256 ${v.entry.sha256})`);
        return h('li', {}, status(true, `logged as `), entryLink(e), ` ${e.ecosystem}/${e.name} ${e.version} (${e.filename}): ${verifiedText(v)}`);
      } catch (err) {
        return h('li', {}, status(false, `entry ${e.index}: verification failed: ${errorMessage(err)}`));
      }
    }));
    out.replaceChildren(head, h('ul', { class: 'check-list' }, ...items));
  } catch (e) {
    out.replaceChildren(failure(e));
  }
}

function setupTrust(): void {
  const area = $('policy') as HTMLTextAreaElement;
  const source = $('policy-source');
  const describe = () => {
    area.value = data.policySource?.text ?? '';
    source.textContent = data.policySource
      ? data.policySource.from === 'saved' ? 'Using the policy saved in this browser.' : "Using the policy the log publishes about itself (save your own to pin the keys)."
      : data.policyError ?? '';
  };
  describe();
  $('trust-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      if (store) LogData.savePolicy(store, area.value.endsWith('\n') ? area.value : area.value + '\n');
      await data.init(store);
      describe();
      await route();
    } catch (e) {
      source.textContent = `Not saved: ${errorMessage(e)}`;
    }
  });
  $('reset-policy').addEventListener('click', async () => {
    if (store) LogData.savePolicy(store, undefined);
    await data.init(store);
    describe();
    await route();
  });
}

function setupCheck(): void {
  const input = $('file') as HTMLInputElement;
  input.addEventListener('change', () => {
    const f = input.files?.[0];
    if (f) void checkFile(f);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    const f = (ev as DragEvent).dataTransfer?.files?.[0];
    if (f) void checkFile(f);
  });
}

async function start(): Promise<void> {
  await data.init(store);
  $('mode').textContent = data.mode === 'api' ? '' : 'Static tile layout: search and file checks need the log\'s lookup API.';
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = ($('q') as HTMLInputElement).value;
    location.hash = `#/search?q=${encodeURIComponent(q)}`;
  });
  setupTrust();
  setupCheck();
  window.addEventListener('hashchange', () => void route());
  await route(false);
  document.body.dataset.ready = 'true';
}

void start();
