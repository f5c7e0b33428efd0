/**
 * `npm run test:copy-views`: the view contract where a runtime refuses external buffers (Electron, V8 sandbox builds:
 * napi_create_external_arraybuffer returns napi_no_external_buffers_allowed). Node does not refuse them, so this builds
 * both addons with the switch that takes that path on every view (CMake NAPI_OWNERSHIP_COPY_VIEWS, cargo feature
 * copy-views), then runs the string and view contract suites against those builds: view() returns a copy that shares
 * nothing, and everything else holds.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot, platformTriple } from '../src/native/load.js';

const out = join(packageRoot, 'build', 'copy-views');

function run(what: string, cmd: string, args: string[], env: Record<string, string> = {}): void {
  process.stdout.write(`copy-views: ${what}\n`);
  const r = spawnSync(cmd, args, { cwd: packageRoot, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    process.stderr.write(`copy-views: ${what} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
}

run('build the cpp addon with NAPI_OWNERSHIP_COPY_VIEWS', 'npx', ['cmake-js', 'compile', '-G', 'Ninja', '--out', join(out, 'cpp'), '--CDNAPI_OWNERSHIP_COPY_VIEWS=ON']);
run('build the rust addon with feature copy-views', 'npx', [
  'napi', 'build', '--platform', '--release', '--manifest-path', 'native-rust/addon/Cargo.toml', '--package-json-path', 'package.json',
  '--output-dir', join(out, 'rust'), '--no-js', '--features', 'copy-views', '--target-dir', join(out, 'rust-target'),
]);
run('the string and view contracts against them', 'npx', ['vitest', 'run', 'test/strings.contract.test.ts', 'test/views.contract.test.ts'], {
  NAPI_OWNERSHIP_EXPECT_COPY_VIEWS: '1',
  NAPI_OWNERSHIP_CPP_ADDON: join(out, 'cpp', 'Release', 'napi_ownership_cpp.node'),
  NAPI_OWNERSHIP_RUST_ADDON: join(out, 'rust', `napi-ownership-rust.${platformTriple()}.node`),
});
