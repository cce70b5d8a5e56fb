import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PkglogError } from '../../core/errors.ts';
import { formatTlogProof, parseTlogProof, TLOG_PROOF_HEADER, type TlogProof } from '../../core/tlog-proof.ts';
import { ed25519Signer, ed25519Verifier, signNote, verifyNote } from '../../core/note.ts';
import { parseCheckpoint } from '../../core/checkpoint.ts';

function throwsCode(f: () => unknown, code: string, msg?: string): void {
  assert.throws(f, (e: unknown) => e instanceof PkglogError && e.code === code, msg);
}

// The example from c2sp.org/tlog-proof (signatures elided with "[...]" there, so only the structure can be checked).
const SPEC_EXAMPLE = `c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
— witness1.example mJirIklj[...]qY9v2B/5bg==
— witness2.example TnKKVHLX[...]xwYwrSjgow==
— witness3.example S4X82uH5[...]3oEcROGLFQ==
`;

const log = ed25519Signer('example.com/log', Buffer.alloc(32, 3));
const SIGNED = signNote('example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n', [log]);
const H = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

describe('core/tlog-proof', () => {
  it('parses the spec example structurally and formats it back byte for byte', () => {
    const p = parseTlogProof(SPEC_EXAMPLE);
    assert.equal(p.index, 73894);
    assert.equal(p.inclusionProof.length, 5);
    assert.equal(p.inclusionProof[0]!.toString('base64'), 'gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=');
    assert.ok(p.extra!.subarray(0, 30).equals(Buffer.from('age-v1.2.1-darwin-arm64.tar.gz')));
    assert.ok(p.checkpoint.startsWith('example.com/fancylog\n109482\n'));
    assert.ok(p.checkpoint.endsWith('3oEcROGLFQ==\n'));
    assert.equal(parseCheckpoint(p.checkpoint.slice(0, p.checkpoint.indexOf('\n\n') + 1)).treeSize, 109482);
    assert.equal(formatTlogProof(p), SPEC_EXAMPLE);
    assert.deepEqual(parseTlogProof(Buffer.from(SPEC_EXAMPLE)), p);
  });

  it('round-trips a real proof whose checkpoint then verifies', () => {
    const p: TlogProof = { index: 0, inclusionProof: [], checkpoint: SIGNED };
    const s = formatTlogProof(p);
    assert.equal(s, `${TLOG_PROOF_HEADER}\nindex 0\n\n${SIGNED}`);
    const q = parseTlogProof(s);
    assert.deepEqual(q, p);
    assert.equal('extra' in q, false);
    verifyNote(q.checkpoint, [ed25519Verifier(log.name, log.publicKey)]);
    const withExtra = { ...p, extra: Buffer.alloc(0) };
    assert.deepEqual(parseTlogProof(formatTlogProof(withExtra)), withExtra);
  });

  it('rejects malformed proofs', () => {
    const body = `index 3\n${H}\n\n${SIGNED}`;
    const bad = [
      '',
      body,
      `c2sp.org/tlog-proof@v2\n${body}`,
      `${TLOG_PROOF_HEADER} \n${body}`,
      `${TLOG_PROOF_HEADER}\r\n${body}`,
      `${TLOG_PROOF_HEADER}\nextra AB==\n${body}`,
      `${TLOG_PROOF_HEADER}\nextra QQ\n${body}`,
      `${TLOG_PROOF_HEADER}\nextra\n${body}`,
      `${TLOG_PROOF_HEADER}\n${body.replace('index 3', 'index 03')}`,
      `${TLOG_PROOF_HEADER}\n${body.replace('index 3', 'index -3')}`,
      `${TLOG_PROOF_HEADER}\n${body.replace('index 3', 'index  3')}`,
      `${TLOG_PROOF_HEADER}\n${body.replace('index 3', 'Index 3')}`,
      `${TLOG_PROOF_HEADER}\n${body.replace('index 3\n', '')}`,
      `${TLOG_PROOF_HEADER}\nindex 3\nextra QQ==\n${H}\n\n${SIGNED}`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${H.slice(4)}\n\n${SIGNED}`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${H}\n${SIGNED}`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${H}\n\n`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${H}\n\nexample.com/log\n5\n${H}\n`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${H}\n\nexample.com/log\n5\n${H}\n\nnot a signature\n`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${H}\n\nexample.com/log\n05\n${H}\n\n— x y\n`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${H}\n\n${SIGNED.slice(0, -1)}`,
      `${TLOG_PROOF_HEADER}\nindex 3\n${(H + '\n').repeat(64)}\n${SIGNED}`,
    ];
    for (const b of bad) throwsCode(() => parseTlogProof(b), 'malformed', JSON.stringify(b));
    throwsCode(() => parseTlogProof(Buffer.concat([Buffer.from(`${TLOG_PROOF_HEADER}\nindex 3\n\n`), Buffer.from([0xff]), Buffer.from(SIGNED)])), 'malformed');
    throwsCode(() => parseTlogProof('x'.repeat(4 << 20)), 'too_large');
    assert.equal(parseTlogProof(`${TLOG_PROOF_HEADER}\nindex 3\n${(H + '\n').repeat(63)}\n${SIGNED}`).inclusionProof.length, 63);
  });

  it('format ∘ parse round-trips; parse only throws PkglogError', () => {
    const arb: fc.Arbitrary<TlogProof> = fc
      .record(
        {
          extra: fc.uint8Array({ maxLength: 50 }).map((b) => Buffer.from(b)),
          index: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
          inclusionProof: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)), { maxLength: 63 }),
          checkpoint: fc.constant(SIGNED),
        },
        { requiredKeys: ['index', 'inclusionProof', 'checkpoint'] },
      )
      .map((r) => ({ ...r }));
    fc.assert(
      fc.property(arb, (p) => {
        assert.deepEqual(parseTlogProof(formatTlogProof(p)), p);
      }),
      { numRuns: 200 },
    );
    const near = fc
      .tuple(fc.nat(SPEC_EXAMPLE.length), fc.string({ unit: 'binary', maxLength: 4 }))
      .map(([i, s]) => SPEC_EXAMPLE.slice(0, i) + s + SPEC_EXAMPLE.slice(i + 1));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), near, fc.uint8Array({ maxLength: 200 })), (s) => {
        try {
          const p = parseTlogProof(s);
          if (typeof s === 'string') assert.equal(formatTlogProof(p), s);
        } catch (e) {
          if (!(e instanceof PkglogError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});
