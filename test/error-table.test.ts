/**
 * The one error table (src/error-table.ts) against everything that repeats it: the generated C++ and Rust constants,
 * the README's table, the codes spelled in the sources, and what both addons really throw (class, code and wording).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { backends, type Backend } from '../src/index.js';
import { ERROR_TABLE, errorRow, type ErrorCode } from '../src/error-table.js';
import { stale } from '../scripts/gen-errors.js';
import { auditThrown, violations } from './support/error-audit.js';
import { other, thrown } from './support/errors.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

describe('the one error table', () => {
  test('codes are unique and every native code has a class the addons can build', () => {
    const codes = ERROR_TABLE.map((r) => r.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const row of ERROR_TABLE) expect(row.code).toMatch(/^ERR_[A-Z0-9_]+$/);
  });

  test('the generated C++ and Rust constants and the README table are what the table says (npm run gen:errors)', () => {
    expect(stale()).toEqual([]);
  });

  test('the addons spell no code outside their generated constants (error_codes.hpp / error_codes.rs)', () => {
    const sources = [...files('native-cpp/addon/src', /\.(cpp|hpp)$/), ...files('native-rust/addon/src', /\.rs$/)];
    expect(sources.length).toBeGreaterThan(10);
    for (const file of sources) {
      if (/error_codes\.(hpp|rs)$/.test(file)) continue;
      const literals = [...readFileSync(file, 'utf8').matchAll(/"ERR_[A-Z0-9_]*"/g)].map(([m]) => m);
      expect(literals, `${file} spells a code as a literal: use the generated constant`).toEqual([]);
    }
  });

  test('TypeScript spells no code outside the table', () => {
    for (const file of files('src', /\.ts$/)) {
      for (const [code] of readFileSync(file, 'utf8').matchAll(/ERR_[A-Z0-9_]+/g)) {
        expect(errorRow(code), `${file}: ${code}`).toBeDefined();
      }
    }
  });

  test('the audit of thrown errors can fail: an unknown code, a TS-only code and a wrong class are each caught', () => {
    const before = violations.length;
    const coded = (Kind: ErrorConstructor, code: string): Error =>
      Object.defineProperty(new Kind('x'), 'code', { value: code, enumerable: true });
    auditThrown(coded(Error, 'ERR_NOT_OURS'), 'probe');
    auditThrown(coded(Error, 'ERR_NATIVE_ADDON_LOAD'), 'probe');
    auditThrown(coded(TypeError, 'ERR_NATIVE_RELEASED'), 'probe');
    auditThrown(coded(Error, 'ERR_NATIVE_RELEASED'), 'probe'); // in the table, right class: not a violation
    expect(violations.splice(before)).toEqual([
      'probe threw ERR_NOT_OURS, which is not in src/error-table.ts',
      'probe threw ERR_NATIVE_ADDON_LOAD, which the table says only TypeScript throws',
      'probe threw ERR_NATIVE_RELEASED as TypeError; the table says Error',
    ]);
  });
});

/** Each native code, provoked through the raw addon; the codes not provoked here say where they are. */
const provoke: Record<Exclude<ErrorCode, 'ERR_NATIVE_ADDON_LOAD'>, ((b: Backend) => unknown) | string> = {
  ERR_INVALID_ARG_TYPE: (b) => b.raw.print_and_return(1 as unknown as string),
  ERR_INVALID_ARG_VALUE: (b) => b.raw.handler('', () => {}),
  ERR_INTERIOR_NUL: (b) => b.raw.print_and_return('a\0b'),
  ERR_INVALID_UTF8: (b) => b.raw.print_and_return(new Uint8Array([0x61, 0xff])),
  ERR_NATIVE_ALLOC: 'test/strings.contract.test.ts (a 256 MiB input, if it cannot be allocated)',
  ERR_NATIVE_RELEASED: (b) => {
    const h = b.raw.print_and_return('x');
    b.raw.free_string(h);
    return b.raw.string_text(h);
  },
  ERR_INVALID_HANDLE: (b) => b.raw.string_text(0),
  ERR_FOREIGN_HANDLE: (b) => {
    const h = other(b).raw.print_and_return('x');
    try {
      return b.raw.string_text(h);
    } finally {
      other(b).raw.free_string(h);
    }
  },
  ERR_FOREIGN_ENV: 'test/environments.test.ts (a handle from another worker)',
  ERR_OUT_OF_RANGE: (b) => b.raw.noop_view(-1),
  ERR_CALLBACKS_THREW: (b) => {
    const subs = [1, 2].map(() =>
      b.raw.handler('error-table', () => {
        throw new Error('callback');
      }),
    );
    try {
      return b.raw.send('error-table', 'm');
    } finally {
      for (const s of subs) b.raw.cancel(s);
    }
  },
  ERR_NATIVE_INTERNAL: 'nowhere: a Node-API failure or a Rust panic (a bug of ours)',
};

/** A message template (`<name>` for what varies) as a whole-message pattern. */
function pattern(template: string): RegExp {
  const parts = template.split(/<[^>]+>/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.+')}$`);
}

const nativeRows = ERROR_TABLE.filter((r) => r.thrownBy === 'native');
const provoked = nativeRows.filter((r) => typeof provoke[r.code as keyof typeof provoke] === 'function');

test('every native code is provoked here, except the three that need a worker, an allocation failure or a bug', () => {
  const elsewhere = nativeRows.filter((r) => !provoked.includes(r)).map((r) => r.code);
  expect(elsewhere).toEqual(['ERR_NATIVE_ALLOC', 'ERR_FOREIGN_ENV', 'ERR_NATIVE_INTERNAL']);
});

describe.each(backends)('$name: every native code as the table says', (backend) => {
  test.each(provoked.map((r) => [r.code, r] as const))('%s', (code, row) => {
    const how = provoke[code as keyof typeof provoke] as (b: Backend) => unknown;
    const e = thrown(() => how(backend));
    expect(e.constructor.name).toBe(row.class);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(pattern(row.message));
  });
});
