/**
 * The raw addon contract (docs/raw-contract.md), implemented identically by the C++ and the Rust addon.
 * A handle is a plain number naming a slot in the addon's per-environment table: it owns nothing by itself.
 */
export type Handle = number;

export interface StringLedger {
  /** Strings allocated by the core and not yet released. */
  live: number;
  /** Every successful print_and_return. */
  allocated: number;
  /** Released by an explicit free (free(), using, freeString). */
  freed: number;
  /** Released by the FinalizationRegistry fallback after the wrapper was collected. */
  finalized: number;
  /** UTF-8 bytes held by live strings (without NUL terminators). */
  liveBytes: number;
  /**
   * Released strings whose bytes are still held by views (zero-copy Uint8Arrays taken before the release, or native
   * code such as fs or zlib that a view was handed to). Freed when the last such view is collected.
   */
  viewHeld: number;
  /** The bytes of those strings. */
  viewHeldBytes: number;
  /** view() calls that returned a copy: the runtime refuses external buffers, or a copy-views build. */
  viewCopies: number;
  /**
   * Views whose buffer the runtime finalized on a thread other than the JS thread (Deno 2.9 runs external buffers'
   * finalizers from V8's backing-store deleter, sometimes on a V8 background thread; Node never does). The addons'
   * view finalizers are written for it: they touch only atomics and the core's free.
   */
  viewFinalizedOffThread: number;
}

export interface HandlerLedger {
  /** Registrations currently held by the dispatcher for this backend and environment. */
  live: number;
  /** Every successful handler(). */
  registered: number;
  /** Cancelled explicitly: cancel(), using, an aborted signal, shutdown(). */
  cancelled: number;
  /** Cancelled by the FinalizationRegistry fallback after the Subscription was collected. */
  finalized: number;
}

export interface PostLedger {
  /** Messages queued by post() and by producers. */
  posted: number;
  /** Callbacks run on the JS thread for posted messages. */
  delivered: number;
  /** Deliveries dropped because their subscription was cancelled before the JS thread got to them. */
  skipped: number;
  /** Items on the worker or the threadsafe function, not processed yet. */
  pending: number;
}

export interface ProducerLedger {
  live: number;
  started: number;
  stopped: number;
  finalized: number;
}

/** Native memory as V8 was told of it (napi_adjust_external_memory): live strings' bytes and registrations. */
export interface MemoryLedger {
  /** The net bytes reported so far. */
  reported: number;
  /** The difference not yet reported: it goes with the next batch (64 KiB, or a single change that large). */
  pending: number;
}

export interface RawStats {
  strings: StringLedger;
  handlers: HandlerLedger;
  posts: PostLedger;
  producers: ProducerLedger;
  memory: MemoryLedger;
}

export interface RawAddon {
  /** Copies `input` into a string owned by the addon's core; returns its handle. */
  print_and_return(input: string | Uint8Array): Handle;
  /** Ends the handle now: true, or false if it was already released. Views taken before keep their bytes. */
  free_string(handle: Handle): boolean;
  /** As free_string, counted as `finalized`: the FinalizationRegistry's path. */
  finalize_string(handle: Handle): boolean;
  string_text(handle: Handle): string;
  /** A zero-copy Uint8Array whose external ArrayBuffer co-owns the bytes (a copy where external buffers are refused). */
  string_view(handle: Handle): Uint8Array;
  string_info(handle: Handle): { address: bigint; byteLength: number };
  /** Boxes `callback` (kept alive by a strong reference while registered) and registers it under `dest`. */
  handler(dest: string, callback: (message: string) => void): Handle;
  /** Cancels and frees the boxes: true, or false if already cancelled (or, with `dest`, registered under another dest). */
  cancel(handle: Handle, dest?: string): boolean;
  /** As cancel, counted as `finalized`: the FinalizationRegistry's path. */
  finalize_subscription(handle: Handle): boolean;
  subscription_active(handle: Handle): boolean;
  /** Calls every callback under `dest` on this thread; returns how many ran. Rethrows what they threw, afterwards. */
  send(dest: string, message: string): number;
  /** Cancels every registration of this environment; returns how many. */
  shutdown(): number;
  /** Queues the message for the dispatcher's worker thread; settles on the JS thread with how many callbacks ran. */
  post(dest: string, message: string): Promise<number>;
  /** Starts a native thread that posts `count` messages ("0", "1", …) `intervalMs` apart. */
  produce(dest: string, count: number, intervalMs: number): { handle: Handle; done: Promise<number> };
  /** Stops now and joins the thread; releases the handle. True if this stopped it early. */
  producer_stop(handle: Handle): boolean;
  finalize_producer(handle: Handle): boolean;
  producer_active(handle: Handle): boolean;
  stats(): RawStats;
  noop(): undefined;
  /**
   * The library-idiom twins of the three fast-path exports (`#[napi]` functions in Rust, `Napi::Addon` instance
   * methods in C++), with the same contract and the same table: they exist so `npm run bench` can show what each
   * library's convenience costs beside the raw Node-API path. Not part of the public API.
   */
  noop_idiomatic(): undefined;
  print_and_return_idiomatic(input: string | Uint8Array): Handle;
  free_string_idiomatic(handle: Handle): boolean;
  /**
   * The benchmark floor of a first view: a bare external ArrayBuffer of `length` bytes (0 to 1 MiB) and a Uint8Array
   * over it, with no ownership work. Its bytes are a static scratch shared by every such view: not for data.
   */
  noop_view(length: number): Uint8Array;
}
