/**
 * The one table of every error napi-ownership throws, from TypeScript, C++ or Rust: its `code`, its class, its
 * wording and when it happens. Everything else is derived from it or checked against it:
 * - the `ErrorCode` type (./errors.ts) is this table's codes, so TypeScript cannot throw a code that is not here;
 * - the native constants, `native-cpp/addon/src/error_codes.hpp` and `native-rust/addon/src/error_codes.rs`, are
 *   generated from it (`npm run gen:errors`), one constant per code an addon throws;
 * - the README's error table is generated from it (between its `errors:begin` / `errors:end` markers);
 * - test/error-table.test.ts fails if any of those differs from this table, if native sources spell a code outside
 *   their generated constants, and (test/support/error-audit.ts) if an addon throws, during the suites, a code that is
 *   not here or under a class that is not the code's.
 */

/** The JS class of an error, by constructor name. */
export type ErrorClassName = 'Error' | 'TypeError' | 'RangeError' | 'AggregateError';

export interface ErrorRow {
  readonly code: string;
  readonly class: ErrorClassName;
  /** Who throws it: the addons (and maybe TS first, checking the same thing), or the TypeScript layer only. */
  readonly thrownBy: 'native' | 'ts';
  /** The message, with `<name>` for what varies; one wording in TS, C++ and Rust. */
  readonly message: string;
  /** When it is thrown, for the README. */
  readonly when: string;
}

export const ERROR_TABLE = [
  {
    code: 'ERR_INVALID_ARG_TYPE',
    class: 'TypeError',
    thrownBy: 'native',
    message: 'Expected <what> for <name> but received <got>',
    when: 'an argument of the wrong type: `input` not a string or Uint8Array, a handle not a number, `dest` or `message` not a string, `callback` not a function',
  },
  {
    code: 'ERR_INVALID_ARG_VALUE',
    class: 'RangeError',
    thrownBy: 'native',
    message: 'dest must be a non-empty string',
    when: 'an empty `dest`',
  },
  {
    code: 'ERR_INTERIOR_NUL',
    class: 'RangeError',
    thrownBy: 'native',
    message: '<name> contains a NUL byte at offset <n>; a NUL-terminated C string cannot carry it',
    when: 'the input (or `dest`, `message`) holds U+0000: a NUL-terminated C string cannot carry it',
  },
  {
    code: 'ERR_INVALID_UTF8',
    class: 'RangeError',
    thrownBy: 'native',
    message: 'input is not valid UTF-8 (first bad byte at offset <n>)',
    when: 'a Uint8Array input is not valid UTF-8',
  },
  {
    code: 'ERR_NATIVE_ALLOC',
    class: 'RangeError',
    thrownBy: 'native',
    message: 'could not allocate <n> bytes for the native copy',
    when: 'the native copy, a handle slot or a subscription could not be allocated (nothing was kept)',
  },
  {
    code: 'ERR_NATIVE_RELEASED',
    class: 'Error',
    thrownBy: 'native',
    message: 'the native <kind> was already released',
    when: '`toString()`, `view()`, `address`, `byteLength` after release',
  },
  {
    code: 'ERR_INVALID_HANDLE',
    class: 'TypeError',
    thrownBy: 'native',
    message: '<n> is not a live or released <kind> handle of the <backend> backend',
    when: 'a raw handle that was never issued, or of another kind',
  },
  {
    code: 'ERR_FOREIGN_HANDLE',
    class: 'TypeError',
    thrownBy: 'native',
    message: 'handle belongs to the <other> backend, not <backend>',
    when: "one backend's string or subscription given to the other",
  },
  {
    code: 'ERR_FOREIGN_ENV',
    class: 'Error',
    thrownBy: 'native',
    message: 'handle belongs to another Node.js environment (worker thread)',
    when: 'a raw handle from another worker thread',
  },
  {
    code: 'ERR_OUT_OF_RANGE',
    class: 'RangeError',
    thrownBy: 'native',
    message: 'The value of "<name>" is out of range. It must be an integer from <min> to <max>. Received <got>',
    when: '`count` / `intervalMs` of `produce()` (or the length of the raw `noop_view`) not an integer in range',
  },
  {
    code: 'ERR_CALLBACKS_THREW',
    class: 'AggregateError',
    thrownBy: 'native',
    message: '<n> callbacks threw while delivering to "<dest>"',
    when: 'several callbacks threw during one `send` or one delivery (its `errors` are what they threw, in order)',
  },
  {
    code: 'ERR_NATIVE_INTERNAL',
    class: 'Error',
    thrownBy: 'native',
    message: 'internal error in the <backend> backend: <what>',
    when: "a Node-API call failed where it cannot, or a Rust panic was caught: a bug of ours, never a crash (in C++, outside the raw fast path, node-addon-api throws its own `Error` with Node-API's message and no code)",
  },
  {
    code: 'ERR_NATIVE_ADDON_LOAD',
    class: 'Error',
    thrownBy: 'ts',
    message: 'napi-ownership: could not load the <backend> addon for <platform> (…). Paths tried: … Possible solutions: …',
    when: 'a binary is missing or will not load: the message lists the paths tried and what to run; `cause` is set',
  },
] as const satisfies readonly ErrorRow[];

/** Every code napi-ownership throws. */
export type ErrorCode = (typeof ERROR_TABLE)[number]['code'];

/** The table's row for `code`, or undefined if the code is not ours. */
export function errorRow(code: string): ErrorRow | undefined {
  return ERROR_TABLE.find((row) => row.code === code);
}
