/**
 * The FinalizationRegistry fallback, armed lazily.
 *
 * Why lazily: registering with a FinalizationRegistry and unregistering again costs ~360 ns, several times the whole
 * native round trip it would guard (~100 ns). Most native objects are released in the same job that made them
 * (`using`, try/finally, `free()` a few lines later), so registering each one would pay for a fallback that is
 * almost never used.
 *
 * So a new owner goes on a pending list instead. When the current job ends (one microtask per job) or once 1024
 * are pending, every owner on the list that is still live is registered. An owner released before then costs one
 * array push and nothing else. The microtask is a reaction to an already-resolved promise, not queueMicrotask():
 * on Node 20 queueMicrotask wraps every callback in an AsyncResource (measured 129 ns a job against 69 ns), which
 * alone cost the one-string-per-job explicit path a third of its budget (bench: "printAndReturn + free() 16 B, one
 * per job").
 *
 * Why this loses nothing: the pending list holds its owners strongly, so none can be collected before it is armed;
 * once armed, the registry calls `release(handle)` after the owner is collected. Releasing explicitly unregisters an
 * armed owner, so the registry never releases a handle twice.
 */

/** Life of an owner: pending (live, not yet registered), armed (live, registered), released. */
export const PENDING = 0;
export const ARMED = 1;
export const RELEASED = 2;

/** What the fallback needs of an owner: its handle and a life field it may write. */
export interface Owned {
  _handle: number;
  _life: number;
}

const BATCH = 1024;
const resolved = Promise.resolve();

export class Fallback {
  readonly #registry: FinalizationRegistry<number>;
  #pending: Owned[] = [];
  #scheduled = false;
  readonly #armPending = (): void => this.armPending();

  /** `release(handle)` runs after an armed owner was collected; it must not throw (a throw here would crash). */
  constructor(release: (handle: number) => void) {
    this.#registry = new FinalizationRegistry<number>((handle) => {
      try {
        release(handle);
      } catch (error) {
        process.emitWarning(`napi-ownership: the fallback could not release handle ${handle}: ${String(error)}`);
      }
    });
  }

  /** Takes responsibility for a new live owner. */
  adopt(owner: Owned): void {
    const pending = this.#pending;
    pending.push(owner);
    if (pending.length >= BATCH) {
      this.armPending();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      void resolved.then(this.#armPending); // armPending never throws, so this reaction's promise never rejects
    }
  }

  /** Registers every pending owner that is still live. Called at the end of the job, or early when the list fills. */
  armPending(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = []; // a fresh array: truncating a large one in place is a runtime call
    for (let i = 0; i < pending.length; i++) {
      const owner = pending[i]!;
      if (owner._life === PENDING) {
        // The held value is the bare handle: holding the owner would keep it alive forever.
        this.#registry.register(owner, owner._handle, owner);
        owner._life = ARMED;
      }
    }
  }

  /** Marks an owner released by its user. Returns false if it already was. The caller releases the native side. */
  disown(owner: Owned): boolean {
    const life = owner._life;
    if (life === RELEASED) return false;
    owner._life = RELEASED;
    if (life === ARMED) this.#registry.unregister(owner);
    return true;
  }
}
