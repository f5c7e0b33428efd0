/**
 * The one place that turns a `.node` file into a module. Each backend (./cpp.ts, ./rust.ts) names its candidates;
 * this tries them in order, collects every failure and throws one error that says what was tried and what to run
 * (sharp's loader and napi-rs's `loadErrors` do the same).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { codedError, type CodedError } from '../errors.js';

const require = createRequire(import.meta.url);

/** The package root: `src/native/` and `dist/native/` are both two levels below it. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

/** `linux-x64-gnu`, `linux-x64-musl`, `darwin-arm64`, … as @napi-rs/cli names its outputs. */
export function platformTriple(): string {
  const { platform, arch } = process;
  if (platform !== 'linux') return `${platform}-${arch}`;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `${platform}-${arch}-${header?.glibcVersionRuntime ? 'gnu' : 'musl'}`;
}

/** Which build to prefer: `NAPI_OWNERSHIP_BUILD=debug` puts debug builds first (valgrind stacks with file:line). */
export function preferDebug(): boolean {
  return process.env.NAPI_OWNERSHIP_BUILD === 'debug';
}

/** `NAPI_OWNERSHIP_CPP_ADDON=/path/x.node` loads exactly that binary (a custom or seeded-bug build), nothing else. */
export function overridden(variable: string): string[] | undefined {
  const path = process.env[variable];
  return path ? [path] : undefined;
}

export interface AddonSpec {
  /** `cpp` or `rust`: named in the error. */
  backend: string;
  /** Absolute paths, most preferred first. */
  candidates: readonly string[];
  /** What a user should run to produce the binary. */
  howToBuild: string;
}

export function loadAddon<T>(spec: AddonSpec): T {
  const failures: { path: string; error: unknown }[] = [];
  for (const path of spec.candidates) {
    if (!existsSync(path)) {
      failures.push({ path, error: new Error('no such file') });
      continue;
    }
    try {
      return require(path) as T;
    } catch (error) {
      failures.push({ path, error });
    }
  }
  throw addonLoadError(spec, failures);
}

function addonLoadError(spec: AddonSpec, failures: { path: string; error: unknown }[]): CodedError<Error> {
  const tried = failures.map(({ path, error }) => `  - ${path}: ${error instanceof Error ? error.message : String(error)}`);
  const message = [
    `napi-ownership: could not load the ${spec.backend} addon for ${platformTriple()} (Node.js ${process.version}, Node-API ${process.versions.napi}).`,
    'Paths tried:',
    ...tried,
    'Possible solutions:',
    `  - Build it: ${spec.howToBuild}`,
    '  - Or run `npm run build` in the napi-ownership folder to build both addons.',
    '  - Installed from a tarball? It ships binaries for linux-x64-gnu only; other platforms build from a checkout.',
  ].join('\n');
  // The most informative failure is one where a file existed but would not load; else the first one.
  const loaded = failures.find((f) => !(f.error instanceof Error && f.error.message === 'no such file'));
  return codedError(Error, 'ERR_NATIVE_ADDON_LOAD', message, { cause: (loaded ?? failures[0])?.error });
}
