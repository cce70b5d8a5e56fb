/**
 * Runs pkglog commands in-process, as bin/pkglog.js would dispatch them, with a captured Io: the fast way to test a
 * command line (real-process smoke tests are in test/e2e/cli.test.ts).
 */
import type { Io } from '../../runtime/io.ts';
import type { CommandTable } from '../../runtime/cli.ts';
import { COMMANDS as CLIENT_COMMANDS, main as clientMain } from '../../client/cli.ts';
import { COMMANDS as WITNESS_COMMANDS, main as witnessMain } from '../../witness/cli.ts';
import { COMMANDS as SERVER_COMMANDS, main as serverMain } from '../../server/cli.ts';
import { COMMANDS as MIRROR_COMMANDS, main as mirrorMain } from '../../mirror/cli.ts';

export interface Captured {
  io: Io;
  out(): string;
  err(): string;
}

/** An Io that records what a command prints (env defaults to empty, so the caller's environment never leaks in). */
export function captureIo(opts: { env?: NodeJS.ProcessEnv; now?: () => number } = {}): Captured {
  let out = '';
  let err = '';
  return {
    io: { stdout: (s) => void (out += s), stderr: (s) => void (err += s), env: opts.env ?? {}, now: opts.now ?? Date.now },
    out: () => out,
    err: () => err,
  };
}

/** The modules that own the commands, with their tables (bin/pkglog.js maps the same names to the same modules). */
export const MODULES: Array<{ module: string; commands: CommandTable; main: (argv: string[], io: Io) => Promise<number> }> = [
  { module: 'server/cli.ts', commands: SERVER_COMMANDS, main: serverMain },
  { module: 'witness/cli.ts', commands: WITNESS_COMMANDS, main: witnessMain },
  { module: 'client/cli.ts', commands: CLIENT_COMMANDS, main: clientMain },
  { module: 'mirror/cli.ts', commands: MIRROR_COMMANDS, main: mirrorMain },
];

export interface Ran {
  code: number;
  out: string;
  err: string;
}

/** `pkglog ARGV…` in-process. */
export async function pkglog(argv: string[], opts: { env?: NodeJS.ProcessEnv; now?: () => number } = {}): Promise<Ran> {
  const owner = MODULES.find((m) => Object.hasOwn(m.commands, argv[0] ?? ''));
  if (owner === undefined) throw new Error(`no module owns ${argv[0]}`);
  const c = captureIo(opts);
  const code = await owner.main(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}
