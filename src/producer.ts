import type { Backend } from './backend.js';

/**
 * A native producer: a thread of the backend's core that posts `count` messages ("0", "1", …) to a destination,
 * `intervalMs` apart, through the dispatcher's worker thread — the way a real C library calls back from its own threads.
 *
 * Ownership: the producer's thread and its native record are released when it has posted every message (then `done`
 * resolves), when you `stop()` it (or `using` ends), or when the environment shuts down. A running producer is kept
 * alive by its own `done` promise, so dropping the Producer does not stop it (and, while a subscription listens, it
 * keeps the process alive): stop it if you no longer want its messages.
 */
export class Producer implements Disposable {
  /** @internal */
  _handle: number;
  /** @internal */
  readonly _backend: Backend;
  /** @internal Set once the native record is released. */
  _released = false;
  /** The destination it posts to. */
  readonly dest: string;
  /** Resolves with how many messages were posted, when the producer finished or was stopped. */
  readonly done: Promise<number>;

  private constructor(backend: Backend, dest: string, handle: number, done: Promise<number>) {
    this._backend = backend;
    this.dest = dest;
    this._handle = handle;
    // Finished on its own: release the native record. (This reaction holds the Producer until then, by design.)
    this.done = done.then((posted) => {
      try {
        this._backend._stopProducer(this);
      } catch {
        // Nothing to release any more (the environment is shutting down). Never reject `done` for it: a user who does
        // not await it would get an unhandled rejection.
      }
      return posted;
    });
  }

  /** @internal Only a Backend makes these. */
  static _create(backend: Backend, dest: string, handle: number, done: Promise<number>): Producer {
    return new Producer(backend, dest, handle, done);
  }

  /** Still posting? */
  get active(): boolean {
    return !this._released && this._backend.raw.producer_active(this._handle);
  }

  /** Stops posting now (joins the native thread). True if this call stopped it early. */
  stop(): boolean {
    return this._backend._stopProducer(this);
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}
