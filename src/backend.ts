import { foreignHandleError, invalidArgType, validateDest } from './errors.js';
import { Fallback, RELEASED } from './fallback.js';
import { NativeString } from './native-string.js';
import type { HandlerLedger, MemoryLedger, PostLedger, ProducerLedger, RawAddon, StringLedger } from './native/raw.js';
import { Producer } from './producer.js';
import { Subscription } from './subscription.js';

export type BackendName = 'cpp' | 'rust';

export interface Stats {
  strings: StringLedger;
  handlers: HandlerLedger;
  posts: PostLedger;
  producers: ProducerLedger;
  memory: MemoryLedger;
}

export interface ProduceOptions {
  /** How many messages to post: an integer from 0 to 2^32 - 1. */
  count: number;
  /** Milliseconds between messages: an integer from 0 to 60000 (default 0). */
  intervalMs?: number | undefined;
}

export interface HandlerOptions {
  /** Aborting it cancels the subscription; an already-aborted signal registers nothing. */
  signal?: AbortSignal | undefined;
}

const trace = process.env.NAPI_OWNERSHIP_TRACE === '1';

/**
 * One native backend: the C++ addon (node-addon-api) or the Rust addon (napi-rs), behind the same API.
 * The addon is loaded on first use, so a missing binary of one backend does not break the other.
 */
export class Backend {
  readonly name: BackendName;
  readonly #load: () => RawAddon;
  #raw: RawAddon | undefined;
  #fallback: Fallback | undefined;
  #handlerFallback: Fallback | undefined;
  /**
   * The 'abort' listener of every live subscription that follows a signal, by handle. Removed on every path that ends
   * the subscription: cancel/dispose/abort (`_cancel`), the fallback (its release callback) and `shutdown()`. Kept
   * here, not on the Subscription, because the fallback runs after the Subscription is gone. The listener holds the
   * Subscription only by a WeakRef, so following a signal never keeps it alive.
   */
  readonly #followed = new Map<number, { signal: AbortSignal; listener: () => void }>();

  /** Use the exported `cpp` and `rust`; `load` returns the raw addon (see ./native/). */
  constructor(name: BackendName, load: () => RawAddon) {
    this.name = name;
    this.#load = load;
  }

  /** The raw addon (docs/raw-contract.md): handles are plain numbers and nothing is released for you. */
  get raw(): RawAddon {
    return (this.#raw ??= this.#load());
  }

  /** @internal The FinalizationRegistry fallback for this backend's objects. */
  get _fallback(): Fallback {
    return (this.#fallback ??= new Fallback((handle) => this.raw.finalize_string(handle)));
  }

  /** @internal The FinalizationRegistry fallback for this backend's subscriptions. */
  get _handlerFallback(): Fallback {
    return (this.#handlerFallback ??= new Fallback((handle) => {
      this.#unfollow(handle); // the Subscription is gone: its signal must not keep a listener for it
      this.raw.finalize_subscription(handle);
    }));
  }

