/**
 * A consumer's view: `npm pack`, install the tarball into an empty project, import it from plain ESM (no tsx, no
 * TypeScript), and compile a TypeScript file against the shipped .d.ts with `tsc --noEmit`. The tarball ships
 * compiled JS, declarations and the linux-x64-gnu binaries of both addons.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { scriptArgs } from './support/runtime.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let project: string;
let packed: { files: { path: string }[] };

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'napi-ownership-consumer-'));
  // The build already ran (npm install / npm test build first): pack what is there, without rebuilding.
  const out = execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', project], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  packed = (JSON.parse(out) as { filename: string; files: { path: string }[] }[])[0]!;
  const tarball = join(project, (JSON.parse(out) as { filename: string }[])[0]!.filename);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync(npm, ['install', tarball, '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], {
    cwd: project,
    stdio: 'ignore',
  });
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

test('the tarball holds compiled JS, declarations and both binaries, and no sources or tests', () => {
  const paths = packed.files.map((f) => f.path);
  expect(paths).toContain('dist/index.js');
  expect(paths).toContain('dist/index.d.ts');
  expect(paths).toContain('build/Release/napi_ownership_cpp.node');
  expect(paths).toContain('build/rust/napi-ownership-rust.linux-x64-gnu.node');
  expect(paths).toContain('dist/cli.js');
  expect(paths).toContain('dist/leak-test/scenario-main.js');
  expect(paths).toContain('valgrind/node.supp');
  expect(paths.filter((p) => p.startsWith('src/') || p.startsWith('test/') || p.startsWith('native-'))).toEqual([]);
});

test('import from an ESM file: both backends work', () => {
  writeFileSync(
    join(project, 'main.mjs'),
    `import { rust, cpp, backends } from 'napi-ownership';
     const out = [];
     for (const b of backends) {
       const s = b.printAndReturn('Hello from a consumer');
       out.push(b.name + ':' + s.toString() + ':' + s.byteLength + ':' + s.free() + ':' + s.free());
     }
     out.push(backends[0] === cpp && backends[1] === rust);
     console.log(out.join('|'));`,
  );
  const stdout = execFileSync(process.execPath, scriptArgs('main.mjs'), { cwd: project, encoding: 'utf8' });
  expect(stdout.trim()).toBe(
    'cpp:Hello from a consumer:21:true:false|rust:Hello from a consumer:21:true:false|true',
  );
});

test('the bin is installed: `napi-ownership --help` prints the leak-test usage', () => {
  const bin = join(project, 'node_modules', '.bin', 'napi-ownership');
  const r = spawnSync(bin, ['--help'], { cwd: project, encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout + r.stderr).toContain('usage: napi-ownership leak-test');
});

test('the public types compile for a TypeScript consumer, and misuse does not', () => {
  writeFileSync(
    join(project, 'consumer.ts'),
    `import { rust, cpp, backends, NativeString, type Backend, type Stats, type CodedError } from 'napi-ownership';
     const s: NativeString = rust.printAndReturn('typed');
     const text: string = s.toString();
     const view: Uint8Array = s.view();
     const address: bigint = s.address;
     const bytes: number = s.byteLength;
     const released: boolean = s.free();
     { using t = cpp.printAndReturn(new Uint8Array([104, 105])); void t; }
     const stats: Stats = rust.stats();
     const live: number = stats.strings.live + stats.strings.finalized;
     const each: readonly Backend[] = backends;
     const name: 'cpp' | 'rust' = each[0]!.name;
     function onError(e: CodedError) { return e.code === 'ERR_NATIVE_RELEASED'; }
     // @ts-expect-error numbers are not strings
     rust.printAndReturn(42);
     // @ts-expect-error NativeString has no public constructor
     new NativeString();
     // @ts-expect-error handles are internal
     s._handle;
     void [text, view, address, bytes, released, live, name, onError];
    `,
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022', 'ESNext.Disposable'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        typeRoots: [join(root, 'node_modules', '@types')],
        types: ['node'],
      },
      files: ['consumer.ts'],
    }),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [...scriptArgs(tsc), '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
  } catch (error) {
    throw new Error(`tsc failed:\n${(error as { stdout?: string }).stdout}`);
  }
});
