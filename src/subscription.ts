import type { Backend } from './backend.js';
import { PENDING, RELEASED } from './fallback.js';

/**
 * A registration of a JS callback with a backend's dispatcher (seed 000's boxed callback).
 *
 * Ownership: the Subscription owns its registration, like a drop guard. Native code boxes the callback (holding a
 * strong reference to the function, so it lives exactly as long as it is registered) and hands the dispatcher an
 * opaque pointer to the box. `cancel()`, `using`, an aborted signal or `backend.shutdown()` cancels: the dispatcher
 * lets go, the boxes are rebuilt and dropped, and the function becomes collectable. If the Subscription itself becomes
 * unreachable while active, the backend's FinalizationRegistry cancels it (counted as `finalized`): keep the
 * Subscription as long as you want messages. With a signal, the backend keeps one 'abort' listener for it (holding it
 * only weakly) until the registration ends, however it ends.
 */
export class Subscription implements Disposable {
  /** @internal The addon's subscription handle; -1 for one that never registered (already-aborted signal). */
  _handle: number;
  /** @internal PENDING / ARMED / RELEASED, see ./fallback.ts. */
  _life: number = PENDING;
  /** @internal */
  readonly _backend: Backend;
  /** The destination it receives messages for. */
  readonly dest: string;

  private constructor(backend: Backend, dest: string, handle: number) {
    this._backend = backend;
    this.dest = dest;
    this._handle = handle;
  }

  /** @internal Only a Backend makes these. */
  static _create(backend: Backend, dest: string, handle: number): Subscription {
    return new Subscription(backend, dest, handle);
  }

  /** @internal A subscription that never registered: its signal was already aborted. */
  static _inactive(backend: Backend, dest: string): Subscription {
    const sub = new Subscription(backend, dest, -1);
    sub._life = RELEASED;
    return sub;
  }

  /** Which backend's dispatcher holds the registration. */
  get backend(): Backend['name'] {
    return this._backend.name;
  }

  /** True while registered: false after cancel, abort, dispose, shutdown or the fallback. */
  get active(): boolean {
    return this._life !== RELEASED && this._backend.raw.subscription_active(this._handle);
  }

  /** Cancels the registration. True the first time; false if it was no longer registered. */
  cancel(): boolean {
    return this._backend._cancel(this);
  }

  [Symbol.dispose](): void {
    this.cancel();
  }
}
