/**
 * The client commands of `pkglog` (bin/pkglog.js calls main([command, ...rest])): keygen, submit, verify, proof,
 * monitor, audit, proxy, verify-lock, history. Returns the exit code (docs/errors.md has the table).
 */
import { runMain, type CommandTable } from '../runtime/cli.ts';
import { processIo, type Io } from '../runtime/io.ts';
import { VERIFY_SPEC, PROOF_SPEC, verifyCommand, proofCommand } from './cli-verify.ts';
import { KEYGEN_SPEC, SUBMIT_SPEC, keygenCommand, submitCommand } from './cli-publish.ts';
import { MONITOR_SPEC, AUDIT_SPEC, monitorCommand, auditCommand } from './cli-log.ts';
import { PROXY_SPEC, proxyCommand } from './cli-proxy.ts';
import { VERIFY_LOCK_SPEC, verifyLockCommand } from './cli-lock.ts';
import { HISTORY_SPEC, historyCommand } from './cli-history.ts';

export const COMMANDS: CommandTable = {
  keygen: { spec: KEYGEN_SPEC, run: keygenCommand },
  submit: { spec: SUBMIT_SPEC, run: submitCommand },
  verify: { spec: VERIFY_SPEC, run: verifyCommand },
  proof: { spec: PROOF_SPEC, run: proofCommand },
  monitor: { spec: MONITOR_SPEC, run: monitorCommand },
  audit: { spec: AUDIT_SPEC, run: auditCommand },
  proxy: { spec: PROXY_SPEC, run: proxyCommand },
  'verify-lock': { spec: VERIFY_LOCK_SPEC, run: verifyLockCommand },
  history: { spec: HISTORY_SPEC, run: historyCommand },
};

export function main(argv: string[], io: Io = processIo): Promise<number> {
  return runMain(argv, io, COMMANDS);
}
