import { inspect } from 'node:util';
import type { Backend } from './backend.js';
import { releasedError } from './errors.js';
import { PENDING, RELEASED } from './fallback.js';

/**
 * A UTF-8 string owned by a backend's native core (C++ `new[]` or Rust `CString`).
 *
 * Ownership: the bytes belong to the native core that allocated them and are freed only by it — by `free()`,
 * by `using` (Symbol.dispose), by `backend.freeString(s)`, or, if this wrapper is collected while still live, by the
 * backend's FinalizationRegistry fallback (counted as `finalized` in `stats()`). JS holds only a handle (a number).
 */
export class NativeString implements Disposable {
  /** @internal The addon's handle: a number naming a slot of the native table. */
  _handle: number;
  /** @internal PENDING / ARMED / RELEASED, see ./fallback.ts. */
  _life: number = PENDING;
  /** @internal */
  readonly _backend: Backend;
  #info: { address: bigint; byteLength: number } | undefined;

  private constructor(backend: Backend, handle: number) {
    this._backend = backend;
    this._handle = handle;
  }

  /** @internal Only a Backend makes these. */
  static _create(backend: Backend, handle: number): NativeString {
    return new NativeString(backend, handle);
  }

  /** Which backend's core owns the bytes. */
  get backend(): Backend['name'] {
    return this._backend.name;
  }

  /** True once released (explicitly or by the fallback). */
  get freed(): boolean {
    return this._life === RELEASED;
  }

  /** Copies the native bytes into a new JS string. Throws `ERR_NATIVE_RELEASED` after release. */
  toString(): string {
    this.#assertLive();
    return this._backend.raw.string_text(this._handle);
  }

  /**
   * A Uint8Array over the native bytes themselves (zero-copy). Writes go to native memory. When the string is
   * released every view is detached (byteLength 0), so JS can never read freed memory.
   */
  view(): Uint8Array {
    this.#assertLive();
    return this._backend.raw.string_view(this._handle);
  }

  /** Where the native bytes live. */
  get address(): bigint {
    return this.#infoOf().address;
  }

  /** UTF-8 bytes, without the NUL terminator. */
  get byteLength(): number {
    return this.#infoOf().byteLength;
  }

  /** Releases the native bytes now. True: released by this call; false: it was already released. */
  free(): boolean {
    // disown first: even if the addon throws, the fallback will not release this handle a second time.
    return this._backend._fallback.disown(this) && this._backend.raw.free_string(this._handle);
  }

  [Symbol.dispose](): void {
    this.free();
  }

  [inspect.custom](): string {
    if (this.freed) return `NativeString [${this.backend}] <released>`;
    const { address, byteLength } = this.#infoOf();
    return `NativeString [${this.backend}] { byteLength: ${byteLength}, address: 0x${address.toString(16)} }`;
  }

  #infoOf(): { address: bigint; byteLength: number } {
    this.#assertLive();
    return (this.#info ??= this._backend.raw.string_info(this._handle));
  }

  #assertLive(): void {
    if (this._life === RELEASED) throw releasedError('string');
  }
}
