/**
 * The mirror's POST /sign-subtree (C2SP tlog-mirror, OPTIONAL, "handled identically to that of a witness":
 * core/sign-subtree.ts): a subtree of a checkpoint carrying the mirror's cosignature is answered with the mirror's
 * ML-DSA-44 subtree/v1 cosignature; the log's checkpoint without the mirror's cosignature is 403; a mirror that only
 * cosigns with Ed25519 has no subtree key (404).
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { MemoryLog } from '../support/memory-log.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { MirrorStore } from '../../mirror/store.ts';
import { Mirror } from '../../mirror/mirror.ts';
import { createApp } from '../../mirror/app.ts';
import { cosignatureSigner, mldsaCosigner, verifySubtreeSignature } from '../../core/cosignature.ts';
import { formatSignSubtreeRequest } from '../../core/sign-subtree.ts';
import { parseSignedNote } from '../../core/note.ts';
import { listHash } from '../../core/tlog-mirror.ts';
import { leafHash } from '../../core/hash.ts';

describe('mirror: sign-subtree', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('signs a subtree of its own mirror checkpoint with its ML-DSA-44 key; 403 without its cosignature; 404 without an ML-DSA key', async () => {
    const log = new MemoryLog('example.test/subtree-mirror-log');
    log.append(600);
    const clock = () => Math.floor(Date.now() / 1000);
    const make = (signers: ConstructorParameters<typeof Mirror>[0]['signers']) => {
      const dir = tempDir('pkglog-mirror-subtree-');
      dirs.push(dir);
      return new Mirror({ store: MirrorStore.open(dir), signers });
    };
    const pq = mldsaCosigner('mirror.test/subtree', Buffer.alloc(32, 4), { timestamp: clock });
    const m = make([cosignatureSigner('mirror.test/subtree', Buffer.alloc(32, 3), clock), pq]);
    const l = m.store.addLog(log.origin, log.vkey, 'http://log.invalid', true, 0, 0);
    assert.equal(await m.pull(l.id, log.source()), 'cosigned 600');
    const app = createApp({ mirror: m });
    const hash = listHash(log.entries.slice(256, 512).map((e) => leafHash(e)));
    const body = (note: string) => formatSignSubtreeRequest({ start: 256, end: 512, hash, proof: log.subtreeProof(256, 512, 600), checkpoint: Buffer.from(note) });
    const r = await request(app).post('/sign-subtree').send(body(m.store.mirrorCheckpoint(l.id)!.note)).expect(200);
    const sig = parseSignedNote(log.checkpointText() + '\n' + r.text).signatures;
    assert.equal(sig.length, 1);
    assert.ok(verifySubtreeSignature(pq.name, pq.publicKey, { origin: log.origin, start: 256, end: 512, hash }, sig[0]!.signature));
    await request(app).post('/sign-subtree').send(body(log.signedCheckpoint())).expect(403);
    const ed = make([cosignatureSigner('mirror.test/ed', Buffer.alloc(32, 5), clock)]);
    ed.store.addLog(log.origin, log.vkey, 'http://log.invalid', true, 0, 0);
    await request(createApp({ mirror: ed })).post('/sign-subtree').send(body(log.signedCheckpoint())).expect(404);
    m.store.close();
    ed.store.close();
  });
});
