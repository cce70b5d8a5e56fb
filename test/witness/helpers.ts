import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WitnessStore } from '../../witness/store.ts';
import { Witness, type WitnessHooks, type LogLevel } from '../../witness/witness.ts';
import { createApp } from '../../witness/app.ts';
import { seedFrom } from './fake-log.ts';

export function tempDir(prefix = 'pkglog-witness-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestWitness {
  witness: Witness;
  store: WitnessStore;
  app: ReturnType<typeof createApp>;
  logs: Array<{ level: LogLevel; msg: string }>;
  clock: { ms: number };
  dir: string;
  close(): void;
}

export function makeWitness(opts: { name?: string; dir?: string; hooks?: WitnessHooks; fetch?: typeof fetch } = {}): TestWitness {
  const tmp = opts.dir === undefined ? tempDir() : undefined;
  const dir = opts.dir ?? tmp!.dir;
  const store = WitnessStore.open(dir);
  const logs: TestWitness['logs'] = [];
  const clock = { ms: 1_700_000_000_000 };
  const name = opts.name ?? 'witness.test/w1';
  const witness = new Witness({
    store,
    name,
    seed: seedFrom(name),
    now: () => clock.ms,
    log: (level, msg) => logs.push({ level, msg }),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  return {
    witness,
    store,
    app: createApp({ witness }),
    logs,
    clock,
    dir,
    close() {
      store.close();
      tmp?.cleanup();
    },
  };
}
