/**
 * The one command-line layer of every pkglog command (log, witness, client): command specs with typed options and
 * named positional arguments, parsed with node:util parseArgs; `-h`/`--help`; subcommands; and the one way a failure
 * is reported — a single line `pkglog CMD: message` (or `{"ok": false, …}` with `--json`) and the exit code of
 * core/errors.ts's table (docs/errors.md). Usage mistakes are PkglogError code `usage` (exit 2); a command never
 * prints a stack trace unless PKGLOG_DEBUG=1.
 */
import { parseArgs as tokenize } from 'node:util';
import { EXIT, PkglogError, exitCode, fail, isPkglogError, type ErrorCode } from '../core/errors.ts';
import type { Io } from './io.ts';
import { applyMlDsaBackendEnv } from './mldsa-backend.ts';

export type { Io } from './io.ts';

/** `string`: `--x V` or `--x=V`, at most once; `list`: repeatable; `boolean`: `--x`, no value. */
export type OptionType = 'string' | 'boolean' | 'list';

export interface CommandSpec {
  /** The whole help text (`pkglog CMD --help`, `pkglog help CMD`). Every option must appear in it (a test checks). */
  usage: string;
  /** Long option names (without `--`) and their types. `--help`/`-h` is always there. */
  flags: Record<string, OptionType>;
  /** The positional arguments by name, e.g. ['FILE'] or ['ORIGIN', 'LOG_VKEY', '[LOG_URL]'] ([X]: optional). */
  args: string[];
}

export interface Parsed {
  positionals: string[];
  str: Record<string, string | undefined>;
  bool: Record<string, boolean>;
  list: Record<string, string[]>;
  help: boolean;
}

/** Throws a usage error (exit 2). */
export function usage(message: string): never {
  return fail('usage', message);
}

function arity(spec: CommandSpec): { min: number; max: number; names: string[] } {
  const names = spec.args;
  const optional = names.filter((n) => n.startsWith('[')).length;
  return { min: names.length - optional, max: names.length, names };
}

/**
 * Parses argv against spec (strictly: unknown options, missing or superfluous values, a string option given twice,
 * too many or too few arguments are usage errors). With --help the positional count is not checked.
 */
