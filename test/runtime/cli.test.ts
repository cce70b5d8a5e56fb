/** runtime/cli.ts: strict parsing of every command line, subcommands, help, and one line per failure. */
import assert from 'node:assert/strict';
import { PkglogError } from '../../core/errors.ts';
import { describeFailure, parseCommand, runMain, type CommandSpec, type CommandTable } from '../../runtime/cli.ts';
import { captureIo } from '../support/cli.ts';

const SPEC: CommandSpec = {
  usage: 'Usage: pkglog t FILE [OUT] --log URL [--json] [--watch X]...\n',
  flags: { log: 'string', json: 'boolean', watch: 'list' },
  args: ['FILE', '[OUT]'],
};

function usageMessage(argv: string[]): string {
  try {
    parseCommand(argv, SPEC);
  } catch (e) {
    assert.ok(e instanceof PkglogError && e.code === 'usage', String(e));
    return e.message;
  }
  return assert.fail(`${argv.join(' ')} parsed`);
}

describe('runtime/cli: parseCommand', () => {
  it('parses options in both forms, lists, booleans, -- and optional positionals', () => {
    const p = parseCommand(['f', '--log', 'http://x', '--watch=a', '--json', '--watch', 'b', '--', '-out'], SPEC);
    assert.deepEqual(p.positionals, ['f', '-out']);
    assert.equal(p.str.log, 'http://x');
    assert.deepEqual(p.list.watch, ['a', 'b']);
    assert.equal(p.bool.json, true);
    assert.equal(p.help, false);
    const q = parseCommand(['f'], SPEC);
    assert.deepEqual([q.positionals, q.str.log, q.bool.json, q.list.watch], [['f'], undefined, false, []]);
    assert.equal(parseCommand(['--log=', 'f'], SPEC).str.log, '', 'an inline empty value is a value');
    assert.equal(parseCommand(['-'], SPEC).positionals[0], '-', 'a lone dash is an argument (stdin)');
  });

  it('names each mistake in one sentence', () => {
    const cases: Array<[string[], string]> = [
      [['f', '-o'], "unknown option '-o'"],
      [['-o', 'x'], "unknown option '-o'"],
      [['f', '--nope=3'], "unknown option '--nope'"],
      [['f', '-log', 'x'], "unknown option '-l'"],
      [['f', '--log'], "option '--log' needs a value"],
      [['f', '--log', '--json'], "option '--log' needs a value"],
      [['f', '--watch'], "option '--watch' needs a value"],
      [['f', '--json=yes'], "option '--json' takes no value"],
      [['f', '--log', 'a', '--log', 'b'], "option '--log' given twice"],
      [['f', 'o', 'extra'], "unexpected argument 'extra'"],
      [[], 'missing argument FILE'],
    ];
    for (const [argv, message] of cases) assert.equal(usageMessage(argv), message, argv.join(' '));
    const two: CommandSpec = { usage: '', flags: {}, args: ['NAME', 'KEY'] };
    assert.throws(() => parseCommand([], two), { message: 'missing arguments NAME KEY' });
    assert.throws(() => parseCommand(['n'], two), { message: 'missing argument KEY' });
  });

  it('-h and --help need no positionals', () => {
    assert.equal(parseCommand(['-h'], SPEC).help, true);
    assert.equal(parseCommand(['--help'], SPEC).help, true);
    assert.equal(usageMessage(['--help=x']), "option '--help' takes no value");
  });
});

