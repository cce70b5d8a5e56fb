import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PkglogError } from '../../core/errors.ts';
import {
  formatAddCheckpointRequest,
  MAX_ADD_CHECKPOINT_BODY,
  MAX_PROOF_LINES,
  parseAddCheckpointRequest,
  type AddCheckpointRequest,
} from '../../core/witness-protocol.ts';

function throwsCode(f: () => unknown, code: string, msg?: string): void {
  assert.throws(f, (e: unknown) => e instanceof PkglogError && e.code === code, msg);
}

const CHECKPOINT =
  'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n' +
  '— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n' +
  '— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n';
const PROOF = [
  'PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=',
  'jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=',
  '5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=',
  '/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=',
];
const EXAMPLE = 'old 20852014\n' + PROOF.map((p) => p + '\n').join('') + '\n' + CHECKPOINT;
const H = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';

describe('core/witness-protocol', () => {
  it('parses the spec example and formats it back byte for byte', () => {
    const r = parseAddCheckpointRequest(Buffer.from(EXAMPLE));
    assert.equal(r.oldSize, 20852014);
    assert.deepEqual(r.consistencyProof.map((h) => h.toString('base64')), PROOF);
    assert.equal(r.checkpoint.toString('utf8'), CHECKPOINT);
    assert.equal(formatAddCheckpointRequest(r).toString('utf8'), EXAMPLE);
  });

  it('accepts old 0 with an empty proof and keeps the checkpoint verbatim', () => {
    const cp = Buffer.concat([Buffer.from('o\n0\n'), Buffer.from([0xff, 0x00]), Buffer.from('\n\n\n')]);
    const r = parseAddCheckpointRequest(Buffer.concat([Buffer.from('old 0\n\n'), cp]));
    assert.equal(r.oldSize, 0);
    assert.deepEqual(r.consistencyProof, []);
    assert.ok(r.checkpoint.equals(cp)); // the witness verifies it; the parser does not look inside
    // A non-empty proof with old 0 is grammatical: the witness answers 422 for it.
    assert.equal(parseAddCheckpointRequest(Buffer.from('old 0\n' + H + '\n' + CHECKPOINT)).consistencyProof.length, 1);
  });

  it('accepts 63 proof lines and rejects 64 as malformed', () => {
    const ok = Buffer.from('old 5\n' + H.repeat(MAX_PROOF_LINES) + '\n' + CHECKPOINT);
    assert.equal(parseAddCheckpointRequest(ok).consistencyProof.length, 63);
    throwsCode(() => parseAddCheckpointRequest(Buffer.from('old 5\n' + H.repeat(64) + '\n' + CHECKPOINT)), 'malformed');
    throwsCode(() => parseAddCheckpointRequest(Buffer.from('old 5\n' + H.repeat(10000))), 'malformed');
    throwsCode(
      () => formatAddCheckpointRequest({ oldSize: 1, consistencyProof: Array(64).fill(Buffer.alloc(32)), checkpoint: Buffer.from(CHECKPOINT) }),
      'malformed',
    );
  });

  it('rejects malformed bodies', () => {
    const bad = [
      '',
      'old 1',
      'old 1\n',
      'old 1\n\n',
      'old 01\n\n' + CHECKPOINT,
      'old -1\n\n' + CHECKPOINT,
      'old  1\n\n' + CHECKPOINT,
      'old 1 \n\n' + CHECKPOINT,
      'Old 1\n\n' + CHECKPOINT,
      'old\n\n' + CHECKPOINT,
      'old 9007199254740992\n\n' + CHECKPOINT,
      'old 1\r\n\r\n' + CHECKPOINT,
      'old 1\n' + CHECKPOINT,
      'old 1\n' + H.slice(0, -2) + '\n\n' + CHECKPOINT,
      'old 1\n' + H.replace('=', '') + '\n' + CHECKPOINT,
      'old 1\n' + H.trimEnd() + ' \n\n' + CHECKPOINT,
      'old 1\n' + 'AAAA\n\n' + CHECKPOINT,
      '\nold 1\n\n' + CHECKPOINT,
    ];
    for (const b of bad) throwsCode(() => parseAddCheckpointRequest(Buffer.from(b)), 'malformed', JSON.stringify(b));
    throwsCode(() => parseAddCheckpointRequest(Buffer.alloc(MAX_ADD_CHECKPOINT_BODY + 1, 0x41)), 'too_large');
  });

  it('format ∘ parse round-trips; parse only throws PkglogError', () => {
    const arb: fc.Arbitrary<AddCheckpointRequest> = fc
      .record({
        oldSize: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        consistencyProof: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)), { maxLength: 63 }),
        checkpoint: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b)),
      })
      .map((r) => ({ ...r }));
    fc.assert(
      fc.property(arb, (req) => {
        const body = formatAddCheckpointRequest(req);
        assert.deepEqual(parseAddCheckpointRequest(body), req);
      }),
      { numRuns: 200 },
    );
    const near = fc
      .tuple(fc.nat(EXAMPLE.length), fc.uint8Array({ maxLength: 4 }))
      .map(([i, s]) => Buffer.concat([Buffer.from(EXAMPLE).subarray(0, i), s, Buffer.from(EXAMPLE).subarray(i + 1)]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), near), (b) => {
        try {
          const r = parseAddCheckpointRequest(b);
          assert.ok(formatAddCheckpointRequest(r).equals(Buffer.from(b)));
        } catch (e) {
          if (!(e instanceof PkglogError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});
