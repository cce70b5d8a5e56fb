import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PkglogError } from '../../core/errors.ts';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from '../../core/checkpoint.ts';
import { EMPTY_ROOT } from '../../core/hash.ts';

function throwsCode(f: () => unknown, code: string, msg?: string): void {
  assert.throws(f, (e: unknown) => e instanceof PkglogError && e.code === code, msg);
}

const EXAMPLE = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const ROOT = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';

describe('core/checkpoint', () => {
  it('parses the spec example', () => {
    const c = parseCheckpoint(EXAMPLE);
    assert.equal(c.origin, 'example.com/behind-the-sofa');
    assert.equal(c.treeSize, 20852163);
    assert.equal(c.rootHash.toString('base64'), ROOT);
    assert.deepEqual(c.extensions, []);
    assert.equal(formatCheckpoint(c), EXAMPLE);
  });

  it('parses extension lines, size 0 and unusual origins', () => {
    const c = parseCheckpoint(`o\n0\n${EMPTY_ROOT.toString('base64')}\next one\n— ext two\n`);
    assert.equal(c.treeSize, 0);
    assert.ok(c.rootHash.equals(EMPTY_ROOT));
    assert.deepEqual(c.extensions, ['ext one', '— ext two']);
    assert.equal(parseCheckpoint(`origin with spaces+plus ü\n9007199254740991\n${ROOT}\n`).treeSize, Number.MAX_SAFE_INTEGER);
  });

  it('rejects everything non-canonical', () => {
    const bad = [
      '',
      EXAMPLE.slice(0, -1),
      `example.com/behind-the-sofa\n20852163\n`,
      `\n20852163\n${ROOT}\n`,
      `o\n020852163\n${ROOT}\n`,
      `o\n00\n${ROOT}\n`,
      `o\n+1\n${ROOT}\n`,
      `o\n-1\n${ROOT}\n`,
      `o\n 1\n${ROOT}\n`,
      `o\n1 \n${ROOT}\n`,
      `o\n1.0\n${ROOT}\n`,
      `o\n0x10\n${ROOT}\n`,
      `o\n9007199254740992\n${ROOT}\n`,
      `o\n18446744073709551616\n${ROOT}\n`,
      `o\n1\n${ROOT.slice(0, -1)}\n`,
      `o\n1\n${ROOT.slice(0, -2)}J=\n`, // non-canonical trailing bits
      `o\n1\nAAAA\n`,
      `o\n1\n${ROOT} \n`,
      `o\n1\n${ROOT.replace(/\//g, '_')}\n`,
      `o\n1\n${ROOT}\n\n`,
      `o\n1\n${ROOT}\next\n\n`,
      `o\r\n1\n${ROOT}\n`,
      `o\u0000\n1\n${ROOT}\n`,
      `o\n1\n${ROOT}\nex\tt\n`,
      `\ud800\n1\n${ROOT}\n`,
    ];
    for (const t of bad) throwsCode(() => parseCheckpoint(t), 'malformed', JSON.stringify(t));
    throwsCode(() => parseCheckpoint('x'.repeat(2 << 20) + '\n'), 'too_large');
  });

  it('refuses to format invalid checkpoints', () => {
    const ok: Checkpoint = { origin: 'o', treeSize: 1, rootHash: EMPTY_ROOT, extensions: [] };
    for (const c of [
      { ...ok, origin: '' },
      { ...ok, origin: 'a\nb' },
      { ...ok, treeSize: -1 },
      { ...ok, treeSize: 1.5 },
      { ...ok, treeSize: 2 ** 53 },
      { ...ok, rootHash: Buffer.alloc(31) },
      { ...ok, extensions: [''] },
      { ...ok, extensions: ['a\nb'] },
    ]) {
      throwsCode(() => formatCheckpoint(c), 'malformed');
    }
  });

  it('format ∘ parse round-trips and parse only throws PkglogError', () => {
    const line = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !/[\u0000-\u001f]|\p{Cs}/u.test(s));
    const arb = fc
      .record({
        origin: line,
        treeSize: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        rootHash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
        extensions: fc.array(line, { maxLength: 3 }),
      })
      .map((r) => ({ ...r }));
    fc.assert(
      fc.property(arb, (c) => {
        const t = formatCheckpoint(c);
        assert.deepEqual(parseCheckpoint(t), c);
      }),
      { numRuns: 300 },
    );
    const near = fc
      .tuple(fc.nat(EXAMPLE.length), fc.string({ unit: 'binary', maxLength: 4 }))
      .map(([i, s]) => EXAMPLE.slice(0, i) + s + EXAMPLE.slice(i + 1));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), near), (s) => {
        try {
          const c = parseCheckpoint(s);
          assert.equal(formatCheckpoint(c), s);
        } catch (e) {
          if (!(e instanceof PkglogError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});
