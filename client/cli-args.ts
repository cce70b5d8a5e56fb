/** A small strict command-line parser: `--flag value`, `--flag=value`, boolean `--flag`, repeatable lists, positionals. */
import { fail } from '../core/errors.ts';

export type FlagType = 'string' | 'boolean' | 'list';

export interface CommandSpec {
  usage: string;
  flags: Record<string, FlagType>;
  /** Exact number of positional arguments, or [min, max]. */
  positionals: number | [number, number];
}

export interface Parsed {
  positionals: string[];
  str: Record<string, string | undefined>;
  bool: Record<string, boolean>;
  list: Record<string, string[]>;
  help: boolean;
}

export function parseArgs(argv: string[], spec: CommandSpec): Parsed {
  const out: Parsed = { positionals: [], str: {}, bool: {}, list: {}, help: false };
  for (const [name, type] of Object.entries(spec.flags)) {
    if (type === 'boolean') out.bool[name] = false;
    if (type === 'list') out.list[name] = [];
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      out.help = true;
      continue;
    }
    if (a === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      out.positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const type = spec.flags[name];
    if (type === undefined) fail('usage', `unknown option --${name}`);
    if (type === 'boolean') {
      if (eq > 0) fail('usage', `--${name} takes no value`);
      out.bool[name] = true;
      continue;
    }
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) fail('usage', `--${name} needs a value`);
      value = argv[++i]!;
    }
    if (type === 'list') out.list[name]!.push(value);
    else {
      if (out.str[name] !== undefined) fail('usage', `--${name} given twice`);
      out.str[name] = value;
    }
  }
  if (!out.help) {
    const [min, max] = typeof spec.positionals === 'number' ? [spec.positionals, spec.positionals] : spec.positionals;
    if (out.positionals.length < min || out.positionals.length > max) {
      fail('usage', min === max ? `expected ${min} argument(s), got ${out.positionals.length}` : `expected ${min}–${max} arguments, got ${out.positionals.length}`);
    }
  }
  return out;
}

export function required(p: Parsed, name: string): string {
  const v = p.str[name];
  if (v === undefined || v === '') fail('usage', `--${name} is required`);
  return v;
}

/** Parses a time given as unix seconds or an ISO 8601 date into milliseconds. */
export function parseTime(s: string): number {
  if (/^\d{1,12}$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) fail('usage', `bad time ${JSON.stringify(s)} (use unix seconds or ISO 8601)`);
  return t;
}
