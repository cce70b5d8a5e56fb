import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { PkglogError } from '../../core/errors.ts';
import { MAX_POLICY_ENTITIES, MAX_POLICY_SIZE, parsePolicy, quorumSatisfied, verifyCheckpointWithPolicy, type QuorumRule } from '../../core/policy.ts';
import { ed25519Signer, formatSignatureLine, formatVerifierKey, signNote, signText, type Signer } from '../../core/note.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';

function throwsCode(f: () => unknown, code: string, msg?: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof PkglogError, `${msg}: ${String(e)}`);
    assert.equal(e.code, code, `${msg}: ${e.message}`);
    return true;
  });
}

const seed = (i: number) => createHash('sha256').update(`seed ${i}`).digest();
const ORIGIN = 'example.com/log';
const logSigner = ed25519Signer(ORIGIN, seed(1));
const logVkey = formatVerifierKey(ORIGIN, 1, logSigner.publicKey);
const witnessSigner = (i: number, ts = 1000): Signer => cosignatureSigner(`w${i}.example`, seed(100 + i), () => ts);
const wVkey = (i: number) => formatVerifierKey(`w${i}.example`, 4, witnessSigner(i).publicKey);

const SPEC_EXAMPLE = `log ${logVkey}

witness X1 ${wVkey(1)}
witness X2 ${wVkey(2)}
witness X3 ${wVkey(3)}
group X-witnesses 2 X1 X2 X3

witness Y1 ${wVkey(4)}
witness Y2 ${wVkey(5)}
witness Y3 ${wVkey(6)}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
`;
const CHECKPOINT = `${ORIGIN}\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n`;

