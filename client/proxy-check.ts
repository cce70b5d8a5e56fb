/**
 * The proxy's gate (`pkglog proxy`, `pkglog verify-lock`): is this artifact (ecosystem, name, version, filename,
 * SHA-256) the one in the log, and does it pass every check of `pkglog verify` — the entry matches the package,
 * version and filename, both signatures verify, the entry is included in a checkpoint that satisfies the policy,
 * the checkpoint is consistent with the saved state (never a rolled-back or forked log), no other publisher key
 * signed earlier entries of the package (key continuity), and (--min-age) it was cosigned long enough ago.
 * Results are cached (bounded LRU): passes for `passTtlMs`, failures briefly (a young artifact grows old).
 */
import { LRUCache } from 'lru-cache';
import { isPkglogError } from '../core/errors.ts';
import type { Entry } from '../core/entry.ts';
import { EXIT, type ExitCode } from './report.ts';
import { verifyArtifact, type LogCheckOptions } from './verify.ts';
import { packageEntries } from './key-continuity.ts';

export interface Artifact4 {
  ecosystem: string;
  name: string;
  version: string;
  filename: string;
}

export type Verdict =
  | { ok: true; index: number; entry: Entry; message: string }
  | { ok: false; exitCode: ExitCode; check: string; message: string; evidence?: string };

export interface GateOptions extends LogCheckOptions {
  now: () => number;
  cacheSize?: number;
  passTtlMs?: number;
  failTtlMs?: number;
}

interface Logged {
  index: number;
  entry: Entry;
}

export function describe(a: Artifact4): string {
  return `${a.ecosystem}/${a.name} ${a.version} ${a.filename}`;
}

export class ArtifactGate {
  private readonly verdicts: LRUCache<string, Verdict>;
  /** A package's entries (one lookup serves an index page's files), kept a few seconds. */
  private readonly packages: LRUCache<string, Promise<Logged[]>>;
  private readonly failTtlMs: number;
  /** Set once a fork is found: from then on nothing passes (the evidence is saved; restart after investigating). */
  fork?: string;

  constructor(private readonly opts: GateOptions) {
    this.verdicts = new LRUCache({ max: opts.cacheSize ?? 10_000, ttl: opts.passTtlMs ?? 300_000 });
    this.packages = new LRUCache({ max: 1000, ttl: 3_000 });
    this.failTtlMs = opts.failTtlMs ?? 5_000;
  }

  /** The log's entries of a package (decoded from their leaves; undecodable ones are ignored). */
  logged(ecosystem: string, name: string): Promise<Logged[]> {
    const key = `${ecosystem}\n${name}`;
    let p = this.packages.get(key);
    if (p === undefined) {
      p = packageEntries(this.opts.log, ecosystem, name).then((r) => r.entries);
      p.catch(() => this.packages.delete(key));
      this.packages.set(key, p);
    }
    return p;
  }

  /** The logged entry for this file (by filename), or undefined. */
  async entryFor(a: Artifact4): Promise<Logged | undefined> {
    const all = await this.logged(a.ecosystem, a.name);
    return all.find((l) => l.entry.filename === a.filename && l.entry.version === a.version) ?? all.find((l) => l.entry.filename === a.filename);
  }

  /**
   * Checks an artifact. `sha256` is the hash of the bytes to hand out (or, for index pages, the one the upstream
   * declares); undefined checks the logged entry alone (the bytes are checked when they are downloaded).
   */
  async check(a: Artifact4, sha256?: string): Promise<Verdict> {
    if (this.fork !== undefined) return { ok: false, exitCode: EXIT.FORK, check: 'consistency', message: this.fork };
    let found: Logged | undefined;
    try {
      found = await this.entryFor(a);
    } catch (e) {
      return { ok: false, exitCode: EXIT.NETWORK, check: 'lookup', message: `cannot look up ${a.ecosystem}/${a.name} in the log: ${(e as Error).message}` };
    }
    if (found === undefined) {
      return { ok: false, exitCode: EXIT.VERIFY_FAILED, check: 'lookup', message: `${describe(a)} is not in the log (never logged)` };
    }
    const { entry, index } = found;
    if (entry.version !== a.version) {
      return { ok: false, exitCode: EXIT.VERIFY_FAILED, check: 'package', message: `${a.filename} is logged as version ${entry.version} of ${a.ecosystem}/${a.name} (entry ${index}), not as version ${a.version}` };
    }
    const want = sha256 ?? entry.sha256;
    if (want !== entry.sha256) {
      return {
        ok: false,
        exitCode: EXIT.VERIFY_FAILED,
        check: 'file-hash',
        message: `${describe(a)}: the upstream file has sha256 ${want} but the log has ${entry.sha256} (entry ${index}): the file was replaced after it was logged`,
      };
    }
    const key = `${describe(a)}\n${want}`;
    const hit = this.verdicts.get(key);
    if (hit !== undefined) return hit;
    const verdict = await this.verify(a, want, index);
    if (verdict.ok) this.verdicts.set(key, verdict);
    else if (verdict.exitCode !== EXIT.NETWORK) this.verdicts.set(key, verdict, { ttl: this.failTtlMs });
    return verdict;
  }

  private async verify(a: Artifact4, sha256: string, index: number): Promise<Verdict> {
    const { opts } = this;
    let evidence: string | undefined;
    let report;
    try {
      report = await verifyArtifact({
        fileSha256: sha256,
        want: a,
        policy: opts.policy,
        registries: opts.registries,
        index,
        log: opts.log,
        ...(opts.state !== undefined
          ? { state: opts.state, onFork: (f) => (evidence = f.evidence ? opts.state!.saveEvidence(f.origin, f.evidence, opts.now()) : undefined) }
          : {}),
        nowMs: opts.now(),
        ...(opts.minAgeSeconds !== undefined ? { minAgeSeconds: opts.minAgeSeconds } : {}),
        strictKeys: opts.strictKeys,
      });
    } catch (e) {
      if (isPkglogError(e)) return { ok: false, exitCode: EXIT.VERIFY_FAILED, check: 'error', message: e.message };
      throw e;
    }
    const failed = report.checks.find((c) => c.status === 'fail');
    if (report.ok || failed === undefined) {
      const p = report.data.entry as { index: number } | undefined;
      const logged = (await this.entryFor(a))!;
      return { ok: true, index: p?.index ?? index, entry: logged.entry, message: `${describe(a)} verified (entry ${index})` };
    }
    const message = `${describe(a)}: ${failed.id}: ${failed.message.split('\n')[0]}`;
    if (report.exitCode === EXIT.FORK) {
      this.fork = `the log forked (refusing everything until restarted): ${failed.message.split('\n')[0]}`;
      this.verdicts.clear();
    }
    return { ok: false, exitCode: report.exitCode, check: failed.id, message, ...(evidence !== undefined ? { evidence } : {}) };
  }
}
