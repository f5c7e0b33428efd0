/**
 * The library-idiom twins of the fast path (`noop_idiomatic`, `print_and_return_idiomatic`, `free_string_idiomatic`:
 * docs/raw-contract.md) keep the originals' contract: the same table, the same results, the same errors with the
 * code defined on them. Both addons must export them (the bench compares them with the fast path).
 */
import { describe, expect, test } from 'vitest';
import { loadCppAddon } from '../src/native/cpp.js';
import type { RawAddon } from '../src/native/raw.js';
import { loadRustAddon } from '../src/native/rust.js';

const addons: { name: string; raw: RawAddon }[] = [
  { name: 'cpp', raw: loadCppAddon() },
  { name: 'rust', raw: loadRustAddon() },
];

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe.each(addons)('$name: idiomatic twins', ({ raw }) => {
  test('are exported', () => {
    for (const name of ['noop_idiomatic', 'print_and_return_idiomatic', 'free_string_idiomatic'] as const) {
      expect(typeof raw[name], name).toBe('function');
    }
  });

  test('share the table with the fast path', () => {
    expect(raw.noop_idiomatic()).toBeUndefined();
    const before = raw.stats().strings;
    const fast = raw.print_and_return('fast');
    const idiom = raw.print_and_return_idiomatic('idiom');
    const bytes = raw.print_and_return_idiomatic(new TextEncoder().encode('bytes'));
    expect(raw.string_text(idiom)).toBe('idiom');
    expect(raw.string_text(bytes)).toBe('bytes');
    expect(raw.free_string_idiomatic(fast)).toBe(true);
    expect(raw.free_string(idiom)).toBe(true);
    expect(raw.free_string_idiomatic(bytes)).toBe(true);
    expect(raw.free_string_idiomatic(bytes)).toBe(false);
    const after = raw.stats().strings;
    expect(after.allocated - before.allocated).toBe(3);
    expect(after.freed - before.freed).toBe(3);
    expect(after.live).toBe(before.live);
  });

  test('throw what the originals throw', () => {
    const pairs: [(x: unknown) => unknown, (x: unknown) => unknown, unknown][] = [
      [raw.print_and_return as (x: unknown) => unknown, raw.print_and_return_idiomatic as (x: unknown) => unknown, 42],
      [raw.print_and_return as (x: unknown) => unknown, raw.print_and_return_idiomatic as (x: unknown) => unknown, null],
      [raw.print_and_return as (x: unknown) => unknown, raw.print_and_return_idiomatic as (x: unknown) => unknown, new Int8Array(2)],
      [raw.print_and_return as (x: unknown) => unknown, raw.print_and_return_idiomatic as (x: unknown) => unknown, 'a\0b'],
      [raw.print_and_return as (x: unknown) => unknown, raw.print_and_return_idiomatic as (x: unknown) => unknown, new Uint8Array([0x61, 0xff])],
      [raw.free_string as (x: unknown) => unknown, raw.free_string_idiomatic as (x: unknown) => unknown, 'handle'],
      [raw.free_string as (x: unknown) => unknown, raw.free_string_idiomatic as (x: unknown) => unknown, 1.5],
      [raw.free_string as (x: unknown) => unknown, raw.free_string_idiomatic as (x: unknown) => unknown, 2 ** 53],
    ];
    for (const [original, twin, input] of pairs) {
      const expected = caught(() => original(input));
      const actual = caught(() => twin(input));
      expect(actual.constructor).toBe(expected.constructor);
      expect(actual.code).toBe(expected.code);
      expect(actual.message).toBe(expected.message);
      expect(Object.getOwnPropertyDescriptor(actual, 'code')?.value, 'code is an own property').toBe(expected.code);
    }
  });

  test('a setter named code on Object.prototype does not run', () => {
    let ran = 0;
    Object.defineProperty(Object.prototype, 'code', {
      configurable: true,
      set() {
        ran++;
      },
    });
    try {
      const error = caught(() => raw.print_and_return_idiomatic(42 as unknown as string));
      expect(Object.getOwnPropertyDescriptor(error, 'code')?.value).toBe('ERR_INVALID_ARG_TYPE');
      expect(ran).toBe(0);
    } finally {
      delete (Object.prototype as { code?: unknown }).code;
    }
  });
});
