/** A log in a temporary data dir for tests (built without listening, or listening on 127.0.0.1:0). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, type ConfigInput } from '../../server/config.ts';
import { openLog, registriesFile, startLog, type OpenLog, type RunningLog } from '../../server/main.ts';
import { addRegistry, loadRegistries } from '../../server/registries.ts';
import { REGISTRY, REGISTRY_NAME } from './submissions.ts';

export function tempDir(prefix = 'pkglog-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function prepare(flags: ConfigInput) {
  const dataDir = flags.dataDir ?? tempDir();
  if (!loadRegistries(registriesFile(dataDir)).has(REGISTRY_NAME)) {
    addRegistry(registriesFile(dataDir), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: '*' });
  }
  return resolveConfig({ listen: '127.0.0.1:0', batchInterval: '5', ...flags, dataDir }, {});
}

const quiet = () => {};

export async function openTestLog(flags: ConfigInput = {}): Promise<OpenLog & { dataDir: string }> {
  const config = prepare(flags);
  return { ...(await openLog(config, quiet)), dataDir: config.dataDir };
}

export async function startTestLog(flags: ConfigInput = {}): Promise<RunningLog & { dataDir: string }> {
  const config = prepare(flags);
  return { ...(await startLog(config, quiet)), dataDir: config.dataDir };
}
