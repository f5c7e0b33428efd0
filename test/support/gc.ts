/**
 * Node's test/common/gc.js `gcUntil`, for vitest: collect, yield to the event loop so FinalizationRegistry callbacks
 * and Node-API finalizers can run, check, and give up after a bounded number of rounds. Never a sleep.
 */
declare const gc: (() => void) | undefined;
declare const Bun: { gc(force: boolean): void } | undefined;

/** A full collection: node's and Deno's `gc()` (--expose-gc, --v8-flags=--expose-gc), or Bun's synchronous `Bun.gc(true)`. */
export function collect(): void {
  if (typeof gc === 'function') return gc();
  if (typeof Bun === 'object') return Bun.gc(true);
  throw new Error('gc() is not exposed: run node with --expose-gc (deno: --v8-flags=--expose-gc)');
}

/**
 * Rounds before giving up. JavaScriptCore (Bun) scans the stack conservatively: a dropped object can stay reachable
 * from a stale stack slot until later work overwrites it, so Bun gets ten times the rounds (measured: signals suite, 1
 * run in 12 timed out at 100 rounds, none in 12 at 1000).
 */
const defaultRounds = typeof Bun === 'object' ? 1000 : 100;

export async function gcUntil(what: string, done: () => boolean, rounds = defaultRounds): Promise<void> {
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