describe('runtime/cli: runMain', () => {
  const ran: string[] = [];
  const TABLE: CommandTable = {
    t: { spec: SPEC, run: (p) => (ran.push(`t ${p.positionals.join(' ')}`), 0) },
    reg: {
      usage: 'Usage: pkglog reg add NAME | pkglog reg list\n',
      subcommands: {
        add: { spec: { usage: 'Usage: pkglog reg add NAME\n', flags: {}, args: ['NAME'] }, run: (p) => (ran.push(`add ${p.positionals[0]}`), 0) },
        list: { spec: { usage: 'Usage: pkglog reg list\n', flags: { json: 'boolean' }, args: [] }, run: () => { throw new PkglogError('not_found', 'no such data dir'); } },
      },
    },
    wit: {
      usage: 'Usage: pkglog wit [--x] | pkglog wit add NAME\n',
      default: { spec: { usage: 'Usage: pkglog wit [--x]\n', flags: { x: 'boolean' }, args: [] }, run: () => (ran.push('wit'), 0) },
      subcommands: { add: { spec: { usage: 'Usage: pkglog wit add NAME\n', flags: {}, args: ['NAME'] }, run: () => 0 } },
    },
    boom: { spec: { usage: '', flags: {}, args: [] }, run: () => { throw new TypeError("Cannot read properties of null (reading 'port')"); } },
  };

  async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
    const c = captureIo({ env });
    const code = await runMain(argv, c.io, TABLE);
    return { code, out: c.out(), err: c.err() };
  }

  it('runs commands and subcommands; help goes to stdout with exit 0', async () => {
    ran.length = 0;
    assert.deepEqual(await run(['t', 'f']), { code: 0, out: '', err: '' });
    assert.equal((await run(['reg', 'add', 'n'])).code, 0);
    assert.equal((await run(['wit', '--x'])).code, 0);
    assert.deepEqual(ran, ['t f', 'add n', 'wit']);
    assert.deepEqual(await run(['t', '--help']), { code: 0, out: SPEC.usage, err: '' });
    assert.deepEqual(await run(['reg', '--help']), { code: 0, out: 'Usage: pkglog reg add NAME | pkglog reg list\n', err: '' });
    assert.deepEqual(await run(['reg', 'add', '-h']), { code: 0, out: 'Usage: pkglog reg add NAME\n', err: '' });
  });

  it('every mistake is one line naming the command, exit 2', async () => {
    const cases: Array<[string[], string]> = [
      [['t', 'f', '-o'], "pkglog t: unknown option '-o' (see pkglog t --help)"],
      [['reg'], 'pkglog reg: missing subcommand: add, list (see pkglog reg --help)'],
      [['reg', 'del'], "pkglog reg: unknown subcommand 'del'; one of: add, list (see pkglog reg --help)"],
      [['reg', '-o'], "pkglog reg: unknown option '-o' (see pkglog reg --help)"],
      [['reg', 'add'], 'pkglog reg add: missing argument NAME (see pkglog reg add --help)'],
      [['wit', 'del'], "pkglog wit: unknown subcommand 'del'; one of: add (see pkglog wit --help)"],
      [['nope'], "pkglog: unknown command 'nope'; one of: t, reg, wit, boom (see pkglog --help)"],
    ];
    for (const [argv, line] of cases) assert.deepEqual(await run(argv), { code: 2, out: '', err: `${line}\n` }, argv.join(' '));
  });

  it('a failure is one line with its exit code; with --json a JSON object on stdout', async () => {
    assert.deepEqual(await run(['reg', 'list']), { code: 2, out: '', err: 'pkglog reg list: no such data dir\n' });
    const j = await run(['reg', 'list', '--json']);
    assert.equal(j.code, 2);
    assert.equal(j.err, '');
    assert.deepEqual(JSON.parse(j.out), { ok: false, exitCode: 2, error: 'no such data dir' });
  });

  it('a bug is one line and exit 1; the stack only with PKGLOG_DEBUG=1', async () => {
    const r = await run(['boom']);
    assert.deepEqual(r, { code: 1, out: '', err: "pkglog boom: internal error: Cannot read properties of null (reading 'port') (PKGLOG_DEBUG=1 shows the stack)\n" });
    const d = await run(['boom'], { PKGLOG_DEBUG: '1' });
    assert.equal(d.code, 1);
    assert.match(d.err, /^pkglog boom: internal error: Cannot read properties of null \(reading 'port'\)\nTypeError: .*\n\s+at /);
  });
});

describe('runtime/cli: describeFailure', () => {
  const sys = (props: Record<string, unknown>) => Object.assign(new Error('raw node message'), props);
  it('system errors are one plain sentence with the exit code they count as', () => {
    const cases: Array<[Record<string, unknown>, string, number]> = [
      [{ code: 'EADDRINUSE', syscall: 'listen', address: '127.0.0.1', port: 8080, errno: -98 }, 'cannot listen on 127.0.0.1:8080: address already in use', 1],
      [{ code: 'EADDRNOTAVAIL', syscall: 'listen', address: '::5', port: 1 }, 'cannot listen on [::5]:1: address not available on this machine', 1],
      [{ code: 'EACCES', syscall: 'listen', address: '127.0.0.1', port: 80 }, 'cannot listen on 127.0.0.1:80: permission denied', 1],
      [{ code: 'ENOENT', syscall: 'open', path: 'pkg.tgz' }, 'pkg.tgz: no such file or directory', 2],
      [{ code: 'EISDIR', syscall: 'read', path: 'dir' }, 'dir: is a directory', 2],
      [{ code: 'EACCES', syscall: 'open', path: '/root/x' }, '/root/x: permission denied', 2],
      [{ code: 'ENOSPC', syscall: 'write', path: 'out' }, 'out: no space left on device', 10],
      [{ code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port: 9 }, 'cannot connect to 127.0.0.1:9: connection refused', 7],
      [{ code: 'EWEIRD', syscall: 'open', path: 'p' }, 'p: EWEIRD', 2],
      [{ code: 'EEXIST', syscall: 'open', path: 'k.key' }, 'k.key: already exists', 1],
      [{ code: 'EMFILE', syscall: 'socket' }, 'socket: too many open files', 1],
    ];
    for (const [props, message, exit] of cases) assert.deepEqual(describeFailure(sys(props)), { message, exit }, JSON.stringify(props));
  });
  it('a PkglogError keeps its message and its code\'s exit code', () => {
    assert.deepEqual(describeFailure(new PkglogError('unsafe_state', 'behind')), { message: 'behind', exit: 9 });
    assert.deepEqual(describeFailure('a string'), { message: 'internal error: a string (PKGLOG_DEBUG=1 shows the stack)', exit: 1 });
  });
});
