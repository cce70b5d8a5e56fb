/**
 * The client commands of `pkglog` (bin/pkglog.js calls main([command, ...rest])): keygen, submit, verify, proof,
 * monitor, audit. Returns the exit code (docs/client.md has the table).
 */
import { defaultIO, handleError, type IO } from './cli-common.ts';
import { verifyCommand, proofCommand } from './cli-verify.ts';
import { keygenCommand, submitCommand } from './cli-publish.ts';
import { monitorCommand, auditCommand } from './cli-log.ts';
import { EXIT } from './report.ts';

const COMMANDS: Record<string, (argv: string[], io: IO) => Promise<number>> = {
  keygen: keygenCommand,
  submit: submitCommand,
  verify: verifyCommand,
  proof: proofCommand,
  monitor: monitorCommand,
  audit: auditCommand,
};

export async function main(argv: string[], io: IO = defaultIO): Promise<number> {
  const [command, ...rest] = argv;
  const run = command === undefined ? undefined : COMMANDS[command];
  if (run === undefined) {
    io.err(`pkglog: unknown client command ${JSON.stringify(command)}; one of: ${Object.keys(COMMANDS).join(', ')}\n`);
    return EXIT.USAGE;
  }
  try {
    return await run(rest, io);
  } catch (e) {
    return handleError(io, command!, e, rest.includes('--json'));
  }
}
