/**
 * The string contract, run over both backends so C++ and Rust cannot drift apart.
 * After every test each backend's ledger is back where it started: nothing a test made is left live.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { backends, NativeString, type StringLedger } from '../src/index.js';
import { other, thrown } from './support/errors.js';
import { copyViews } from './support/views.js';

function expectCode(fn: () => unknown, Kind: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, code: string): Error {
  const caught = thrown(fn);
  expect(caught, `expected ${Kind.name} ${code}`).toBeInstanceOf(Kind);
  expect(caught.code).toBe(code);
  return caught;
}

describe.each(backends)('$name: strings', (backend) => {
  let before: StringLedger;
  beforeEach(() => {
    before = backend.stats().strings;
  });
  afterEach(() => {
    const after = backend.stats().strings;
    expect(after.live, 'live strings back to baseline').toBe(before.live);
    expect(after.liveBytes, 'live bytes back to baseline').toBe(before.liveBytes);
  });

  test('a long string refused by the core (a NUL past the stack buffer, found after the write into its buffer) throws the contract error', () => {
    const input = `${'z'.repeat(300)}\0${'z'.repeat(2000)}`;
    const e = expectCode(() => backend.printAndReturn(input), RangeError, 'ERR_INTERIOR_NUL');
    expect(e.message).toBe('input contains a NUL byte at offset 300; a NUL-terminated C string cannot carry it');
    // afterEach: live strings and bytes back to baseline. That the refused buffer is freed is the leak suite's
    // scenario strings-refused (valgrind).
  });

  describe('round trip: a fresh native copy of the UTF-8 bytes', () => {
    test.each([
      ['ASCII', 'Hello from TS'],
      ['empty', ''],
      ['2- and 3-byte characters', 'Åßç 中文 ₿'],
      ['4-byte characters (emoji, astral)', '👋🦀🎉 𝄞'],
      ['1 MiB', 'x'.repeat(1 << 20)],
      ['a leading U+FEFF (a BOM is text: kept, not stripped)', '\uFEFFbom'],
      ['512 KiB of 2-byte characters (converted straight into the core)', '\u00e9'.repeat(1 << 18)],
      ['just over the stack buffer (257 B)', 'y'.repeat(257)],
    ])('%s', (_name, input) => {
      using s = backend.printAndReturn(input);
      expect(s.toString()).toBe(input);
      expect(s.byteLength).toBe(Buffer.byteLength(input));
      expect(Buffer.from(s.view()).equals(Buffer.from(input))).toBe(true);
      expect(s.backend).toBe(backend.name);
    });

    test('each call allocates its own copy', () => {
      using a = backend.printAndReturn('same');
      using b = backend.printAndReturn('same');
      expect(a.address).not.toBe(b.address);
      expect(a.address).toBeGreaterThan(0n);
    });

    test('a Uint8Array is read as UTF-8 bytes, at its offset', () => {
      const backing = Buffer.from('..Grüße, 世界..');
      const input = new Uint8Array(backing.buffer, backing.byteOffset + 2, backing.length - 4);
      using s = backend.printAndReturn(input);
      expect(s.toString()).toBe('Grüße, 世界');
      expect(s.byteLength).toBe(input.byteLength);
      input.fill(0x21); // the native copy does not alias the input
      expect(s.toString()).toBe('Grüße, 世界');
    });

    test('a Buffer is a Uint8Array', () => {
      using s = backend.printAndReturn(Buffer.from('from a Buffer'));
      expect(s.toString()).toBe('from a Buffer');
    });

    test('lone surrogates become U+FFFD, as TextEncoder does', () => {
      for (const input of ['a\uD800b', '\uDC00', 'x\uD83D']) {
        using s = backend.printAndReturn(input);
        expect(Buffer.from(s.view())).toEqual(Buffer.from(new TextEncoder().encode(input)));
        expect(s.toString()).toBe(input.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
      }
    });
  });

  describe('view(): zero-copy (what a view holds after release: test/views.contract.test.ts)', () => {
    test('writes through the view are the native bytes (or, where external buffers are refused, stay in its copy)', () => {
      using s = backend.printAndReturn('abc');
      const copiesBefore = backend.stats().strings.viewCopies;
      const v = s.view();
      v[0] = 'x'.charCodeAt(0);
      if (!copyViews) {
        expect(s.toString()).toBe('xbc');
        expect(s.view()[0]).toBe('x'.charCodeAt(0));
        expect(backend.stats().strings.viewCopies - copiesBefore).toBe(0); // zero-copy: no view was a copy
      } else {
        expect(backend.stats().strings.viewCopies - copiesBefore).toBe(1); // the ledger says it was a copy
        expect(s.view()).not.toBe(v); // each call copies afresh
        expect(s.toString()).toBe('abc');
        expect(Buffer.from(s.view()).toString()).toBe('abc');
      }
    });
  });

  describe('explicit release', () => {
    test('free(): true the first time, false after; freed reflects it', () => {
      const s = backend.printAndReturn('free me');
      expect(s.freed).toBe(false);
      expect(s.free()).toBe(true);
      expect(s.freed).toBe(true);
      expect(s.free()).toBe(false);
    });

    test('using frees at the end of the block', () => {
      let escaped: NativeString;
      {
        using s = backend.printAndReturn('scoped');
        escaped = s;
        expect(s.freed).toBe(false);
      }
      expect(escaped.freed).toBe(true);
      expect(escaped.free()).toBe(false);
    });

    test('freeString(s): seed 003 shape, same as s.free()', () => {
      const s = backend.printAndReturn('seed');
      expect(backend.freeString(s)).toBe(true);
      expect(backend.freeString(s)).toBe(false);
    });

    test('freeString refuses another backend’s string and non-strings', () => {
      using s = other(backend).printAndReturn('not yours');
      expectCode(() => backend.freeString(s), TypeError, 'ERR_FOREIGN_HANDLE');
      expect(s.freed).toBe(false);
      expectCode(() => backend.freeString({} as NativeString), TypeError, 'ERR_INVALID_ARG_TYPE');
    });

    test('use after free throws ERR_NATIVE_RELEASED, for every accessor', () => {
      const s = backend.printAndReturn('gone');
      s.free();
      for (const use of [() => s.toString(), () => s.view(), () => s.address, () => s.byteLength]) {
        const err = expectCode(use, Error, 'ERR_NATIVE_RELEASED');
        expect(err.message).toBe('the native string was already released');
      }
    });

    test('the ledger counts every allocation and release', () => {
      const strings = ['a', 'bb', 'ccc'].map((x) => backend.printAndReturn(x));
      let now = backend.stats().strings;
      expect(now.allocated - before.allocated).toBe(3);
      expect(now.live - before.live).toBe(3);
      expect(now.liveBytes - before.liveBytes).toBe(6);
      for (const s of strings) s.free();
      now = backend.stats().strings;
      expect(now.freed - before.freed).toBe(3);
      expect(now.finalized - before.finalized).toBe(0);
    });
  });

  describe('bad input: a coded error, never a crash', () => {
    test.each([
      ['number', 42],
      ['null', null],
      ['undefined', undefined],
      ['object', {}],
      ['object', [104, 105]],
      ['object', new Uint16Array(2)],
      ['object', new DataView(new ArrayBuffer(2))],
      ['object', new ArrayBuffer(2)],
      ['symbol', Symbol('x')],
      ['bigint', 1n],
    ])('%s → TypeError ERR_INVALID_ARG_TYPE', (received, input) => {
      const err = expectCode(() => backend.printAndReturn(input as string), TypeError, 'ERR_INVALID_ARG_TYPE');
      expect(err.message).toBe(`Expected a string or Uint8Array for input but received ${received}`);
      // The native layer checks again, with the same words.
      const raw = expectCode(() => backend.raw.print_and_return(input as string), TypeError, 'ERR_INVALID_ARG_TYPE');
      expect(raw.message).toBe(err.message);
    });

    test('a NUL cannot cross a NUL-terminated C ABI → RangeError ERR_INTERIOR_NUL', () => {
      const err = expectCode(() => backend.printAndReturn('ab\0cd'), RangeError, 'ERR_INTERIOR_NUL');
      expect(err.message).toBe('input contains a NUL byte at offset 2; a NUL-terminated C string cannot carry it');
      expectCode(() => backend.printAndReturn(Uint8Array.of(0x61, 0)), RangeError, 'ERR_INTERIOR_NUL');
    });

    test('a Uint8Array that is not UTF-8 → RangeError ERR_INVALID_UTF8', () => {
      const cases: [number[], number][] = [
        [[0x61, 0xff], 1], // never valid
        [[0x61, 0x62, 0xc3], 2], // truncated sequence
        [[0xc0, 0xaf], 0], // overlong '/'
        [[0xed, 0xa0, 0x80], 0], // UTF-16 surrogate encoded
        [[0xf4, 0x90, 0x80, 0x80], 0], // above U+10FFFF
      ];
      for (const [bytes, offset] of cases) {
        const err = expectCode(() => backend.printAndReturn(Uint8Array.from(bytes)), RangeError, 'ERR_INVALID_UTF8');
        expect(err.message).toBe(`input is not valid UTF-8 (first bad byte at offset ${offset})`);
      }
    });

    test('256 MiB works (or fails with a RangeError), never a crash', () => {
      const size = 256 * 1024 * 1024;
      const input = new Uint8Array(size).fill(0x61);
      try {
        using s = backend.printAndReturn(input);
        expect(s.byteLength).toBe(size);
        const v = s.view();
        expect(v.byteLength).toBe(size);
        expect(v[size - 1]).toBe(0x61);
      } catch (error) {
        expect(error).toBeInstanceOf(RangeError);
        expect((error as { code?: string }).code).toBe('ERR_NATIVE_ALLOC');
      }
    });
  });
});
