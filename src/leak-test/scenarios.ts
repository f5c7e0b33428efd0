/**
 * The leak-test scenarios: every allocation pattern of the package, each looped enough (≥ 1000 times) that a leak of
 * one allocation per iteration stands out in valgrind's totals. Each runs in its own process (./scenario-main.ts)
 * against one backend, checks its own ledger, and collects garbage before exit so that nothing of node's own shows.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../native/load.js';
import type { Backend, Stats } from '../index.js';

export const ITERATIONS = 1000;

export interface Scenario {
  name: string;
  /** What allocation pattern it exercises. */
  covers: string;
  run(backend: Backend): Promise<void> | void;
  /** Whether the ledger must be back at its baseline when `run` returns (false: the process exits with live handles). */
  balanced?: false;
}

declare const gc: () => void;

/** Node's gcUntil: collect, yield a job so FinalizationRegistry callbacks run, check; bounded. */
export async function gcUntil(what: string, done: () => boolean, rounds = 200): Promise<void> {
  const nextJob = () => new Promise<void>((resolve) => setImmediate(resolve));
  for (let i = 0; i < rounds; i++) {
    await nextJob(); // what done() deref'd stays alive until its job ends: collect in a later one
    gc();
    await nextJob();
    if (done()) return;
  }
  throw new Error(`still waiting for ${what} after ${rounds} rounds of gc()`);
}

function expectEqual(what: string, actual: unknown, expected: unknown): void {
  if (actual !== expected) throw new Error(`${what}: expected ${String(expected)}, got ${String(actual)}`);
}

/** Worker threads run compiled JS (they do not get tsx's loader): the package's dist/ copy of worker-entry. */
const workerEntry = () =>
  import.meta.url.endsWith('.ts')
    ? pathToFileURL(join(packageRoot, 'dist', 'leak-test', 'worker-entry.js'))
    : new URL('./worker-entry.js', import.meta.url);

const text = (i: number) => `leak-test message #${i} 👋`;