export function parseCommand(argv: string[], spec: CommandSpec): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, type] of Object.entries(spec.flags)) options[name] = type === 'boolean' ? { type: 'boolean' } : { type: 'string', ...(type === 'list' ? { multiple: true } : {}) };
  options.help = { type: 'boolean', short: 'h' };
  const { tokens } = tokenize({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const out: Parsed = { positionals: [], str: {}, bool: {}, list: {}, help: false };
  for (const [name, type] of Object.entries(spec.flags)) {
    if (type === 'boolean') out.bool[name] = false;
    if (type === 'list') out.list[name] = [];
  }
  for (const t of tokens) {
    if (t.kind === 'positional') {
      out.positionals.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue; // the `--` terminator: what follows comes as positionals
    const type = t.name === 'help' ? 'boolean' : spec.flags[t.name];
    // A single dash with a long name (-name) and unknown short options are unknown options alike.
    if (type === undefined || (t.rawName.length === 2 && t.name !== 'help')) usage(`unknown option '${t.rawName}'`);
    if (type === 'boolean') {
      if (t.value !== undefined) usage(`option '${t.rawName}' takes no value`);
      if (t.name === 'help') out.help = true;
      else out.bool[t.name] = true;
      continue;
    }
    // parseArgs hands the next word to a string option whatever it is; a word that looks like an option is not a value.
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')) usage(`option '${t.rawName}' needs a value`);
    if (type === 'list') out.list[t.name]!.push(t.value);
    else {
      if (out.str[t.name] !== undefined) usage(`option '${t.rawName}' given twice`);
      out.str[t.name] = t.value;
    }
  }
  if (!out.help) {
    const { min, max, names } = arity(spec);
    if (out.positionals.length > max) usage(`unexpected argument '${out.positionals[max]}'`);
    if (out.positionals.length < min) {
      const missing = names.slice(out.positionals.length, min);
      usage(`missing argument${missing.length > 1 ? 's' : ''} ${missing.join(' ')}`);
    }
  }
  return out;
}

/** The value of a string option that must be given. */
export function required(p: Parsed, name: string): string {
  const v = p.str[name];
  if (v === undefined || v === '') usage(`option '--${name}' is required`);
  return v;
}

/** A command: its spec and what it does with the parsed arguments (its exit code). */
export interface Command {
  spec: CommandSpec;
  run(p: Parsed, io: Io): Promise<number> | number;
}

/** A command with subcommands (`registry add|list`); `default` runs when the first word is not a subcommand. */
export interface CommandGroup {
  usage: string;
  subcommands: Record<string, Command>;
  default?: Command;
}

export type CommandTable = Record<string, Command | CommandGroup>;

function isGroup(c: Command | CommandGroup): c is CommandGroup {
  return 'subcommands' in c;
}

/** Finds the command argv names: its name (e.g. 'registry add'), its Command and the arguments left for it. */
function resolve(argv: string[], table: CommandTable): { name: string; command?: Command; rest: string[]; groupUsage?: string } {
  const [top, ...rest] = argv;
  const entry = top === undefined ? undefined : Object.hasOwn(table, top) ? table[top] : undefined;
  if (top === undefined || entry === undefined) usageFor('', `unknown command '${top ?? ''}'; one of: ${Object.keys(table).join(', ')}`);
  if (!isGroup(entry)) return { name: top, command: entry, rest };
  const [sub, ...subRest] = rest;
  if (sub !== undefined && Object.hasOwn(entry.subcommands, sub)) return { name: `${top} ${sub}`, command: entry.subcommands[sub]!, rest: subRest };
  const subs = Object.keys(entry.subcommands).join(', ');
  if (sub !== undefined && !sub.startsWith('-')) return usageFor(top, `unknown subcommand '${sub}'; one of: ${subs}`);
  if (entry.default !== undefined) return { name: top, command: entry.default, rest };
  if (sub === '-h' || sub === '--help') return { name: top, rest, groupUsage: entry.usage };
  return usageFor(top, sub === undefined ? `missing subcommand: ${subs}` : `unknown option '${sub}'`);
}

/** A usage error whose message names `name` (the command it belongs to). */
class NamedUsage extends PkglogError {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super('usage', message);
  }
}

function usageFor(command: string, message: string): never {
  throw new NamedUsage(command, message);
}

/**
 * Runs `pkglog <argv…>` against a table of commands: finds the command, parses its arguments, prints its help for
 * -h/--help, runs it, and turns whatever it throws into one line and an exit code. Returns the exit code.
 */
export async function runMain(argv: string[], io: Io, table: CommandTable): Promise<number> {
  let name = argv[0] ?? '';
  let json = false;
  try {
    applyMlDsaBackendEnv(io.env);
    const found = resolve(argv, table);
    name = found.name;
    if (found.groupUsage !== undefined) {
      io.stdout(found.groupUsage);
      return EXIT.OK;
    }
    const command = found.command!;
    json = 'json' in command.spec.flags && found.rest.includes('--json');
    const p = parseCommand(found.rest, command.spec);
    if (p.help) {
      io.stdout(command.spec.usage);
      return EXIT.OK;
    }
    return await command.run(p, io);
  } catch (e) {
    if (e instanceof NamedUsage) name = e.command;
    const f = describeFailure(e, io.env);
    const pkglog = name === '' ? 'pkglog' : `pkglog ${name}`;
    const message = isPkglogError(e, 'usage') ? `${f.message} (see ${pkglog} --help)` : f.message;
    if (json) io.stdout(JSON.stringify({ ok: false, exitCode: f.exit, error: message }) + '\n');
    else io.stderr(`${pkglog}: ${message}\n`);
    if (f.stack !== undefined) io.stderr(f.stack + '\n');
    return f.exit;
  }
}

/** Words for the system errors a command commonly meets (Node's own messages repeat the code and the path). */
const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  ENOTEMPTY: 'directory not empty',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'host not found',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
};

