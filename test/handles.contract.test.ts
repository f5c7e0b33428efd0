/**
 * Handles at the raw layer (docs/raw-contract.md): plain numbers that name a generation-checked slot. A forged,
 * foreign or stale number must be refused with a coded error or reported as released, never dereferenced.
 */
import { describe, expect, test } from 'vitest';
import { backends } from '../src/index.js';
import { codeOf, other } from './support/errors.js';
import { BACKEND_ID, decodeHandle, encodeHandle, KIND } from './support/handles.js';

describe.each(backends)('$name: raw handles', (backend) => {
  const raw = () => backend.raw;

  test('a handle names this backend, the string kind, and a live generation', () => {
    const h = raw().print_and_return('tagged');
    const parts = decodeHandle(h);
    expect(Number.isSafeInteger(h)).toBe(true);
    expect(parts.backend).toBe(BACKEND_ID[backend.name]);
    expect(parts.kind).toBe(KIND.string);
    expect(parts.generation).toBeGreaterThanOrEqual(1);
    expect(parts.env).toBeGreaterThanOrEqual(1);
    expect(raw().free_string(h)).toBe(true);
  });

  test('a stale handle is "released": free → false, reads → ERR_NATIVE_RELEASED, even after its slot is reused', () => {
    const stale = raw().print_and_return('first');
    expect(raw().free_string(stale)).toBe(true);
    const fresh = raw().print_and_return('second'); // likely the same slot, a newer generation
    expect(raw().free_string(stale)).toBe(false);
    expect(raw().finalize_string(stale)).toBe(false);
    for (const read of [raw().string_text, raw().string_view, raw().string_info]) {
      expect(codeOf(() => read(stale))).toEqual({
        kind: 'Error',
        code: 'ERR_NATIVE_RELEASED',
        message: 'the native string was already released',
      });
    }
    expect(raw().string_text(fresh)).toBe('second');
    expect(raw().free_string(fresh)).toBe(true);
  });

  test('the other backend’s real handle → TypeError ERR_FOREIGN_HANDLE', () => {
    const foreign = other(backend).raw.print_and_return('theirs');
    try {
      for (const use of [raw().free_string, raw().finalize_string, raw().string_text, raw().string_view, raw().string_info]) {
        expect(codeOf(() => use(foreign))).toEqual({
          kind: 'TypeError',
          code: 'ERR_FOREIGN_HANDLE',
          message: `handle belongs to the ${other(backend).name} backend, not ${backend.name}`,
        });
      }
    } finally {
      expect(other(backend).raw.free_string(foreign)).toBe(true);
    }
  });

  test('forged handles of every kind are refused', () => {
    const h = raw().print_and_return('real');
    const p = decodeHandle(h);
    try {
      const invalid = (n: number) => ({
        kind: 'TypeError',
        code: 'ERR_INVALID_HANDLE',
        message: `${n} is not a live or released string handle of the ${backend.name} backend`,
      });
      const forged = {
        'a newer generation': encodeHandle({ ...p, generation: p.generation + 1 }),
        'a slot never issued': encodeHandle({ ...p, slot: (1 << 22) - 1 }),
        'the subscription kind': encodeHandle({ ...p, kind: KIND.subscription }),
        'an unknown backend': encodeHandle({ ...p, backend: 3 }),
        'no tag at all': encodeHandle({ ...p, backend: 0, kind: 0 }),
      };
      for (const [what, n] of Object.entries(forged)) {
        expect(codeOf(() => raw().free_string(n)), what).toEqual(invalid(n));
      }
      for (const n of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
        expect(codeOf(() => raw().free_string(n)).code, String(n)).toBe('ERR_INVALID_HANDLE');
      }
      expect(codeOf(() => raw().free_string(encodeHandle({ ...p, env: (p.env % 255) + 1 })))).toEqual({
        kind: 'Error',
        code: 'ERR_FOREIGN_ENV',
        message: 'handle belongs to another Node.js environment (worker thread)',
      });
      for (const notANumber of ['1', null, undefined, {}, 1n]) {
        const e = codeOf(() => raw().free_string(notANumber as unknown as number));
        expect(e.kind).toBe('TypeError');
        expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
      }
      // Nothing forged touched the real string.
      expect(raw().string_text(h)).toBe('real');
    } finally {
      expect(raw().free_string(h)).toBe(true);
    }
  });

  test('noop() is a real native call that returns undefined', () => {
    expect(raw().noop()).toBeUndefined();
  });
});

describe('both backends speak with one voice', () => {
  const inputs: unknown[] = [42, null, 'a\0b', Uint8Array.of(0xc3), Uint8Array.of(0x61, 0, 0x62)];
  test.each(inputs.map((x) => [x]))('print_and_return(%s): same error class, code and message', (input) => {
    const [cppErr, rustErr] = backends.map((b) => codeOf(() => b.raw.print_and_return(input as string)));
    expect(rustErr).toEqual(cppErr);
  });
});
