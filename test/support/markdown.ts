/**
 * Reads fenced code blocks out of a Markdown file, for the tests that keep the README and docs/ true
 * (test/docs/*.test.ts, test/e2e/readme-walkthrough.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export function readDoc(path: string): string {
  return readFileSync(join(REPO, path), 'utf8');
}

/** The text of the `## ` section whose heading starts with `heading` (up to the next `## ` heading). */
export function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`## ${heading}`));
  if (start < 0) throw new Error(`no section "## ${heading}…"`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** The contents of the fenced blocks (```lang … ```) in `markdown`, in order, each ending in a newline. */
export function fencedBlocks(markdown: string, lang: string): string[] {
  const blocks: string[] = [];
  let open: { fence: string; lines: string[] | undefined } | undefined;
  for (const line of markdown.split('\n')) {
    if (open === undefined) {
      const m = /^(`{3,})\s*([\w-]*)\s*$/.exec(line);
      if (m) open = { fence: m[1]!, lines: m[2] === lang ? [] : undefined };
    } else if (line.trim() === open.fence) {
      if (open.lines !== undefined) blocks.push(open.lines.join('\n') + '\n');
      open = undefined;
    } else {
      open.lines?.push(line);
    }
  }
  if (open !== undefined) throw new Error('an unclosed fenced block');
  return blocks;
}
