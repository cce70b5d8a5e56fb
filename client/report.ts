/**
 * Exit codes (the one table in core/errors.ts, documented in docs/errors.md) and the check-by-check report every command prints,
 * for humans (one line per check) or machines (--json).
 */

export { EXIT, type ExitCode } from '../core/errors.ts';
import { EXIT, type ExitCode } from '../core/errors.ts';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface Check {
  id: string;
  status: CheckStatus;
  message: string;
  details?: Record<string, unknown>;
}

export class Report {
  readonly checks: Check[] = [];
  exitCode: ExitCode = EXIT.OK;
  readonly data: Record<string, unknown> = {};

  pass(id: string, message: string, details?: Record<string, unknown>): void {
    this.checks.push({ id, status: 'pass', message, ...(details ? { details } : {}) });
  }
  warn(id: string, message: string, details?: Record<string, unknown>): void {
    this.checks.push({ id, status: 'warn', message, ...(details ? { details } : {}) });
  }
  skip(id: string, message: string): void {
    this.checks.push({ id, status: 'skip', message });
  }
  /** Records a failure; the first failure's exit code is kept, except that a fork always wins. */
  fail(id: string, message: string, code: ExitCode, details?: Record<string, unknown>): void {
    this.checks.push({ id, status: 'fail', message, ...(details ? { details } : {}) });
    if (this.exitCode === EXIT.OK || code === EXIT.FORK) this.exitCode = code;
  }
  get ok(): boolean {
    return this.exitCode === EXIT.OK;
  }
  toJSON(): Record<string, unknown> {
    return { ok: this.ok, exitCode: this.exitCode, ...this.data, checks: this.checks };
  }
}

const MARK: Record<CheckStatus, string> = { pass: 'ok  ', fail: 'FAIL', warn: 'WARN', skip: 'skip' };

export function formatHuman(title: string, report: Report): string {
  const lines = [title];
  for (const c of report.checks) {
    const [first, ...rest] = c.message.split('\n');
    lines.push(`  ${MARK[c.status]}  ${c.id}: ${first}`);
    for (const r of rest) lines.push(`              ${r}`);
  }
  lines.push(report.ok ? 'VERIFIED' : `FAILED (exit code ${report.exitCode})`);
  return lines.join('\n') + '\n';
}
