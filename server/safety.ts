/**
 * The log never signs a checkpoint that contradicts one it already published, whatever happened to its disk.
 *
 * - Start-up (bounded work, whatever the log's size): the newest checkpoint's signature verifies and matches the tree
 *   row; the stored right-edge tiles reproduce the stored root; the newest level-0 tile matches the leaf hashes of its
 *   ≤ 256 entries re-hashed from the entries table; the newest cosignatures verify; and the database is not behind the
 *   high-water mark — the newest checkpoint the log made public, kept outside the database next to the key.
 * - Every batch: before signing, the database file is still the one opened (inode), the tree has not fallen behind
 *   the high-water mark, and the old root recomputed from the right-edge tiles equals the stored root (the sequencer
 *   checks that); after the commit, the high-water mark is written and fsynced BEFORE anything is published.
 * - Every second: the database file is still there and still the same file; otherwise the guard stops signing for
 *   good (submissions get 503) and reports one fatal error (the `serve` command then exits non-zero).
 * Every refusal is one PkglogError('unsafe_state': HTTP 503, exit 9) naming what disagrees and what the operator can do.
 */
import { fail } from '../core/errors.ts';
import { parseCheckpoint } from '../core/checkpoint.ts';
import { integrate, rightEdgeTiles } from '../core/integrate.ts';
import { leafHash } from '../core/hash.ts';
import { verifyNote, type Verifier } from '../core/note.ts';
import { formatTilePath, TILE_WIDTH } from '../core/tiles.ts';
import type { Hash } from '../core/types.ts';
import { readHighWaterMark, writeHighWaterMark } from '../log-store/high-water-mark.ts';
import type { Store, TreeState } from '../log-store/types.ts';

export const SAFETY_DOC = 'docs/operations.md#safety';

/** A checkpoint the log signed: its size, root and the signed note (log signature only). */
export interface SignedState {
  treeSize: number;
  rootHash: Hash;
  note: string;
}

function refuse(what: string, todo: string): never {
  fail('unsafe_state', `refusing to sign: ${what}. ${todo} (see ${SAFETY_DOC}).`);
}

/** Verifies a log-signed checkpoint note of `origin`; throws 'unsafe_state' naming `where`. */
export function verifyLogCheckpoint(note: string, verifier: Verifier, origin: string, where: string): SignedState {
  let cp;
  try {
    cp = parseCheckpoint(verifyNote(note, [verifier]).note.text);
  } catch (e) {
    return refuse(`${where} is not a checkpoint signed by this log's key (${(e as Error).message})`,
      'The file or row was damaged or does not belong to this log; run `pkglog fsck` and restore it from a good copy');
  }
  if (cp.origin !== origin) refuse(`${where} is for origin ${cp.origin}, not ${origin}`, 'Check the data dir and key file belong together');
  return { treeSize: cp.treeSize, rootHash: cp.rootHash, note };
}

/** The root of the tree of `treeSize` recomputed from its stored right-edge tiles (what integration reads). */
export async function rightEdgeRoot(store: Store, treeSize: number): Promise<Hash> {
  const edge = rightEdgeTiles(treeSize);
  const data = await store.readTiles(edge);
  return integrate(treeSize, (t) => {
    const i = edge.findIndex((e) => e.level === t.level && e.index === t.index && e.width === t.width);
    const d = i < 0 ? undefined : data[i];
    if (d === undefined) fail('unsafe_state', `the stored tree of size ${treeSize} has no ${formatTilePath(t)}`);
    return d;
  }, []).rootHash;
}

export interface GuardOptions {
  store: Store;
  verifier: Verifier;
  origin: string;
  /** The high-water mark file (log-store/high-water-mark.ts). */
  hwmFile: string;
  /** Cosigner keys of the configured witnesses (their stored cosignatures are checked at start-up). */
  witnessVerifiers?: Verifier[];
  log: (msg: string) => void;
  /** Called once when the guard stops for good (the database file was deleted or replaced, …). */
  onFatal?: (message: string) => void;
  /** How often to check that the database file is still the one opened (default 1000 ms; 0: only before commits). */
  watchIntervalMs?: number;
}

export class SigningGuard {
  private readonly o: GuardOptions;
  /** The newest checkpoint made public (the high-water mark as written). */
  private hwm: SignedState;
  private stopped: string | undefined;
  private waitingFor: string | undefined = 'start-up checks';
  private timer: NodeJS.Timeout | undefined;

  private constructor(o: GuardOptions, hwm: SignedState) {
    this.o = o;
    this.hwm = hwm;
  }

