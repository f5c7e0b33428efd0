/**
 * Every error this library throws carries a stable `code`. Native code (C++ and Rust) uses the same codes and the
 * same wording, so a caller can branch on `err.code` without caring which backend threw (docs/raw-contract.md). The codes,
 * classes and wordings are defined once, in ./error-table.ts.
 */
import type { ErrorCode } from './error-table.js';

export type { ErrorCode };

/** An Error (or TypeError/RangeError) with a `code`: what every napi-ownership error looks like. */
export type CodedError<E extends Error = Error> = E & { code: ErrorCode };

type ErrorClass = ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor;

export function codedError<C extends ErrorClass>(
  Kind: C,
  code: ErrorCode,
  message: string,
  options?: ErrorOptions,
): CodedError<InstanceType<C>> {
  const err = new Kind(message, options) as CodedError<InstanceType<C>>;
  // Defined, not assigned: a setter named `code` on Object.prototype or Error.prototype must not run (nor swallow it).
  Object.defineProperty(err, 'code', { value: code, writable: true, enumerable: true, configurable: true });
  return err;
}

/** What a value is, in the words of our messages: its `typeof`, or `null`. */
export function describeReceived(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

/** sharp's wording, shared with both addons: `Expected <what> for <name> but received <got>`. */
export function invalidArgType(what: string, name: string, value: unknown): CodedError<TypeError> {
  return codedError(
    TypeError,
    'ERR_INVALID_ARG_TYPE',
    `Expected ${what} for ${name} but received ${describeReceived(value)}`,
  );
}

export function releasedError(kind: 'string' | 'subscription'): CodedError<Error> {
  return codedError(Error, 'ERR_NATIVE_RELEASED', `the native ${kind} was already released`);
}

export function foreignHandleError(owner: string, backend: string): CodedError<TypeError> {
  return codedError(TypeError, 'ERR_FOREIGN_HANDLE', `handle belongs to the ${owner} backend, not ${backend}`);
}

export function interiorNulError(name: string, offset: number): CodedError<RangeError> {
  return codedError(
    RangeError,
    'ERR_INTERIOR_NUL',
    `${name} contains a NUL byte at offset ${offset}; a NUL-terminated C string cannot carry it`,
  );
}

/** A destination as both addons accept it: a non-empty string without NUL. Checked here first, natively again. */
export function validateDest(dest: unknown): asserts dest is string {
  if (typeof dest !== 'string') throw invalidArgType('a non-empty string', 'dest', dest);
  if (dest.length === 0) throw codedError(RangeError, 'ERR_INVALID_ARG_VALUE', 'dest must be a non-empty string');
  const nul = dest.indexOf('\0');
  if (nul !== -1) throw interiorNulError('dest', Buffer.byteLength(dest.slice(0, nul)));
}
