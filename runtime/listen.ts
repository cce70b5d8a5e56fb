/** The one `--listen host:port` parser of the log and the witness. */
import { fail } from '../core/errors.ts';
import { parseDecimal } from '../core/encoding.ts';

/** Parses `host:port` strictly (IPv6 in brackets: `[::1]:8080`; port 0…65535). Throws 'malformed'. */
export function parseListen(s: string): { host: string; port: number } {
  const m = typeof s === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(s) : null;
  if (m === null) fail('malformed', `listen address ${JSON.stringify(s)} must be host:port`);
  const port = parseDecimal(m[2]!, 'port', 65535);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
