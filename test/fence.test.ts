/**
 * The fences around raw Node-API (issue 11): each addon makes raw `napi_*` / `node_api_*` calls in one place only,
 * named for what it is, whose doc comment gives each remaining call its measured or contract reason.
 * - Rust: `native-rust/addon/src/raw/` (raw/mod.rs). Elsewhere the addon uses napi-rs's types and `raw`'s safe
 *   functions; naming the *types* `sys::napi_env`, `sys::napi_value` (napi-rs's own idiom) is fine, calling
 *   `sys::napi_*(` is not.
 * - C++: `native-cpp/addon/src/fast.{hpp,cpp}` (fast.hpp's header). Elsewhere the addon uses node-addon-api.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => relative(root, join(e.parentPath, e.name)).split(sep).join('/'));
}

/** The source without `//` comments (doc comments name raw calls to explain the fence). */
function code(source: string): string[] {
  return source.split('\n').map((line) => line.replace(/\/\/.*$/, ''));
}

/**
 * A call through napi-rs's re-export (`sys::`, `napi::sys::`, `napi_sys::`), or a `use` of a single Node-API item
 * (which would let a bare `napi_x(` call through: outside the fence, items of `sys` are named by path).
 */
const RUST_CALL = /(?<![A-Za-z0-9])(?:napi_)?sys::(?:napi|node_api)_[a-z0-9_]+\s*\(/;
const RUST_IMPORT = /^\s*(?:pub(?:\([a-z]+\))?\s+)?use\b.*sys::.*\b(?:napi|node_api)_[a-z0-9_]+/;
/** A call of a Node-API function (`napi_x(` or `::napi_x(`); the C types (`napi_value(...)` casts) are not calls. */
const CPP_CALL = /(?<![A-Za-z0-9_])(?:::)?((?:napi|node_api)_[a-z0-9_]+)\s*\(/g;
const CPP_TYPES = new Set([
  'napi_value',
  'napi_env',
  'napi_status',
  'napi_ref',
  'napi_callback_info',
  'napi_callback',
  'napi_finalize',
  'napi_threadsafe_function',
  'napi_deferred',
  'napi_handle_scope',
]);

/** `file:line: text` for each raw call in `source`. */
export function rawCalls(file: string, source: string, language: 'rust' | 'cpp'): string[] {
  const found: string[] = [];
  code(source).forEach((line, index) => {
    const hit =
      language === 'rust'
        ? RUST_CALL.test(line) || RUST_IMPORT.test(line)
        : [...line.matchAll(CPP_CALL)].some(([, name]) => !CPP_TYPES.has(name!));
    if (hit) found.push(`${file}:${index + 1}: ${line.trim()}`);
  });
  return found;
}

function outside(dir: string, ext: RegExp, fenced: (file: string) => boolean, language: 'rust' | 'cpp') {
  const all = files(dir, ext);
  expect(all.length).toBeGreaterThan(5);
  const inside = all.filter(fenced);
  expect(inside.length, `the fence itself exists in ${dir}`).toBeGreaterThan(0);
  // The fence holds raw calls (else it is not the fence any more, and this test would pin nothing).
  expect(inside.flatMap((f) => rawCalls(f, readFileSync(join(root, f), 'utf8'), language)).length).toBeGreaterThan(0);
  return all.filter((f) => !fenced(f)).flatMap((f) => rawCalls(f, readFileSync(join(root, f), 'utf8'), language));
}

describe('raw Node-API stays inside its fence', () => {
  test('the scanner sees a raw call, and not a type, a comment or a safe wrapper', () => {
    expect(rawCalls('a.rs', 'let s = unsafe { sys::napi_get_undefined(env, &mut u) };', 'rust')).toHaveLength(1);
    expect(rawCalls('a.rs', 'napi::sys::node_api_symbol_for (env)', 'rust')).toHaveLength(1);
    expect(rawCalls('a.rs', 'napi_sys::napi_throw(env, v)', 'rust')).toHaveLength(1);
    expect(rawCalls('a.rs', 'use napi::sys::{napi_env, napi_throw};', 'rust')).toHaveLength(1);
    expect(rawCalls('a.rs', 'use napi_sys::napi_throw;', 'rust')).toHaveLength(1);
    expect(rawCalls('a.rs', 'fn f(env: sys::napi_env, v: sys::napi_value) -> sys::napi_status {', 'rust')).toEqual([]);
    expect(rawCalls('a.rs', '/// napi-rs calls `sys::napi_define_properties(...)` here', 'rust')).toEqual([]);
    expect(rawCalls('a.rs', 'napi_failed(env, "napi_typeof", error)', 'rust')).toEqual([]);
    expect(rawCalls('a.cpp', '  check(env, napi_get_cb_info(env, info, &argc, arg, nullptr, &data));', 'cpp')).toHaveLength(1);
    expect(rawCalls('a.cpp', 'x = ::napi_throw(env, v);', 'cpp')).toHaveLength(1);
    expect(rawCalls('a.cpp', 'Napi::Value f(napi_env env, napi_value(value)) { // napi_throw(env, v)', 'cpp')).toEqual([]);
    expect(rawCalls('a.cpp', 'namespace napi_ownership { napi_ownership::errors::throw_alloc(env, 1); }', 'cpp')).toEqual([]);
  });

  test('Rust: no sys::napi_* call outside native-rust/addon/src/raw/ (raw/mod.rs gives each its reason)', () => {
    const fenced = (f: string) => f.startsWith('native-rust/addon/src/raw/');
    expect(outside('native-rust/addon/src', /\.rs$/, fenced, 'rust')).toEqual([]);
  });

  test('C++: no napi_* call outside native-cpp/addon/src/fast.{hpp,cpp} (fast.hpp gives each its reason)', () => {
    const fenced = (f: string) => /^native-cpp\/addon\/src\/fast\.(hpp|cpp)$/.test(f);
    expect(outside('native-cpp/addon/src', /\.(cpp|hpp)$/, fenced, 'cpp')).toEqual([]);
  });
});