describe('core/policy', () => {
  describe('parsePolicy', () => {
    it('parses the spec example', () => {
      const p = parsePolicy(SPEC_EXAMPLE);
      assert.equal(p.logs.length, 1);
      assert.equal(p.logs[0]!.verifier.name, ORIGIN);
      assert.deepEqual(p.witnesses.map((w) => w.name), ['X1', 'X2', 'X3', 'Y1', 'Y2', 'Y3']);
      assert.ok(p.witnesses.every((w) => w.verifier.type === 4));
      const q = p.quorum;
      assert.equal(q.kind, 'group');
      if (q.kind !== 'group') return;
      assert.equal(q.name, 'X-and-Y');
      assert.equal(q.threshold, 2);
      assert.deepEqual(q.members.map((m) => (m.kind === 'group' ? [m.name, m.threshold, m.members.length] : m.kind)), [
        ['X-witnesses', 2, 3],
        ['Y-witnesses', 1, 3],
      ]);
      const ok = (names: string[]) => quorumSatisfied(q, new Set(names));
      assert.ok(ok(['X1', 'X2', 'Y1']));
      assert.ok(ok(['X2', 'X3', 'Y3', 'Y2']));
      assert.ok(!ok(['X1', 'Y1', 'Y2', 'Y3']));
      assert.ok(!ok(['X1', 'X2', 'X3']));
      assert.ok(!ok(['X-witnesses', 'Y-witnesses']));
      assert.equal(JSON.stringify(parsePolicy(Buffer.from(SPEC_EXAMPLE))), JSON.stringify(p));
    });

    it('accepts whitespace, tabs, comments, URLs, none and non-ASCII names', () => {
      const p = parsePolicy(
        `# a comment\n   \n\t# indented comment\n \tlog\t${logVkey}   https://log.example/  \n` +
          `witness K ${wVkey(1)} https://w1.example/\nwitness \u212a ${wVkey(2)}\n  quorum   none\t\n# trailing comment`+ '\n',
      );
      assert.equal(p.logs[0]!.url, 'https://log.example/');
      assert.equal(p.witnesses[0]!.url, 'https://w1.example/');
      assert.deepEqual(p.witnesses.map((w) => w.name), ['K', '\u212a']); // opaque: K and the Kelvin sign differ
      assert.deepEqual(p.quorum, { kind: 'none' });
      assert.deepEqual(parsePolicy('quorum none\n'), { logs: [], witnesses: [], quorum: { kind: 'none' } });
      assert.deepEqual(parsePolicy(`witness a ${wVkey(1)}\nquorum a\nlog ${logVkey}\n`).quorum, { kind: 'witness', name: 'a' });
    });

    it('accepts at least 32 logs, witnesses and groups, and caps them', () => {
      const logs = Array.from({ length: 32 }, (_, i) => `log ${formatVerifierKey(`l${i}`, 1, ed25519Signer('x', seed(i)).publicKey)}\n`);
      const ws = Array.from({ length: 64 }, (_, i) => `witness w${i} ${wVkey(i)}\n`);
      const groups = Array.from({ length: 32 }, (_, i) => `group g${i} all w${2 * i} w${2 * i + 1}\n`);
      const p = parsePolicy(logs.join('') + ws.join('') + groups.join('') + `group top 32 ${groups.map((_, i) => `g${i}`).join(' ')}\nquorum top\n`);
      assert.equal(p.logs.length, 32);
      assert.equal(p.witnesses.length, 64);
      const all = new Set(p.witnesses.map((w) => w.name));
      assert.ok(quorumSatisfied(p.quorum, all));
      all.delete('w63');
      assert.ok(!quorumSatisfied(p.quorum, all));
      const many = Array.from({ length: MAX_POLICY_ENTITIES + 1 }, (_, i) => `witness w${i} ${wVkey(i)}\n`).join('');
      throwsCode(() => parsePolicy(many + 'quorum none\n'), 'too_large', 'witness cap');
      const manyGroups = Array.from({ length: MAX_POLICY_ENTITIES + 1 }, (_, i) => `group g${i} any ${i === 0 ? 'w0' : `g${i - 1}`}\n`).join('');
      throwsCode(() => parsePolicy(`witness w0 ${wVkey(0)}\n` + manyGroups + 'quorum none\n'), 'too_large', 'group cap');
      throwsCode(() => parsePolicy('#'.repeat(MAX_POLICY_SIZE) + '\nquorum none\n'), 'too_large', 'size cap');
    });

    it('rejects every rule violation', () => {
      const w1 = `witness a ${wVkey(1)}\n`;
      const w2 = `witness b ${wVkey(2)}\n`;
      const cases: Array<[string, string]> = [
        ['', 'no quorum'],
        [`log ${logVkey}\n`, 'no quorum'],
        ['quorum none\nquorum none\n', 'two quorum lines'],
        ['quorum a\n' + w1, 'quorum before definition'],
        ['quorum nobody\n', 'undefined quorum'],
        ['quorum\n', 'quorum without name'],
        ['quorum a b\n', 'quorum with two names'],
        [w1 + w2 + 'group g any a c\nquorum g\n', 'undefined member'],
        ['group g any a\n' + w1 + 'quorum g\n', 'member defined later'],
        [w1 + w2 + 'group g any a a\nquorum g\n', 'member twice in one group'],
        [w1 + w2 + 'group g any a b\ngroup h any a\nquorum g\n', 'member in two groups'],
        [w1 + w2 + 'group g any a b\ngroup h all g g\nquorum h\n', 'group member twice'],
        [w1 + 'group g any none\nquorum g\n', 'none as member'],
        [w1 + 'group g any a none\nquorum g\n', 'none as member with others'],
        [w1 + w2 + 'group g 0 a b\nquorum g\n', 'k = 0'],
        [w1 + w2 + 'group g 3 a b\nquorum g\n', 'k > n'],
        [w1 + w2 + 'group g 01 a b\nquorum g\n', 'k with leading zero'],
        [w1 + w2 + 'group g -1 a b\nquorum g\n', 'negative k'],
        [w1 + w2 + 'group g some a b\nquorum g\n', 'bad threshold word'],
        [w1 + 'group g any\nquorum g\n', 'no members'],
        [w1 + 'group g\nquorum g\n', 'no threshold'],
        [w1 + w1.replace(wVkey(1), wVkey(2)) + 'quorum none\n', 'duplicate witness name'],
        [w1 + `witness z ${wVkey(1)}\nquorum none\n`, 'duplicate witness key'],
        [w1 + `witness z ${formatVerifierKey('other', 4, witnessSigner(1).publicKey)}\nquorum none\n`, 'duplicate witness key, other name'],
        [`log ${logVkey}\nlog ${formatVerifierKey('other', 1, logSigner.publicKey)}\nquorum none\n`, 'duplicate log key'],
        [`witness none ${wVkey(1)}\nquorum none\n`, 'witness named none'],
        [w1 + 'group a any a\nquorum a\n', 'group named like a witness'],
        [w1 + w2 + 'group g any a\ngroup g any b\nquorum g\n', 'group defined twice'],
        [`log ${wVkey(1)}\nquorum none\n`, 'log with a cosignature key'],
        [`witness a ${logVkey}\nquorum none\n`, 'witness with a log key'],
        [`log ${logVkey.slice(0, -2)}\nquorum none\n`, 'bad vkey'],
        [`log\nquorum none\n`, 'log without key'],
        [`log ${logVkey} url extra\nquorum none\n`, 'log with too many items'],
        [`witness a\nquorum none\n`, 'witness without key'],
        [`witness a ${wVkey(1)} url extra\nquorum none\n`, 'witness with too many items'],
        ['quorum none', 'no final newline'],
        ['quorum none\r\n', 'carriage return'],
        ['quorum none\n\u0000\n', 'NUL'],
        ['quorum none\n# \u007f\n', 'DEL'],
        ['quorum none\n# \u000b\n', 'vertical tab'],
        ['Quorum none\n', 'keyword case'],
        ['logs x\nquorum none\n', 'unknown keyword'],
      ];
      for (const [text, why] of cases) throwsCode(() => parsePolicy(text), 'malformed', why);
      throwsCode(() => parsePolicy(Buffer.from([...Buffer.from('witness '), 0xff, ...Buffer.from(` ${wVkey(1)}\nquorum none\n`)])), 'malformed', 'non-UTF-8 name');
    });

    it('only throws PkglogError on arbitrary input', () => {
      const tokens = fc.constantFrom('log', 'witness', 'group', 'quorum', 'none', 'any', 'all', '1', '2', 'a', 'b', logVkey, wVkey(1), wVkey(2), '#', ' ', '\t', '\n');
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.array(tokens, { maxLength: 30 }).map((t) => t.join(' '))), (s) => {
          try {
            parsePolicy(s);
          } catch (e) {
            if (!(e instanceof PkglogError)) throw e;
          }
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('quorumSatisfied', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    // Random rules with each witness used at most once, like parsed ones.
    const arbRule: fc.Arbitrary<QuorumRule> = fc.shuffledSubarray(names, { minLength: 1 }).chain((ws) => build(ws, 0));
    function build(ws: string[], depth: number): fc.Arbitrary<QuorumRule> {
      if (ws.length === 1 && depth > 0) return fc.constant({ kind: 'witness', name: ws[0]! });
      return fc.integer({ min: 1, max: ws.length }).chain((parts) => {
        const size = Math.ceil(ws.length / parts);
        const groups = Array.from({ length: Math.ceil(ws.length / size) }, (_, i) => ws.slice(i * size, (i + 1) * size));
        return fc
          .tuple(fc.tuple(...groups.map((g) => (g.length === 1 || depth > 2 ? fc.constant<QuorumRule>({ kind: 'witness', name: g[0]! }) : build(g, depth + 1)))), fc.nat())
          .map(([members, k]) => ({ kind: 'group' as const, name: `g${depth}`, threshold: 1 + (k % members.length), members }));
      });
    }
    const arbSet = fc.subarray(names).map((s) => new Set(s));

    it('none is always satisfied; a witness exactly when it cosigned', () => {
      assert.ok(quorumSatisfied({ kind: 'none' }, new Set()));
      assert.ok(quorumSatisfied({ kind: 'witness', name: 'a' }, new Set(['a'])));
      assert.ok(!quorumSatisfied({ kind: 'witness', name: 'a' }, new Set(['b'])));
    });

    it('is monotone: more cosigners never break a satisfied quorum', () => {
      fc.assert(
        fc.property(arbRule, arbSet, arbSet, (rule, s, extra) => {
          if (quorumSatisfied(rule, s)) assert.ok(quorumSatisfied(rule, new Set([...s, ...extra])));
        }),
      );
    });

    it('a group holds iff at least k members hold (all = every member, any = some member)', () => {
      fc.assert(
        fc.property(arbRule, arbSet, (rule, s) => {
          if (rule.kind !== 'group') return;
          const held = rule.members.filter((m) => quorumSatisfied(m, s)).length;
          assert.equal(quorumSatisfied(rule, s), held >= rule.threshold);
          const all = { ...rule, threshold: rule.members.length };
          assert.equal(quorumSatisfied(all, s), rule.members.every((m) => quorumSatisfied(m, s)));
          const any = { ...rule, threshold: 1 };
          assert.equal(quorumSatisfied(any, s), rule.members.some((m) => quorumSatisfied(m, s)));
          assert.ok(quorumSatisfied(rule, new Set(names)));
          assert.ok(!quorumSatisfied(rule, new Set()));
        }),
      );
    });
  });

  describe('verifyCheckpointWithPolicy', () => {
    const policy = parsePolicy(SPEC_EXAMPLE);
    const sign = (...signers: Signer[]) => signNote(CHECKPOINT, [logSigner, ...signers]);

    it('accepts a checkpoint that meets the quorum and reports the cosigners', () => {
      const r = verifyCheckpointWithPolicy(policy, sign(witnessSigner(2, 50), witnessSigner(1, 40), witnessSigner(5, 60)));
      assert.equal(r.text, CHECKPOINT);
      assert.equal(r.log, policy.logs[0]);
      assert.deepEqual(r.cosigners.map((c) => [c.witness.name, c.timestamp]), [['X1', 40], ['X2', 50], ['Y2', 60]]);
      // Unknown witnesses and grease are ignored.
      const grease = formatSignatureLine({ name: 'grease.example', keyId: Buffer.from('abcd'), signature: Buffer.alloc(72) });
      const stranger = cosignatureSigner('w1.example', seed(200), () => 1);
      verifyCheckpointWithPolicy(policy, Buffer.from(sign(witnessSigner(2), witnessSigner(3), witnessSigner(6), stranger) + grease));
    });

    it('fails with quorum_not_met when the quorum is not met', () => {
      throwsCode(() => verifyCheckpointWithPolicy(policy, sign(witnessSigner(1), witnessSigner(2))), 'quorum_not_met', 'no Y');
      throwsCode(() => verifyCheckpointWithPolicy(policy, sign(witnessSigner(1), witnessSigner(4), witnessSigner(5))), 'quorum_not_met', 'one X');
      throwsCode(() => verifyCheckpointWithPolicy(policy, sign()), 'quorum_not_met', 'no cosignatures');
      const none = parsePolicy(`log ${logVkey}\nquorum none\n`);
      assert.deepEqual(verifyCheckpointWithPolicy(none, sign()).cosigners, []);
    });

    it('ignores cosignatures older than notBefore (the newest per witness counts)', () => {
      const note = sign(witnessSigner(1, 100), witnessSigner(2, 200), witnessSigner(4, 300));
      assert.equal(verifyCheckpointWithPolicy(policy, note, 100).cosigners.length, 3);
      throwsCode(() => verifyCheckpointWithPolicy(policy, note, 101), 'quorum_not_met', 'X1 too old');
      const twice = note + formatSignatureLine(signText(CHECKPOINT, witnessSigner(1, 500)));
      const r = verifyCheckpointWithPolicy(policy, twice, 101);
      assert.equal(r.cosigners.find((c) => c.witness.name === 'X1')!.timestamp, 500);
    });

    it('rejects bad signatures, missing or wrong log signatures, and bad input', () => {
      const good = sign(witnessSigner(1), witnessSigner(2), witnessSigner(4));
      const badW = good.replace(/(— w2\.example \S{20})(\S)/, (_, a: string, c: string) => a + (c === 'A' ? 'B' : 'A'));
      assert.notEqual(badW, good);
      throwsCode(() => verifyCheckpointWithPolicy(policy, badW), 'bad_signature', 'bad cosignature');
      const noLog = signNote(CHECKPOINT, [witnessSigner(1), witnessSigner(2), witnessSigner(4)]);
      throwsCode(() => verifyCheckpointWithPolicy(policy, noLog), 'unknown_key', 'no log signature');
      const otherOrigin = signNote(CHECKPOINT.replace(ORIGIN, 'other.example/log'), [ed25519Signer('other.example/log', seed(1))]);
      throwsCode(() => verifyCheckpointWithPolicy(policy, otherOrigin), 'unknown_key', 'origin not in policy');
      const misnamed = signNote(CHECKPOINT.replace(ORIGIN, 'example.com/log2'), [logSigner]);
      throwsCode(() => verifyCheckpointWithPolicy(policy, misnamed), 'unknown_key', 'key name differs from origin');
      throwsCode(() => verifyCheckpointWithPolicy(policy, 'not a note'), 'malformed', 'garbage');
      const notCheckpoint = signNote('hello\n', [logSigner]);
      throwsCode(() => verifyCheckpointWithPolicy(policy, notCheckpoint), 'malformed', 'not a checkpoint');
    });
  });
});
