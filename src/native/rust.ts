import { join } from 'node:path';
import { loadAddon, overridden, packageRoot, platformTriple, preferDebug } from './load.js';
import type { RawAddon } from './raw.js';

/** The Rust addon (napi-rs, built by `napi build --platform` into build/rust or build/rust-debug). */
export function loadRustAddon(): RawAddon {
  const file = `napi-ownership-rust.${platformTriple()}.node`;
  const release = join(packageRoot, 'build', 'rust', file);
  const debug = join(packageRoot, 'build', 'rust-debug', file);
  return loadAddon<RawAddon>({
    backend: 'rust',
    candidates: overridden('NAPI_OWNERSHIP_RUST_ADDON') ?? (preferDebug() ? [debug, release] : [release, debug]),
    howToBuild: '`npm run build:rust` (needs cargo; @napi-rs/cli comes with npm install)',
  });
}
