import { inspect } from 'node:util';
import type { Backend } from './backend.js';
import { releasedError } from './errors.js';
import { PENDING, RELEASED } from './fallback.js';

/**
 * A UTF-8 string owned by a backend's native core (C++ `new[]` or Rust `CString`).
 *
 * Ownership: the bytes belong to the native core that allocated them and are freed only by it. This wrapper's handle
 * (a number) is released by `free()`, by `using` (Symbol.dispose), by `backend.freeString(s)`, or, if this wrapper
 * is collected while still live, by the backend's FinalizationRegistry fallback (counted as `finalized` in
 * `stats()`). Views share the bytes: they are freed once the handle and every view have let go.
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
   * A Uint8Array over the native bytes themselves (zero-copy); writes go to native memory. The view co-owns the
   * bytes: it keeps them alive after `free()` (or the fallback) ends this string, for as long as the view — or native
   * code it was handed to, such as `fs.write`, zlib or a socket — can still reach them, and they are freed when the
   * last view is collected (`stats().strings.viewHeld` counts such strings). Where the runtime refuses external
   * buffers, it is a copy instead (counted in `stats().strings.viewCopies`). Throws `ERR_NATIVE_RELEASED` after release.
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

  /**
   * Ends this string now: the handle is released and every accessor throws `ERR_NATIVE_RELEASED` from here on. The
   * bytes are freed now, or, if views taken before still hold them, when the last of those is collected.
   * True: released by this call; false: it was already released.
   */
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
