/**
 * Node's test/common/gc.js `gcUntil`, for vitest: collect, yield to the event loop so FinalizationRegistry callbacks
 * and Node-API finalizers can run, check, and give up after a bounded number of rounds. Never a sleep.
 */
declare const gc: (() => void) | undefined;
declare const Bun: { gc(force: boolean): void } | undefined;

/** A full collection: node's and Deno's `gc()` (--expose-gc, --v8-flags=--expose-gc), or Bun's synchronous `Bun.gc(true)`. */
export function collect(): void {
  if (typeof gc === 'function') return gc();
  if (typeof Bun === 'object') {
    // JavaScriptCore scans the native stack conservatively: a dead local's old value, left in a stack slot below the
    // current frame, keeps its object alive. Overwrite that region first, so "unreachable" means collectable.
    scrubStack(256);
    return Bun.gc(true);
  }
  throw new Error('gc() is not exposed: run node with --expose-gc (deno: --v8-flags=--expose-gc)');
}

export async function gcUntil(what: string, done: () => boolean, rounds = 100): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    // done() may deref() a WeakRef, which keeps its target alive until the job ends: collect in a later job.
    await nextJob();
    collect();
    await nextJob();
    if (done()) return;
  }
  throw new Error(`gcUntil: still waiting for "${what}" after ${rounds} rounds of gc()`);
}

/** A job boundary: what a WeakRef deref() or a pending fallback holds is let go only after the current job. */
export function nextJob(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** Calls itself `depth` deep with a few locals per frame, overwriting the stack below the caller with small numbers. */
function scrubStack(depth: number): number {
  const a = depth * 3;
  const b = a ^ 0x55;
  const c = b + a;
  const d = c - b;
  return depth > 0 ? scrubStack(depth - 1) + ((a + b + c + d) & 1) : 0;
}
