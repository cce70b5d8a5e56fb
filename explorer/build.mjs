// Bundles the explorer for the browser (run by `npm run build`): explorer/app.ts and the core code it uses into
// dist/explorer/app.js, with node:crypto replaced by explorer/crypto-shim.ts (@noble/hashes, @noble/ed25519) and
// Buffer by the `buffer` package. No source maps, no external requests at run time.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = here('../dist/explorer/');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [here('app.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  outfile: `${out}app.js`,
  alias: { 'node:crypto': here('crypto-shim.ts') },
  inject: [here('buffer-shim.ts')],
  legalComments: 'none',
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) copyFileSync(here(f), `${out}${f}`);
