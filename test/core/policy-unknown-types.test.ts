/**
 * tlog-policy lines whose vkey has a signature type core cannot check (0x02 ECDSA as github.com/transparency-dev/witness
 * uses it, 0xff, an unassigned type): the policy still parses, the line is kept (witness names stay usable in groups and
 * the quorum) and never counted, so verification fails only when the quorum cannot be met without it — and a
 * signature line in the note that matches such a key's name and key ID is ignored, never fatal. Known types in the
 * wrong role and malformed vkeys are still refused. formatPolicy keeps the lines as written.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PkglogError } from '../../core/errors.ts';
import { formatPolicy, parsePolicy, verifyCheckpointWithPolicy } from '../../core/policy.ts';
import { ed25519Signer, formatSignatureLine, formatVerifierKey, signNote, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519 } from '../../core/note.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';

function throwsCode(f: () => unknown, code: string): void {
  assert.throws(f, (e: unknown) => e instanceof PkglogError && e.code === code);
}

const seed = (s: string) => createHash('sha256').update(s).digest();
const ORIGIN = 'example.com/log';
const log = ed25519Signer(ORIGIN, seed('log'));
const w1 = cosignatureSigner('w1.example', seed('w1'), () => 1000);
const logVkey = formatVerifierKey(ORIGIN, SIG_TYPE_ED25519, log.publicKey);
const w1Vkey = formatVerifierKey('w1.example', SIG_TYPE_COSIGNATURE_V1, w1.publicKey);

/** A vkey of any type byte: name+<key ID>+base64(type ‖ key); the key ID is whatever the type defines (here made up). */
function vkeyOfType(name: string, type: number, key: Buffer, keyId = 'a1b2c3d4'): string {
  return `${name}+${keyId}+${Buffer.concat([Buffer.from([type]), key]).toString('base64')}`;
}
const ecdsaKey = Buffer.concat([Buffer.from([0x30, 0x59]), randomBytes(89)]); // shaped like a DER SPKI P-256 key
const ecdsaWitness = vkeyOfType('ecdsa.example/w', 0x02, ecdsaKey, '0badf00d');
const futureLog = vkeyOfType(ORIGIN, 0xfe, randomBytes(64));
const CHECKPOINT = `${ORIGIN}\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n`;

describe('core/policy: keys of signature types core cannot check', () => {
  const text = (quorum: string) =>
    `log ${logVkey}\nlog ${futureLog} https://log.example\nwitness W1 ${w1Vkey}\nwitness E ${ecdsaWitness} https://ecdsa.example/w\n${quorum}`;

  it('parse: the lines are kept in `unsupported`, never among the checkable logs and witnesses; names stay defined', () => {
    const p = parsePolicy(text('group any-of any W1 E\nquorum any-of\n'));
    assert.deepEqual(p.logs.map((l) => l.verifier.type), [SIG_TYPE_ED25519]);
    assert.deepEqual(p.witnesses.map((w) => w.name), ['W1']);
    assert.deepEqual(p.unsupported, [
      { kind: 'log', vkey: futureLog, keyName: ORIGIN, type: 0xfe, url: 'https://log.example' },
      { kind: 'witness', name: 'E', vkey: ecdsaWitness, keyName: 'ecdsa.example/w', type: 0x02, url: 'https://ecdsa.example/w' },
    ]);
    assert.equal(parsePolicy(`log ${logVkey}\nquorum none\n`).unsupported, undefined);
    // formatPolicy keeps them as written; the formatted text parses to the same policy.
    const again = parsePolicy(formatPolicy(p));
    assert.deepEqual(again.unsupported, p.unsupported);
    assert.equal(formatPolicy(again), formatPolicy(p));
  });

  it('verification: the unknown witness never counts; fails only when the quorum needs it', () => {
    const signed = signNote(CHECKPOINT, [log, w1]);
    const any = parsePolicy(text('group any-of any W1 E\nquorum any-of\n'));
    assert.deepEqual(verifyCheckpointWithPolicy(any, signed).cosigners.map((c) => c.witness.name), ['W1']);
    const all = parsePolicy(text('group both all W1 E\nquorum both\n'));
    throwsCode(() => verifyCheckpointWithPolicy(all, signed), 'quorum_not_met');
    throwsCode(() => verifyCheckpointWithPolicy(parsePolicy(text('quorum E\n')), signed), 'quorum_not_met');
    // A log known only by a key of an unknown type: no checkable log key for the origin.
    const onlyFuture = parsePolicy(`log ${futureLog}\nquorum none\n`);
    throwsCode(() => verifyCheckpointWithPolicy(onlyFuture, signNote(CHECKPOINT, [log])), 'unknown_key');
  });

  it('a signature line with the unknown key\'s name and key ID (any bytes) is ignored, not a bad signature', () => {
    const note = signNote(CHECKPOINT, [log, w1]) +
      formatSignatureLine({ name: 'ecdsa.example/w', keyId: Buffer.from('0badf00d', 'hex'), signature: randomBytes(71) }) +
      formatSignatureLine({ name: ORIGIN, keyId: Buffer.from('a1b2c3d4', 'hex'), signature: randomBytes(3) });
    const p = parsePolicy(text('group any-of any W1 E\nquorum any-of\n'));
    assert.deepEqual(verifyCheckpointWithPolicy(p, note).cosigners.map((c) => c.witness.name), ['W1']);
  });

  it('still refused: a known type in the wrong role, a malformed vkey, a duplicate key, a bad key ID of a known type', () => {
    throwsCode(() => parsePolicy(`log ${w1Vkey}\nquorum none\n`), 'malformed'); // 0x04 is a cosigner key
    throwsCode(() => parsePolicy(`log ${logVkey}\nwitness X ${logVkey}\nquorum none\n`), 'malformed'); // 0x01 as a witness
    throwsCode(() => parsePolicy(`log ${logVkey}\nwitness E ${ecdsaWitness.replace(/.$/, '!')}\nquorum none\n`), 'malformed');
    throwsCode(() => parsePolicy(`log ${logVkey}\nwitness E ${vkeyOfType('e', 0x02, Buffer.alloc(0))}\nquorum none\n`), 'malformed'); // no key bytes
    throwsCode(() => parsePolicy(`log ${logVkey}\nwitness E ${ecdsaWitness}\nwitness F ${vkeyOfType('other.example', 0x02, ecdsaKey)}\nquorum none\n`), 'malformed');
    throwsCode(() => parsePolicy(`log ${logVkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+')}\nquorum none\n`), 'malformed');
    throwsCode(() => parsePolicy(`log ${logVkey}\nwitness E ${ecdsaWitness}\ngroup g all E E\nquorum g\n`), 'malformed');
  });
});
