/**
 * Every pkglog command, in-process (main(argv, io)): --help prints its usage (exit 0), an unknown option, a missing
 * option value and too many or too few arguments are one exact line and exit 2 — the same way for the log's, the
 * witness's and the client's commands. bin/pkglog.js dispatches exactly these commands.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandNames, specOf, type CommandSpec } from '../../runtime/cli.ts';
import { MODULES, pkglog } from '../support/cli.ts';
import { REPO_ROOT } from '../support/process.ts';

const ALL = MODULES.flatMap((m) => commandNames(m.commands).map((name) => ({ name, spec: specOf(m.commands, name)!, module: m.module })));

function words(name: string): string[] {
  return name.split(' ');
}

function arityOf(spec: CommandSpec): { min: number; max: number } {
  const optional = spec.args.filter((a) => a.startsWith('[')).length;
  return { min: spec.args.length - optional, max: spec.args.length };
}

/** The first option that takes a value. */
function valueOption(spec: CommandSpec): string {
  const o = Object.entries(spec.flags).find(([, t]) => t !== 'boolean');
  assert.ok(o, 'every command has an option that takes a value');
  return o[0];
}

const usageLine = (name: string, message: string) => `pkglog ${name}: ${message} (see pkglog ${name} --help)\n`;

describe('every command line (in-process)', () => {
  it('covers the commands of the log, the witness and the client', () => {
    const names = ALL.map((c) => c.name);
    for (const n of ['keygen', 'submit', 'verify', 'proof', 'monitor', 'audit']) assert.ok(names.includes(n), n);
    assert.ok(ALL.every((c) => c.spec !== undefined));
  });

  for (const { name, spec } of ALL) {
    describe(`pkglog ${name}`, () => {
      it('--help and -h print the usage on stdout, exit 0; the usage names every option', async () => {
        for (const h of ['--help', '-h']) {
          const r = await pkglog([...words(name), h]);
          assert.deepEqual(r, { code: 0, out: spec.usage, err: '' });
        }
        assert.ok(spec.usage.startsWith('Usage: pkglog '), spec.usage);
        assert.ok(spec.usage.includes(`pkglog ${name}`), `the usage shows pkglog ${name}`);
        for (const flag of Object.keys(spec.flags)) assert.match(spec.usage, new RegExp(`--${flag}\\b`), `--${flag} is documented`);
      });

      const { min, max } = arityOf(spec);
      const args = Array.from({ length: min }, (_, i) => `arg${i}`);

      it("an unknown option -o: one line, exit 2", async () => {
        assert.deepEqual(await pkglog([...words(name), ...args, '-o']), { code: 2, out: '', err: usageLine(name, "unknown option '-o'") });
        assert.deepEqual(await pkglog([...words(name), '--no-such-option', ...args]), { code: 2, out: '', err: usageLine(name, "unknown option '--no-such-option'") });
      });

      it('a missing option value: one line, exit 2', async () => {
        const o = valueOption(spec);
        assert.deepEqual(await pkglog([...words(name), ...args, `--${o}`]), { code: 2, out: '', err: usageLine(name, `option '--${o}' needs a value`) });
      });

      it('too many or too few arguments: one line, exit 2', async () => {
        const o = valueOption(spec);
        const extra = [...words(name), `--${o}`, 'v', ...Array.from({ length: max }, (_, i) => `arg${i}`), 'extra'];
        assert.deepEqual(await pkglog(extra), { code: 2, out: '', err: usageLine(name, "unexpected argument 'extra'") });
        if (min > 0) {
          const r = await pkglog([...words(name), `--${o}`, 'v']);
          assert.deepEqual(r, { code: 2, out: '', err: usageLine(name, `missing argument${min > 1 ? 's' : ''} ${spec.args.slice(0, min).join(' ')}`) });
        }
      });
    });
  }

  it('pkglog verify -o x: the unknown option is named (not "expected 1 argument(s), got 2")', async () => {
    assert.deepEqual(await pkglog(['verify', '-o', 'x']), { code: 2, out: '', err: "pkglog verify: unknown option '-o' (see pkglog verify --help)\n" });
  });

  it('with --json a usage error is a JSON object on stdout', async () => {
    const r = await pkglog(['verify', 'f', '--json', '-o']);
    assert.equal(r.code, 2);
    assert.equal(r.err, '');
    assert.deepEqual(JSON.parse(r.out), { ok: false, exitCode: 2, error: "unknown option '-o' (see pkglog verify --help)" });
  });

  it('bin/pkglog.js dispatches exactly these commands to their modules and lists each in its usage', () => {
    const bin = readFileSync(join(REPO_ROOT, 'bin', 'pkglog.js'), 'utf8');
    const table = /const COMMANDS = \{([^}]*)\}/.exec(bin)![1]!;
    const converted = new Set(MODULES.map((m) => m.module));
    const routed = [...table.matchAll(/^\s*'?([\w-]+)'?: '\.\.\/dist\/(\S+)\.js',$/gm)].map((m) => `${m[1]} → ${m[2]}.ts`).filter((r) => converted.has(r.split(' → ')[1]!)).sort();
    const owned = MODULES.flatMap((m) => Object.keys(m.commands).map((c) => `${c} → ${m.module}`)).sort();
    assert.deepEqual(routed, owned);
    const usage = /const USAGE = `([^`]*)`/.exec(bin)![1]!;
    for (const c of MODULES.flatMap((m) => Object.keys(m.commands))) assert.match(usage, new RegExp(`^  ${c}\\b`, 'm'), `${c} is in pkglog --help`);
  });
});
