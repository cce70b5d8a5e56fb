/**
 * The README's tlog-policy example (a log, three witnesses, a 2-of-3 group as the quorum) must stay a valid policy:
 * this parses exactly the ```tlog-policy block in README.md with core/policy.ts and checks what the text says it means.
 */
import assert from 'node:assert/strict';
import { parsePolicy, quorumSatisfied } from '../../core/policy.ts';
import { SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519 } from '../../core/note.ts';
import { fencedBlocks, readDoc } from '../support/markdown.ts';

describe('README: the tlog-policy example', () => {
  const blocks = fencedBlocks(readDoc('README.md'), 'tlog-policy');

  it('is one block that core/policy.ts parses: one log, three witnesses with URLs, quorum = 2 of the 3', () => {
    assert.equal(blocks.length, 1, 'README.md should hold exactly one ```tlog-policy block');
    const policy = parsePolicy(blocks[0]!);
    assert.equal(policy.logs.length, 1);
    assert.equal(policy.logs[0]!.verifier.type, SIG_TYPE_ED25519);
    assert.equal(policy.logs[0]!.verifier.name, 'pkglog.example/log');
    assert.ok(policy.logs[0]!.url?.startsWith('https://'));
    assert.deepEqual(policy.witnesses.map((w) => w.name), ['w1', 'w2', 'w3']);
    for (const w of policy.witnesses) {
      assert.equal(w.verifier.type, SIG_TYPE_COSIGNATURE_V1, `${w.name} is a cosignature/v1 key`);
      assert.ok(w.url?.startsWith('https://'), `${w.name} has a URL`);
    }
    const q = policy.quorum;
    assert.equal(q.kind, 'group');
    assert.ok(q.kind === 'group');
    assert.equal(q.threshold, 2);
    assert.deepEqual(q.members.map((m) => (m.kind === 'witness' ? m.name : m.kind)), ['w1', 'w2', 'w3']);
  });

  it('is met by any two of the three witnesses and by no single one', () => {
    const { quorum } = parsePolicy(blocks[0]!);
    for (const pair of [['w1', 'w2'], ['w1', 'w3'], ['w2', 'w3'], ['w1', 'w2', 'w3']]) {
      assert.equal(quorumSatisfied(quorum, new Set(pair)), true, pair.join('+'));
    }
    for (const one of [[], ['w1'], ['w2'], ['w3']]) {
      assert.equal(quorumSatisfied(quorum, new Set(one)), false, one.join('+') || 'nobody');
    }
  });
});