  /**
   * Runs the start-up checks against an opened, initialized store; throws 'unsafe_state' (one message naming what
   * disagrees and what to do) when the log must not sign. Brings the high-water mark up to the database when the
   * database is ahead (a crash between commit and high-water mark write) or the file is new.
   * The guard does not allow signing until allowSigning() (after the witnesses were asked).
   */
  static async open(o: GuardOptions): Promise<SigningGuard> {
    const guard = new SigningGuard(o, await SigningGuard.consistentChecks(o));
    guard.watch();
    return guard;
  }

  /**
   * The start-up checks again, against the database as it is now (a front end that takes the sequencer lease runs
   * them before it signs anything: server/shared-sequencer.ts). Throws 'unsafe_state' like open().
   */
  async recheck(): Promise<void> {
    if (this.stopped !== undefined) fail('unsafe_state', `the log has stopped signing: ${this.stopped}`);
    this.hwm = await SigningGuard.consistentChecks(this.o);
  }

  /**
   * A front end that does not sequence is about to serve `state`, committed by another one (several front ends on one
   * database): its signature must verify, the database must still hold the same root at this front end's high-water
   * mark, and it must not be behind it; then it becomes the high-water mark (written before it is served).
   */
  async observe(state: TreeState): Promise<void> {
    if (this.stopped !== undefined) fail('unsafe_state', `the log has stopped signing: ${this.stopped}`);
    const hwm = this.hwm;
    if (state.treeSize === hwm.treeSize && state.rootHash.equals(hwm.rootHash)) return;
    const { store, verifier, origin } = this.o;
    const cp = verifyLogCheckpoint(state.checkpoint, verifier, origin, `the tree row's checkpoint in ${store.location}`);
    const atMark = await store.checkpoint(hwm.treeSize);
    const stored = atMark === undefined ? undefined : verifyLogCheckpoint(atMark, verifier, origin, `the checkpoint of size ${hwm.treeSize} in ${store.location}`);
    if (cp.treeSize !== state.treeSize || !cp.rootHash.equals(state.rootHash) || state.treeSize <= hwm.treeSize ||
      stored === undefined || !stored.rootHash.equals(hwm.rootHash)) {
      this.stop(`the database ${store.location} is at size ${state.treeSize}, which does not extend the size ${hwm.treeSize} this front end ` +
        `already served (high-water mark ${this.o.hwmFile}): refusing to serve or sign it (see ${SAFETY_DOC})`);
      fail('unsafe_state', `the log has stopped signing: ${this.stopped}`);
    }
    if (state.treeSize > this.hwm.treeSize) this.publish(state);
  }

  /**
   * The start-up checks read several rows one after the other; on a database that another front end's sequencer
   * commits to meanwhile they may see two trees. A refusal is believed only when the tree did not move during the
   * checks (else they run again, a few times).
   */
  private static async consistentChecks(o: GuardOptions): Promise<SignedState> {
    for (let attempt = 1; ; attempt++) {
      const before = (await o.store.treeState())?.treeSize;
      try {
        return await SigningGuard.startUpChecks(o);
      } catch (e) {
        const after = (await o.store.treeState())?.treeSize;
        if (after === before || attempt >= 10) throw e;
      }
    }
  }

