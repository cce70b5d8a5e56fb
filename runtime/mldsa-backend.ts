/**
 * PKGLOG_MLDSA_BACKEND=native|wasm|noble picks the ML-DSA-44 implementation of this process (core/mldsa.ts); unset:
 * the fastest that loads (native, else wasm, else noble). Read once per command by runtime/cli.ts's runMain.
 */
import { useMlDsa44Backend, MLDSA44_BACKENDS, type MlDsa44BackendName } from '../core/mldsa.ts';
import { fail } from '../core/errors.ts';

export function applyMlDsaBackendEnv(env: NodeJS.ProcessEnv): void {
  const v = env.PKGLOG_MLDSA_BACKEND;
  if (v === undefined || v === '') return;
  if (!(MLDSA44_BACKENDS as readonly string[]).includes(v)) fail('usage', `PKGLOG_MLDSA_BACKEND: ${JSON.stringify(v)} is not one of ${MLDSA44_BACKENDS.join(', ')}`);
  useMlDsa44Backend(v as MlDsa44BackendName);
}
