/**
 * The log's high-water mark: the newest signed checkpoint it has made public, kept OUTSIDE the database in a small
 * file next to the signing key. It is replaced atomically and durably (write a temporary file, fsync it, rename it over
 * the old one, fsync the directory), so after a crash it holds either the old or the new checkpoint, never a torn one.
 * The file holds the signed note verbatim (log signature only); the server verifies it with the log's key.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail } from '../core/errors.ts';
import { MAX_NOTE_SIZE } from '../core/note.ts';

/** The high-water mark file of a key file: `<keyFile>.hwm`. */
export function highWaterMarkFile(keyFile: string): string {
  return `${keyFile}.hwm`;
}

/** The stored note, or undefined if there is no file. Throws 'too_large' for an oversized file. */
export function readHighWaterMark(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const b = readFileSync(file);
  if (b.length > MAX_NOTE_SIZE) fail('too_large', `${file} is larger than a signed note can be`);
  return b.toString('utf8');
}

/** Durably replaces the file's contents with `note` (temp file, fsync, rename, fsync of the directory). */
export function writeHighWaterMark(file: string, note: string): void {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    const b = Buffer.from(note, 'utf8');
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
