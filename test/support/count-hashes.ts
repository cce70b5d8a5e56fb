/**
 * Counts SHA-256 calls made through node:crypto's one-shot `hash` (what core/hash.ts and core/tiles.ts use) while `fn`
 * runs, so tests can check work done (complexity) instead of wall-clock time. Node's built-in ESM exports are live
 * bindings: replacing the CommonJS export and calling syncBuiltinESMExports() reaches every `import { hash }`.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

const crypto = createRequire(import.meta.url)('node:crypto') as { hash: (...args: unknown[]) => unknown };

export function countSha256<T>(fn: () => T): { result: T; calls: number } {
  const original = crypto.hash;
  let calls = 0;
  crypto.hash = (...args: unknown[]) => {
    if (args[0] === 'sha256') calls++;
    return original(...args);
  };
  syncBuiltinESMExports();
  try {
    const result = fn();
    return { result, calls };
  } finally {
    crypto.hash = original;
    syncBuiltinESMExports();
  }
}