export const scenarios: Scenario[] = [
  {
    name: 'strings-freed',
    covers: 'printAndReturn, toString, view, free(); string and Uint8Array input',
    run(b) {
      const bytes = new TextEncoder().encode('bytes read in place');
      for (let i = 0; i < ITERATIONS; i++) {
        const s = b.printAndReturn(i % 2 ? text(i) : bytes);
        s.toString();
        s.view();
        void s.address;
        expectEqual('free()', s.free(), true);
      }
    },
  },
  {
    name: 'strings-using',
    covers: 'using (Symbol.dispose) and freeString()',
    run(b) {
      for (let i = 0; i < ITERATIONS; i++) {
        using s = b.printAndReturn(text(i));
        s.view();
      }
      for (let i = 0; i < ITERATIONS; i++) b.freeString(b.printAndReturn(text(i)));
    },
  },
  {
    name: 'strings-finalized',
    covers: 'strings never freed, released by the FinalizationRegistry after gc',
    async run(b) {
      const before = b.stats().strings.finalized;
      (() => {
        for (let i = 0; i < ITERATIONS; i++) b.printAndReturn(text(i)).view();
      })();
      // Bounded wait; if the fallback never releases, the ledger check after the scenario says so.
      await gcUntil(`${ITERATIONS} strings finalized`, () => b.stats().strings.finalized - before >= ITERATIONS, 40).catch(() => {});
    },
  },
  {
    name: 'views-held-past-free',
    covers: 'views kept after free(): detached, so reading them never touches freed memory',
    run(b) {
      const views: Uint8Array[] = [];
      for (let i = 0; i < ITERATIONS; i++) {
        const s = b.printAndReturn(text(i));
        views.push(s.view());
        s.free();
      }
      let sum = 0;
      for (const v of views) for (let j = 0; j < v.length; j++) sum += v[j]!; // reads freed memory if not detached
      expectEqual('bytes readable through views after free', sum, 0);
    },
  },
  {
    name: 'subs-cancelled',
    covers: 'handler, send, cancel() and the seed-shaped cancel(dest, sub)',
    run(b) {
      let calls = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const sub = b.handler('leak', () => calls++);
        b.send('leak', text(i));
        expectEqual('cancel', i % 2 ? sub.cancel() : b.cancel('leak', sub), true);
      }
      expectEqual('callbacks run', calls, ITERATIONS);
    },
  },
  {
    name: 'subs-disposed',
    covers: 'using on a Subscription',
    run(b) {
      for (let i = 0; i < ITERATIONS; i++) {
        using sub = b.handler('leak', () => {});
        b.send('leak', text(i));
        void sub;
      }
    },
  },
  {
    name: 'subs-aborted',
    covers: 'AbortSignal cancels; an already-aborted signal registers nothing',
    run(b) {
      for (let i = 0; i < ITERATIONS; i++) {
        const controller = new AbortController();
        b.handler('leak', () => {}, { signal: controller.signal });
        controller.abort();
        b.handler('leak', () => {}, { signal: controller.signal });
      }
      expectEqual('delivered after abort', b.send('leak', 'x'), 0);
    },
  },
  {
    name: 'subs-shutdown',
    covers: 'shutdown() cancels every registration; the backend is used again after',
    run(b) {
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < ITERATIONS / 10; i++) b.handler(`leak-${i % 7}`, () => {});
        b.send('leak-3', text(round));
        b.shutdown();
      }
    },
  },
  {
    name: 'subs-finalized',
    covers: 'Subscriptions dropped without cancel, cancelled by the FinalizationRegistry after gc',
    async run(b) {
      const before = b.stats().handlers.finalized;
      (() => {
        for (let i = 0; i < ITERATIONS; i++) b.handler('leak', () => {});
      })();
      await gcUntil(`${ITERATIONS} subscriptions finalized`, () => b.stats().handlers.finalized - before >= ITERATIONS, 40).catch(() => {});
    },
  },
  {
    name: 'callbacks-throw',
    covers: 'callbacks that throw: one error, and several (AggregateError)',
    run(b) {
      const subs = [
        b.handler('leak', () => {
          throw new Error('first');
        }),
        b.handler('leak', () => {}),
        b.handler('leak', () => {
          throw new Error('second');
        }),
      ];
      const one = b.handler('one', () => {
        throw new Error('only');
      });
      for (let i = 0; i < ITERATIONS; i++) {
        try {
          b.send(i % 2 ? 'leak' : 'one', text(i));
          throw new Error('send did not throw');
        } catch (error) {
          if (!(error instanceof Error) || error.message === 'send did not throw') throw error;
        }
      }
      for (const s of [...subs, one]) s.cancel();
    },
  },
  {
    name: 'reentrant-cancel',
    covers: 'callbacks that cancel themselves and others, register new handlers and send, during a send',
    run(b) {
      for (let i = 0; i < ITERATIONS; i++) {
        const added: { cancel(): boolean }[] = [];
        let victim: { cancel(): boolean } | undefined;
        const self = b.handler('re', () => {
          self.cancel();
          victim?.cancel();
          added.push(b.handler('re', () => {}));
          b.send('re-inner', 'nested');
        });
        victim = b.handler('re', () => {});
        const inner = b.handler('re-inner', () => {});
        b.send('re', text(i));
        for (const s of added) s.cancel();
        inner.cancel();
      }
    },
  },
  {
    name: 'posts-delivered',
    covers: 'post() and a native producer: callbacks run from the dispatcher’s worker thread, carried to JS',
    async run(b) {
      let calls = 0;
      const sub = b.handler('leak', () => calls++);
      for (let i = 0; i < ITERATIONS; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => b.post('leak', text(i + j))));
      }
      const producer = b.produce('leak', { count: ITERATIONS });
      await producer.done;
      await b.post('leak', 'last');
      sub.cancel();
      expectEqual('callbacks run', calls, 2 * ITERATIONS + 1);
    },
  },
  {
    name: 'posts-cancelled-mid-stream',
    covers: 'subscriptions cancelled while a producer streams: queued deliveries skipped, producer stopped early',
    async run(b) {
      for (let round = 0; round < 10; round++) {
        let cancelled = false;
        let late = 0;
        const sub = b.handler('stream', () => {
          if (cancelled) late++;
        });
        const producer = b.produce('stream', { count: ITERATIONS, intervalMs: 0 });
        const posts = Array.from({ length: 100 }, () => b.post('stream', 'x'));
        sub.cancel();
        cancelled = true;
        producer.stop();
        await Promise.all([producer.done, ...posts]);
        expectEqual('callbacks after cancel', late, 0);
      }
    },
  },
  {
    name: 'worker-terminated',
    covers: 'a worker thread making strings and subscriptions, terminated mid-flight: its environment frees all',
    async run(b) {
      for (let i = 0; i < 4; i++) {
        const worker = new Worker(workerEntry(), { workerData: { backend: b.name } }); // inherits the parent's node options
        await new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
        });
        await worker.terminate();
      }
    },
  },
  {
    name: 'exit-with-live-handles',
    covers: 'the process exits with strings, views and subscriptions still live: environment teardown frees them',
    balanced: false,
    run(b) {
      const keep: unknown[] = [];
      for (let i = 0; i < ITERATIONS; i++) {
        const s = b.printAndReturn(text(i));
        keep.push(s, s.view());
        if (i % 10 === 0) keep.push(b.handler(`live-${i}`, () => {}));
      }
      (globalThis as { keepAlive?: unknown }).keepAlive = keep;
    },
  },
  {
    name: 'exit-during-delivery',
    covers: 'a worker calls process.exit() while its producer posts and deliveries are queued: its teardown stops the threads and frees every queued item',
    async run(b) {
      for (let i = 0; i < 4; i++) {
        const worker = new Worker(workerEntry(), { workerData: { backend: b.name, exitInside: true } });
        const code = await new Promise<number>((resolve, reject) => {
          worker.once('exit', resolve);
          worker.once('error', reject);
        });
        expectEqual('worker exit code', code, 0);
      }
    },
  },
];

/** Live counts that must be back at their baseline after a balanced scenario. */
export function liveOf(stats: Stats): { strings: number; liveBytes: number; handlers: number; pending: number; producers: number } {
  return {
    strings: stats.strings.live,
    liveBytes: stats.strings.liveBytes,
    handlers: stats.handlers.live,
    pending: stats.posts.pending,
    producers: stats.producers.live,
  };
}