/**
 * The reason of a failed file or socket operation in plain words ("no such file or directory"), without the code, the
 * system call and the path that Node repeats in its message; for messages that name the file themselves.
 */
export function reason(e: unknown): string {
  if (isSystemError(e)) return SYSTEM_ERRORS[e.code!] ?? e.code!;
  return e instanceof Error ? e.message : String(e);
}

/** Which PkglogError code a system error counts as (its exit code comes from the one table). */
function systemErrorCode(e: NodeJS.ErrnoException): ErrorCode {
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return 'disk_full';
  if (e.syscall === 'listen' || e.syscall === 'bind') return 'conflict';
  if (e.syscall === 'connect' || e.syscall === 'getaddrinfo' || e.code === 'ECONNRESET') return 'network';
  if (e.code === 'EEXIST' || e.code === 'ENOTEMPTY') return 'conflict';
  // A file that is missing, unreadable or unwritable is a bad input of the command line (exit 2).
  if (e.path !== undefined) return 'not_found';
  return 'internal';
}

function isSystemError(e: unknown): e is NodeJS.ErrnoException & Error {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

/**
 * What a failure says and which exit code it gives: a PkglogError by its code; a system error (missing file, port in
 * use, disk full, refused connection) as one plain sentence with the code it counts as; anything else is an internal
 * error (exit 1) whose stack is shown only with PKGLOG_DEBUG=1.
 */
export function describeFailure(e: unknown, env: NodeJS.ProcessEnv = {}): { message: string; exit: number; stack?: string } {
  const debug = env.PKGLOG_DEBUG === '1' && e instanceof Error && e.stack !== undefined ? { stack: e.stack } : {};
  if (e instanceof PkglogError) return { message: e.message, exit: exitCode(e), ...debug };
  if (isSystemError(e)) {
    const what = SYSTEM_ERRORS[e.code!] ?? e.code!;
    const err = e as NodeJS.ErrnoException & { address?: string; port?: number; dest?: string };
    let message: string;
    if (e.syscall === 'listen' || e.syscall === 'bind') {
      const host = err.address !== undefined && err.address.includes(':') ? `[${err.address}]` : err.address;
      message = `cannot listen on ${host ?? '?'}:${err.port ?? '?'}: ${what}`;
    } else if (e.syscall === 'connect') message = `cannot connect to ${err.address ?? '?'}${err.port !== undefined ? `:${err.port}` : ''}: ${what}`;
    else if (e.path !== undefined) message = `${e.path}: ${what}${err.dest !== undefined ? ` (${err.dest})` : ''}`;
    else message = `${e.syscall}: ${what}`;
    return { message, exit: exitCode(new PkglogError(systemErrorCode(e), message)), ...debug };
  }
  const message = e instanceof Error ? e.message : String(e);
  return {
    message: `internal error: ${message}${debug.stack === undefined ? ' (PKGLOG_DEBUG=1 shows the stack)' : ''}`,
    exit: exitCode(e),
    ...debug,
  };
}

/** Every command name a table answers to, with its subcommands (`registry add`), for help listings and tests. */
export function commandNames(table: CommandTable): string[] {
  return Object.entries(table).flatMap(([name, c]) =>
    isGroup(c) ? [...(c.default ? [name] : []), ...Object.keys(c.subcommands).map((s) => `${name} ${s}`)] : [name],
  );
}

/** The spec of `name` ('verify', 'registry add', 'witness'), if the table has it. */
export function specOf(table: CommandTable, name: string): CommandSpec | undefined {
  const [top, sub] = name.split(' ');
  const c = Object.hasOwn(table, top!) ? table[top!] : undefined;
  if (c === undefined) return undefined;
  if (!isGroup(c)) return sub === undefined ? c.spec : undefined;
  return sub === undefined ? c.default?.spec : c.subcommands[sub]?.spec;
}