  private static async startUpChecks(o: GuardOptions): Promise<SignedState> {
    const { store, verifier, origin, hwmFile } = o;
    const tree = await store.treeState();
    if (tree === undefined) fail('internal', 'store is not initialized');
    const dbName = `the database ${store.location}`;

    // The tree row and its checkpoint.
    const cp = verifyLogCheckpoint(tree.checkpoint, verifier, origin, `the tree row's checkpoint in ${store.location}`);
    if (cp.treeSize !== tree.treeSize || !cp.rootHash.equals(tree.rootHash)) {
      refuse(`${dbName}: the tree row (size ${tree.treeSize}) disagrees with its own signed checkpoint (size ${cp.treeSize})`,
        'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
    }
    if ((await store.checkpoint(tree.treeSize)) !== tree.checkpoint) {
      refuse(`${dbName}: the checkpoints table does not hold the tree row's checkpoint of size ${tree.treeSize}`,
        'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
    }
    const lastCp = await store.lastCheckpointSize();
    if (lastCp !== tree.treeSize) {
      refuse(`${dbName}: it holds a checkpoint of size ${lastCp}, but its tree row is at size ${tree.treeSize}`,
        'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
    }
    const lastEntry = await store.lastEntryIndex();
    if (lastEntry !== tree.treeSize - 1) {
      refuse(`${dbName}: its newest entry is at index ${lastEntry}, but its tree has size ${tree.treeSize}`,
        'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
    }

    // The right edge: what the next integration reads must reproduce the stored root.
    let edgeRoot: Hash;
    try {
      edgeRoot = await rightEdgeRoot(store, tree.treeSize);
    } catch (e) {
      return refuse(`${dbName}: its right-edge tiles cannot be read (${(e as Error).message})`,
        'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
    }
    if (!edgeRoot.equals(tree.rootHash)) {
      refuse(`${dbName}: its right-edge hash tiles do not reproduce the root of its own tree of size ${tree.treeSize}`,
        'A stored tile is damaged; run `pkglog fsck --data-dir DIR` to locate it and restore the database from a good copy');
    }

    // The newest level-0 tile against its entries, re-hashed.
    if (tree.treeSize > 0) {
      const index = Math.floor((tree.treeSize - 1) / TILE_WIDTH);
      const width = tree.treeSize - index * TILE_WIDTH;
      const data = (await store.readTile({ level: 0, index, width }))!;
      const rows = await store.entryRows(index * TILE_WIDTH, tree.treeSize);
      if (rows.length !== width) {
        refuse(`${dbName}: entries ${index * TILE_WIDTH}…${tree.treeSize - 1} are incomplete (${rows.length} of ${width} rows)`,
          'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
      }
      for (const [i, r] of rows.entries()) {
        const h = leafHash(r.leaf);
        const inTile = data.subarray(i * 32, i * 32 + 32);
        if (!h.equals(inTile) || !r.leafHash.equals(inTile)) {
          refuse(`${dbName}: entry ${r.index} does not match its leaf hash in ${formatTilePath({ level: 0, index, width })}`,
            'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
        }
      }
    }

    // The newest cosignatures verify against the configured witness keys.
    const cosigned = (await store.cosignedSizes(0))[0];
    if (cosigned !== undefined && (o.witnessVerifiers?.length ?? 0) > 0) {
      const note = await store.checkpoint(cosigned.treeSize);
      const lines = await store.cosignatureLines(cosigned.treeSize);
      try {
        if (note === undefined) fail('not_found', 'its checkpoint is missing');
        verifyNote(note + lines.map((l) => l + '\n').join(''), [verifier, ...o.witnessVerifiers!]);
      } catch (e) {
        refuse(`${dbName}: the stored cosignatures of size ${cosigned.treeSize} do not verify (${(e as Error).message})`,
          'Run `pkglog fsck` to locate the damage and restore the database from a good copy');
      }
    }

    // The high-water mark: never behind it, and the same root at its size.
    const hwmNote = readHighWaterMark(hwmFile);
    let hwm: SignedState;
    if (hwmNote === undefined) {
      hwm = cp;
      if (tree.treeSize > 0) {
        o.log(`warning: no high-water mark file ${hwmFile}; creating it at size ${tree.treeSize} from the database. ` +
          `If this log ever published a larger size, stop it now (see ${SAFETY_DOC}).`);
      }
      writeHighWaterMark(hwmFile, tree.checkpoint);
    } else {
      hwm = verifyLogCheckpoint(hwmNote, verifier, origin, `the high-water mark ${hwmFile}`);
      if (tree.treeSize < hwm.treeSize) {
        refuse(`${dbName} holds a tree of size ${tree.treeSize}, but this log already published size ${hwm.treeSize} ` +
          `(high-water mark ${hwmFile}); signing now would fork the log`,
          `The database is older than what was published (deleted, a restored backup or snapshot, the wrong volume). ` +
          `Put back the newest database, or bring this one up to size ${hwm.treeSize} from a mirror or the published tiles ` +
          `before starting the log; never delete the high-water mark to get past this`);
      }
      const atHwm = await store.checkpoint(hwm.treeSize);
      const stored = atHwm === undefined ? undefined : verifyLogCheckpoint(atHwm, verifier, origin, `the checkpoint of size ${hwm.treeSize} in ${store.location}`);
      if (stored === undefined || !stored.rootHash.equals(hwm.rootHash)) {
        refuse(`${dbName} ${stored === undefined ? 'has no checkpoint' : 'has a different root'} at size ${hwm.treeSize}, ` +
          `the size this log last published (high-water mark ${hwmFile})`,
          'The database holds another history than the one published (a database of another log, or a fork); ' +
          'put back this log\'s database');
      }
      if (tree.treeSize > hwm.treeSize) {
        writeHighWaterMark(hwmFile, tree.checkpoint); // committed but not published before a crash
        hwm = cp;
      }
    }
    return hwm;
  }

  /** The newest checkpoint made public. */
  get highWaterMark(): SignedState {
    return this.hwm;
  }

  /** Why the guard stopped signing, if it did. */
  get stoppedReason(): string | undefined {
    return this.stopped;
  }

  /** What signing still waits for (start-up checks, the witnesses), if it has not begun. */
  get waitingReason(): string | undefined {
    return this.waitingFor;
  }

  /** Signing may begin (the witnesses were asked). */
  allowSigning(): void {
    this.waitingFor = undefined;
  }

  /** Stops signing for good and (unless `report` is false: the caller reports it) logs `message` once and calls onFatal. */
  stop(message: string, report = true): void {
    if (this.stopped !== undefined) return;
    this.stopped = message;
    this.close();
    if (!report) return;
    this.o.log(`error: ${message}`);
    this.o.onFatal?.(message);
  }

  /**
   * Throws unless the log may now sign a checkpoint extending `state`: not stopped, the database file is the one
   * opened, the tree is not behind the high-water mark. `edgeRoot` is the old root recomputed from the right-edge
   * tiles the integration reads; it must equal the stored root.
   */
  beforeSign(state: TreeState, edgeRoot: Hash): void {
    this.checkFile();
    if (this.stopped !== undefined) fail('unsafe_state', `the log has stopped signing: ${this.stopped}`);
    if (this.waitingFor !== undefined) fail('overloaded', `the log is not signing yet (waiting for ${this.waitingFor}); retry shortly`);
    if (state.treeSize < this.hwm.treeSize || (state.treeSize === this.hwm.treeSize && !state.rootHash.equals(this.hwm.rootHash))) {
      this.stop(`the database ${this.o.store.location} is at size ${state.treeSize}, behind the published size ${this.hwm.treeSize}: ` +
        `refusing to sign (see ${SAFETY_DOC})`);
    } else if (!edgeRoot.equals(state.rootHash)) {
      this.stop(`the right-edge hash tiles of the tree of size ${state.treeSize} in ${this.o.store.location} do not reproduce its stored root: ` +
        `a stored tile is damaged; refusing to sign. Run \`pkglog fsck\` and restore the database from a good copy (see ${SAFETY_DOC})`);
    } else if (this.hwm.treeSize < state.treeSize) {
      this.publish(state); // an earlier high-water mark write failed: catch up before signing anything newer
      return;
    } else {
      return;
    }
    fail('unsafe_state', `the log has stopped signing: ${this.stopped}`);
  }

  /** The batch committed `state`: record it as the high-water mark (fsynced) before anything is published. */
  committed(state: TreeState): void {
    this.checkFile();
    if (this.stopped !== undefined) fail('unsafe_state', `the log has stopped signing: ${this.stopped}`);
    this.publish(state);
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private publish(state: TreeState): void {
    writeHighWaterMark(this.o.hwmFile, state.checkpoint);
    this.hwm = { treeSize: state.treeSize, rootHash: state.rootHash, note: state.checkpoint };
  }

  /** SQLite: the database file is still the one opened (a server database has no file to check). */
  private checkFile(): void {
    if (this.stopped !== undefined) return;
    const { store } = this.o;
    if (store.sameFile === undefined) return;
    let same: boolean;
    try {
      same = store.sameFile();
    } catch (e) {
      same = false;
    }
    if (!same) {
      this.stop(`the database file ${store.location} was deleted or replaced while the log was running: ` +
        `the log stops signing and exits. Find out what happened to it; the log refuses to start from a database behind ` +
        `its published size ${this.hwm.treeSize} (see ${SAFETY_DOC})`);
    }
  }

  private watch(): void {
    const ms = this.o.watchIntervalMs ?? 1000;
    if (ms <= 0) return;
    this.timer = setInterval(() => {
      this.checkFile();
      void this.catchUp();
    }, ms);
    this.timer.unref();
  }

  /** A batch committed but its high-water mark write failed (disk full): retry it, without waiting for a new batch. */
  private async catchUp(): Promise<void> {
    if (this.stopped !== undefined) return;
    try {
      const t = await this.o.store.treeState();
      if (t === undefined || t.treeSize <= this.hwm.treeSize || this.stopped !== undefined) return;
      this.publish(t);
    } catch {
      // still failing: the next batch (or tick) tries again, and nothing newer is signed before it succeeds
    }
  }
}