  /**
   * Seed 003's `print_and_return`: the backend's core copies `input` (UTF-8) into memory it owns and hands it back.
   * A Uint8Array is read in place; it must hold valid UTF-8 without NUL bytes.
   * Ownership: freed by `free()` / `using` / `freeString`, or by the fallback if the result is collected while live.
   */
  printAndReturn(input: string | Uint8Array): NativeString {
    if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
      throw invalidArgType('a string or Uint8Array', 'input', input);
    }
    const raw = this.raw;
    const s = NativeString._create(this, raw.print_and_return(input));
    this._fallback.adopt(s);
    if (trace) {
      process.stderr.write(`[napi-ownership ${this.name}] JS received address: 0x${s.address.toString(16)}\n`);
    }
    return s;
  }

  /** Seed 003's `free_string`, as a function of the backend: the same as `s.free()`, refusing another backend's string. */
  freeString(s: NativeString): boolean {
    if (!(s instanceof NativeString)) throw invalidArgType('a NativeString', 's', s);
    if (s._backend !== this) throw foreignHandleError(s._backend.name, this.name);
    return s.free();
  }

  /**
   * Seed 000's `handler_`: boxes `callback` natively and registers it with the dispatcher under `dest`.
   * The callback stays alive while registered, even if JS drops every other reference to it.
   * Ownership: the returned Subscription owns the registration; keep it as long as you want messages.
   */
  handler(dest: string, callback: (message: string) => void, options?: HandlerOptions): Subscription {
    validateDest(dest);
    if (typeof callback !== 'function') throw invalidArgType('a function', 'callback', callback);
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw invalidArgType('an object', 'options', options);
    }
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw invalidArgType('an AbortSignal', 'options.signal', signal);
    }
    if (signal?.aborted) return Subscription._inactive(this, dest);
    const sub = Subscription._create(this, dest, this.raw.handler(dest, callback));
    this._handlerFallback.adopt(sub);
    if (signal) this.#follow(sub, signal);
    return sub;
  }

  /** Cancels `sub` when `signal` aborts, without the listener keeping `sub` alive. */
  #follow(sub: Subscription, signal: AbortSignal): void {
    const handle = sub._handle;
    const weak = new WeakRef(sub);
    const listener = (): void => {
      const live = weak.deref();
      if (live) live.cancel();
      else this.#unfollow(handle); // collected, not yet finalized: the fallback cancels it
    };
    this.#followed.set(handle, { signal, listener });
    signal.addEventListener('abort', listener, { once: true });
  }

  /** Removes the 'abort' listener of subscription `handle`, if it has one. */
  #unfollow(handle: number): void {
    const followed = this.#followed.get(handle);
    if (followed === undefined) return;
    this.#followed.delete(handle);
    followed.signal.removeEventListener('abort', followed.listener);
  }

  /** Delivers `message` to every callback registered under `dest`, synchronously. Returns how many ran. */
  send(dest: string, message: string): number {
    validateDest(dest);
    if (typeof message !== 'string') throw invalidArgType('a string', 'message', message);
    return this.raw.send(dest, message);
  }

  /**
   * Seed 000's `cancel_(dest, wrapper)`: cancels `sub` if it is registered under `dest`. False (and `sub` stays
   * active) if it is registered under another dest or no longer registered.
   */
  cancel(dest: string, sub: Subscription): boolean {
    validateDest(dest);
    if (!(sub instanceof Subscription)) throw invalidArgType('a Subscription', 'sub', sub);
    if (sub._backend !== this) throw foreignHandleError(sub._backend.name, this.name);
    return this._cancel(sub, dest);
  }

  /** @internal Every cancel path ends here. */
  _cancel(sub: Subscription, dest?: string): boolean {
    if (sub._life === RELEASED) return false;
    const cancelled = dest === undefined ? this.raw.cancel(sub._handle) : this.raw.cancel(sub._handle, dest);
    // Without a dest, false means native code already let go (shutdown): the Subscription is done either way.
    if (cancelled || dest === undefined) {
      this._handlerFallback.disown(sub);
      if (this.#followed.size !== 0) this.#unfollow(sub._handle);
    }
    return cancelled;
  }

  /**
   * Queues `message` for the dispatcher's own worker thread, which calls the handlers of `dest` off the JS thread; each
   * call is carried back to the JS thread (a threadsafe function). Resolves with how many callbacks ran; a callback
   * cancelled before its turn is skipped, never called. Rejects like `send` throws if callbacks threw.
   */
  post(dest: string, message: string): Promise<number> {
    validateDest(dest);
    if (typeof message !== 'string') throw invalidArgType('a string', 'message', message);
    return this.raw.post(dest, message);
  }

  /** Starts a native producer thread posting `count` messages ("0", "1", …) to `dest`. See {@link Producer}. */
  produce(dest: string, options: ProduceOptions): Producer {
    validateDest(dest);
    if (options === null || typeof options !== 'object') throw invalidArgType('an object', 'options', options);
    const { count, intervalMs = 0 } = options;
    const { handle, done } = this.raw.produce(dest, count, intervalMs);
    return Producer._create(this, dest, handle, done);
  }

  /** @internal Every stop path ends here; releases the native record once. */
  _stopProducer(producer: Producer): boolean {
    if (producer._released) return false;
    producer._released = true;
    return this.raw.producer_stop(producer._handle);
  }

  /** Cancels every registration of this backend in this environment; returns how many. The backend stays usable. */
  shutdown(): number {
    const cancelled = this.raw.shutdown();
    // Every registration is gone: so is every reason to listen to a signal.
    for (const { signal, listener } of this.#followed.values()) signal.removeEventListener('abort', listener);
    this.#followed.clear();
    return cancelled;
  }

  /** This environment's ledger of native allocations, read from the addon. */
  stats(): Stats {
    return this.raw.stats();
  }
}
