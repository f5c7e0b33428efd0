import { join } from 'node:path';
import { loadAddon, overridden, packageRoot, preferDebug } from './load.js';
import type { RawAddon } from './raw.js';

/** The C++ addon (node-addon-api, built by cmake-js into build/Release or build/Debug). */
export function loadCppAddon(): RawAddon {
  const release = join(packageRoot, 'build', 'Release', 'napi_ownership_cpp.node');
  const debug = join(packageRoot, 'build', 'Debug', 'napi_ownership_cpp.node');
  return loadAddon<RawAddon>({
    backend: 'cpp',
    candidates: overridden('NAPI_OWNERSHIP_CPP_ADDON') ?? (preferDebug() ? [debug, release] : [release, debug]),
    howToBuild: '`npm run build:cpp` (needs cmake >= 3.25, ninja and a C++17 compiler)',
  });
}
