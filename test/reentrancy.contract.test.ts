/**
 * Re-entrancy over both backends: JS that runs in the middle of one of our exports or callbacks — a setter on a
 * prototype, a getter on globalThis, a patched builtin, a promise hook — calls back into the addon (send, post,
 * handler × 1000 so the table grows, cancel, shutdown, produce). Native code must hold no pointer, reference or
 * borrow into its tables across such JS, must not lose what it was building, and must release everything.
 *
 * Each test patches for as short a window as it can (some builtins are used by the test runner itself) and restores in
 * `finally`; afterEach checks the ledger is balanced.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promiseHooks } from 'node:v8';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { scriptArgs } from './support/runtime.js';

const promiseHooksWork = (() => {
  try {
    promiseHooks.onInit(() => {})();
    return true;
  } catch {
    return false;
  }
})();
import { backends, type Backend, type Stats, type Subscription } from '../src/index.js';
import { thrown, type Thrown } from './support/errors.js';

/** Replaces `target[key]` by `descriptor` until the returned function restores what was there (or nothing). */
function patch(target: object, key: PropertyKey, descriptor: PropertyDescriptor): () => void {
  const original = Object.getOwnPropertyDescriptor(target, key);
  Object.defineProperty(target, key, { configurable: true, ...descriptor });
  return () => {
    if (original) Object.defineProperty(target, key, original);
    else delete (target as Record<PropertyKey, unknown>)[key];
  };
}

/** A setter that behaves like a plain data property (so nothing else in the process breaks) and tells `seen`. */
function forwardingSetter(key: PropertyKey, seen: (value: unknown) => void): PropertyDescriptor {
  return {
    set(this: object, value: unknown) {
      Object.defineProperty(this, key, { value, writable: true, enumerable: true, configurable: true });
      seen(value);
    },
  };
}

/** Re-entering without ending anything else: grows the subscription table by 1000, sends to them, cancels them. */
function churn(backend: Backend, dest: string): number {
  let ran = 0;
  const subs: Subscription[] = [];
  for (let i = 0; i < 1000; i++) subs.push(backend.handler(dest, () => ran++));
  backend.send(dest, 'churn');
  for (const s of subs) s.cancel();
  return ran;
}

/** What a re-entering patch does inside our native frame: grows the subscription table, sends, and shuts down. */
function storm(backend: Backend, dest: string): { ran: number; registered: number } {
  let ran = 0;
  const subs: Subscription[] = [];
  for (let i = 0; i < 1000; i++) subs.push(backend.handler(dest, () => ran++));
  backend.send(dest, 'storm');
  for (let i = 0; i < subs.length; i += 2) subs[i]!.cancel();
  backend.shutdown(); // cancels the rest, and everything else of this backend
  return { ran, registered: subs.length };
}

const throwers = (backend: Backend, dest: string, ...errors: unknown[]): Subscription[] =>
  errors.map((error) =>
    backend.handler(dest, () => {
      throw error;
    }),
  );

describe.each(backends)('$name: re-entrancy', (backend) => {
  let before: Stats;
  beforeEach(() => {
    before = backend.stats();
  });
  afterEach(() => {
    const after = backend.stats();
    expect(after.handlers.live, 'no registration left').toBe(before.handlers.live);
    expect(after.handlers.registered - before.handlers.registered, 'registered = cancelled + finalized').toBe(
      after.handlers.cancelled - before.handlers.cancelled + (after.handlers.finalized - before.handlers.finalized),
    );
    expect(after.posts.pending, 'nothing left queued').toBe(0);
    expect(after.producers.live, 'no producer left').toBe(before.producers.live);
    expect(after.strings.live, 'no string left').toBe(before.strings.live);
  });

  describe('send() building its AggregateError', () => {
    test('Risk: a setter named code on Object.prototype re-enters while send() builds its AggregateError', () => {
      const first = new Error('first');
      const second = new TypeError('second');
      const subs = throwers(backend, 'agg-code', first, second);
      let setterRuns = 0;
      let err: Thrown;
      const restore = patch(Object.prototype, 'code', {
        set() {
          // Swallows the value (no own `code` results) and re-enters: if native code still held anything of this
          // send, the storm would free it or move it.
          setterRuns++;
          storm(backend, 'agg-code-storm');
        },
      });
      try {
        err = thrown(() => backend.send('agg-code', 'x'));
      } finally {
        restore();
      }
      for (const s of subs) s.cancel();
      expect(err).toBeInstanceOf(AggregateError);
      expect(Object.hasOwn(err, 'code') && err.code, 'code is an own property, set without [[Set]]').toBe(
        'ERR_CALLBACKS_THREW',
      );
      expect(err.message).toBe('2 callbacks threw while delivering to "agg-code"');
      expect(err.errors).toEqual([first, second]);
      expect(err.errors![0]).toBe(first);
      expect(setterRuns, 'no setter runs while the error is built').toBe(0);
    });

    test('Risk: an index setter on Array.prototype swallows the errors of send()’s AggregateError', () => {
      const values = [new Error('a'), 'b', { c: 3 }];
      const subs = throwers(backend, 'agg-index', ...values);
      let setterRuns = 0;
      let err: Thrown;
      // Counters only inside the window: any array write in the process would hit these setters.
      const restores = ['0', '1', '2'].map((index) =>
        patch(Array.prototype, index, {
          set() {
            setterRuns++;
            backend.shutdown();
          },
        }),
      );
      try {
        err = thrown(() => backend.send('agg-index', 'x'));
      } finally {
        for (const restore of restores) restore();
      }
      for (const s of subs) s.cancel();
      expect(err).toBeInstanceOf(AggregateError);
      expect(err.errors).toEqual(values);
      expect(err.errors![0]).toBe(values[0]);
      expect(setterRuns, 'the errors array is built with defined elements').toBe(0);
    });

    test('Risk: a patched Array iterator empties the errors of send()’s AggregateError', () => {
      const values = [new Error('one'), new Error('two')];
      const subs = throwers(backend, 'agg-iter', ...values);
      let err: Thrown;
      const restore = patch(Array.prototype, Symbol.iterator, {
        writable: true,
        value: function* () {
          // yields nothing: AggregateError's own copy of its iterable comes out empty
        },
      });
      try {
        err = thrown(() => backend.send('agg-iter', 'x'));
      } finally {
        restore();
      }
      for (const s of subs) s.cancel();
      expect(err.code).toBe('ERR_CALLBACKS_THREW');
      expect(err.errors).toEqual(values);
    });

    test('Risk: a getter on globalThis.AggregateError grows the table, sends re-entrantly and shuts down while send() builds its error', () => {
      const values = [new Error('x1'), new Error('x2'), new Error('x3')];
      throwers(backend, 'agg-getter', ...values); // cancelled by the getter's shutdown
      const Original = AggregateError;
      let getterRuns = 0;
      let inner: Thrown | undefined;
      let stormed = { ran: 0, registered: 0 };
      let err: Thrown;
      const restore = patch(globalThis, 'AggregateError', {
        get() {
          getterRuns++;
          if (getterRuns === 1) {
            // A nested send whose callbacks throw builds its own AggregateError (this getter again: the 2nd run).
            const nested = throwers(backend, 'agg-getter-inner', new Error('in1'), new Error('in2'));
            inner = thrown(() => backend.send('agg-getter-inner', 'nested'));
            for (const s of nested) s.cancel();
            stormed = storm(backend, 'agg-getter-storm');
          }
          return Original;
        },
      });
      try {
        err = thrown(() => backend.send('agg-getter', 'x'));
      } finally {
        restore();
      }
      expect(getterRuns).toBe(2);
      expect(inner?.code).toBe('ERR_CALLBACKS_THREW');
      expect((inner?.errors as Error[]).map((e) => e.message)).toEqual(['in1', 'in2']);
      expect(stormed).toEqual({ ran: 1000, registered: 1000 });
      expect(err).toBeInstanceOf(Original);
      expect(err.code).toBe('ERR_CALLBACKS_THREW');
      expect(err.message).toBe('3 callbacks threw while delivering to "agg-getter"');
      expect(err.errors).toEqual(values);
      expect(backend.send('agg-getter', 'after')).toBe(0); // shut down by the getter
    });

    test('Risk: a throwing getter on globalThis.AggregateError — send() throws that, nothing leaks', () => {
      const subs = throwers(backend, 'agg-throw', new Error('p'), new Error('q'));
      const boom = new Error('getter says no');
      let err: Thrown;
      const restore = patch(globalThis, 'AggregateError', {
        get() {
          throw boom;
        },
      });
      try {
        err = thrown(() => backend.send('agg-throw', 'x'));
      } finally {
        restore();
      }
      for (const s of subs) s.cancel();
      expect(err).toBe(boom);
      using ok = backend.handler('agg-throw', () => {});
      expect(backend.send('agg-throw', 'fine again')).toBe(1);
    });
  });

  describe('a post’s rejection, built in the threadsafe function’s callback', () => {
    test('Risk: a setter named code, and index setters on Array.prototype, run while a post’s AggregateError is built', async () => {
      const values = [new Error('r1'), new Error('r2')];
      const subs = throwers(backend, 'post-code', ...values);
      const ours = new Set<unknown>(values);
      let hits = 0;
      const nested: Promise<number>[] = [];
      // Forwarding setters: the rest of the process (the event loop runs in this window) keeps working.
      const restores = [
        patch(
          Object.prototype,
          'code',
          forwardingSetter('code', (value) => {
            if (value !== 'ERR_CALLBACKS_THREW') return;
            hits++;
            nested.push(backend.post('post-code-nested', 'n'));
            backend.shutdown();
          }),
        ),
        ...['0', '1'].map((index) =>
          patch(
            Array.prototype,
            index,
            forwardingSetter(index, (value) => {
              if (!ours.has(value)) return;
              hits++;
              backend.shutdown();
            }),
          ),
        ),
      ];
      let err: Thrown;
      try {
        err = await backend.post('post-code', 'x').then(
          () => {
            throw new Error('expected a rejection');
          },
          (e: unknown) => e as Thrown,
        );
      } finally {
        for (const restore of restores) restore();
      }
      for (const s of subs) s.cancel();
      await Promise.all(nested);
      expect(err).toBeInstanceOf(AggregateError);
      expect(Object.hasOwn(err, 'code') && err.code).toBe('ERR_CALLBACKS_THREW');
      expect(err.errors).toEqual(values);
      expect(hits, 'no setter of ours runs while the rejection is built').toBe(0);
    });

    test('Risk: a getter on globalThis.AggregateError posts, registers 1000 handlers and shuts down while a post’s rejection is built', async () => {
      const values = [new Error('g1'), new Error('g2')];
      throwers(backend, 'post-getter', ...values); // cancelled by the getter's shutdown
      const Original = AggregateError;
      let getterRuns = 0;
      const nested: Promise<number>[] = [];
      let stormed = { ran: 0, registered: 0 };
      const restore = patch(globalThis, 'AggregateError', {
        get() {
          getterRuns++;
          if (getterRuns === 1) {
            nested.push(backend.post('post-getter', 'again')); // its subscriptions are about to be shut down
            stormed = storm(backend, 'post-getter-storm');
            nested.push(backend.post('post-getter', 'after shutdown'));
          }
          return Original;
        },
      });
      let err: Thrown;
      try {
        err = (await backend.post('post-getter', 'x').catch((e: unknown) => e)) as Thrown;
      } finally {
        restore();
      }
      expect(getterRuns).toBe(1);
      expect(stormed).toEqual({ ran: 1000, registered: 1000 });
      expect(err).toBeInstanceOf(Original);
      expect(err.code).toBe('ERR_CALLBACKS_THREW');
      expect(err.errors).toEqual(values);
      expect(await Promise.all(nested)).toEqual([0, 0]);
    });

    test('Risk: a throwing getter on globalThis.AggregateError — the post still rejects (the thrown values are not reported as success)', async () => {
      const subs = throwers(backend, 'post-throw', new Error('t1'), new Error('t2'));
      const boom = new Error('no AggregateError today');
      const restore = patch(globalThis, 'AggregateError', {
        get() {
          throw boom;
        },
      });
      let outcome: unknown;
      try {
        outcome = await backend.post('post-throw', 'x').then(
          (ran) => ({ resolved: ran }),
          (e: unknown) => ({ rejected: e }),
        );
      } finally {
        restore();
      }
      for (const s of subs) s.cancel();
      expect(outcome).toEqual({ rejected: boom });
    });

    test('Risk: a post’s callback grows the table and cancels the next subscription of the same message', async () => {
      const got: string[] = [];
      let victim: Subscription | undefined;
      const grown: Subscription[] = [];
      using first = backend.handler('post-grow', (m) => {
        got.push(`first:${m}`);
        for (let i = 0; i < 1000; i++) grown.push(backend.handler('post-grow-other', () => {}));
        victim?.cancel();
      });
      victim = backend.handler('post-grow', (m) => got.push(`victim:${m}`));
      using last = backend.handler('post-grow', (m) => got.push(`last:${m}`));
      expect(await backend.post('post-grow', 'x')).toBe(2);
      expect(got).toEqual(['first:x', 'last:x']);
      expect(backend.send('post-grow-other', 'y')).toBe(1000);
      for (const s of grown) s.cancel();
    });
  });

  describe('a producer’s warning (process.emitWarning)', () => {
    test('Risk: a patched process.emitWarning shuts down, produces, posts and grows the table — then throws', async () => {
      const subs = throwers(backend, 'warn', new Error('w1'), new Error('w2'));
      const warnings: unknown[] = [];
      const nested: Promise<number>[] = [];
      let stormed = { ran: 0, registered: 0 };
      const original = process.emitWarning;
      process.emitWarning = function (this: unknown, warning: unknown) {
        warnings.push(warning);
        stormed = storm(backend, 'warn-storm');
        nested.push(backend.produce('warn-nested', { count: 3 }).done);
        nested.push(backend.post('warn', 'after'));
        throw new Error('emitWarning throws too');
      } as typeof process.emitWarning;
      try {
        expect(await backend.produce('warn', { count: 5 }).done).toBe(5);
      } finally {
        process.emitWarning = original;
      }
      for (const s of subs) s.cancel();
      expect(await Promise.all(nested)).toEqual([3, 0]);
      expect(warnings).toHaveLength(1);
      const w = warnings[0] as Thrown;
      expect([w.constructor, w.code, w.message]).toEqual([
        AggregateError,
        'ERR_CALLBACKS_THREW',
        '10 callbacks threw while delivering to "warn"',
      ]);
      expect(w.errors).toHaveLength(10);
      expect(stormed).toEqual({ ran: 1000, registered: 1000 });
    });

    test('Risk: a getter on globalThis.process re-enters while a producer’s warning is sent; a code setter never runs for it', async () => {
      const subs = throwers(backend, 'warn-get', new Error('only'), new Error('two'));
      const warnings: unknown[] = [];
      const onWarning = (w: unknown) => warnings.push(w);
      process.on('warning', onWarning);
      const realProcess = process;
      let getterRuns = 0;
      let codeHits = 0;
      let churned = 0;
      const nested: Promise<number>[] = [];
      const restores = [
        patch(globalThis, 'process', {
          get() {
            getterRuns++;
            // The runner reads `process` too, so this may run there first: it ends nothing the warning needs.
            if (getterRuns === 1) {
              nested.push(backend.post('warn-get-side', 'from the getter'));
              churned = churn(backend, 'warn-get-churn');
            }
            return realProcess;
          },
          set() {},
        }),
        patch(
          Object.prototype,
          'code',
          forwardingSetter('code', (value) => {
            if (value === 'ERR_CALLBACKS_THREW') codeHits++;
          }),
        ),
      ];
      let done: Promise<number>;
      try {
        done = backend.produce('warn-get', { count: 2 }).done;
        expect(await done).toBe(2);
      } finally {
        for (const restore of restores) restore();
      }
      await new Promise<void>((resolve) => setImmediate(resolve)); // emitWarning emits on the next tick
      process.off('warning', onWarning);
      for (const s of subs) s.cancel();
      expect(await Promise.all(nested)).toEqual([0]);
      expect(getterRuns).toBeGreaterThanOrEqual(1);
      expect(churned).toBe(1000);
      expect(codeHits).toBe(0);
      expect(warnings).toHaveLength(1);
      expect((warnings[0] as Thrown).errors).toHaveLength(4);
    });

    test('Risk: a producer’s callback stops its own producer and asks producer_active, re-entrantly', async () => {
      let calls = 0;
      let producer: ReturnType<Backend['produce']> | undefined;
      let inside: unknown[] = [];
      using sub = backend.handler('self-stop', () => {
        calls++;
        if (calls === 3 && producer) {
          inside = [producer.active, producer.stop(), backend.raw.finalize_producer(producer._handle), producer.active];
        }
      });
      producer = backend.produce('self-stop', { count: 1_000_000, intervalMs: 1 });
      const posted = await producer.done;
      expect(inside).toEqual([true, true, false, false]);
      expect(posted).toBeGreaterThanOrEqual(3);
      expect(posted).toBeLessThan(1_000_000);
      expect(producer.active).toBe(false);
      await backend.post('self-stop', 'flush');
    });
  });

  // node:v8 promiseHooks: Node and Deno have them; Bun 1.4 throws ERR_NOT_IMPLEMENTED, so there is no hook to re-enter from.
  describe.skipIf(!promiseHooksWork)('promise creation and settling', () => {
    test('Risk: a promise init hook re-enters post(), handler() and send() while post() and produce() create their promise', async () => {
      let armed = false;
      let inHook = false;
      const nested: Promise<number>[] = [];
      const failures: unknown[] = [];
      let sent = -1;
      const stop = promiseHooks.onInit(() => {
        if (!armed || inHook) return;
        inHook = true;
        try {
          using s = backend.handler('hook', () => {});
          sent = backend.send('hook', 'from the hook');
          nested.push(backend.post('hook', 'nested'));
        } catch (error) {
          failures.push(error);
        } finally {
          inHook = false;
        }
      });
      let outer: Promise<number>;
      let produced: Promise<number>;
      try {
        armed = true;
        outer = backend.post('hook', 'outer');
        produced = backend.produce('hook', { count: 2 }).done;
      } finally {
        armed = false;
        stop();
      }
      expect(failures).toEqual([]);
      expect(sent).toBe(1);
      expect(await outer).toBe(0);
      expect(await produced).toBe(2);
      expect(nested.length).toBeGreaterThanOrEqual(2); // post's and produce's promises (and any our TS layer makes)
      expect(new Set(await Promise.all(nested))).toEqual(new Set([0]));
    });

    test('Risk: a promise settle hook shuts down, posts and registers while a post’s promise and a producer’s done settle', async () => {
      let target: Promise<number> | undefined;
      let runs = 0;
      const nested: Promise<number>[] = [];
      const failures: unknown[] = [];
      using sub = backend.handler('settle', () => {});
      const stop = promiseHooks.onSettled((promise) => {
        if (promise !== target) return;
        target = undefined; // once per target
        runs++;
        try {
          storm(backend, 'settle-storm');
          nested.push(backend.post('settle', 'from the hook'));
        } catch (error) {
          failures.push(error);
        }
      });
      try {
        target = backend.post('settle', 'x');
        expect(await target).toBe(1);
        const { handle, done } = backend.raw.produce('settle', 2, 0);
        target = done;
        expect(await done).toBe(2);
        backend.raw.producer_stop(handle);
      } finally {
        stop();
      }
      expect(failures).toEqual([]);
      expect(runs).toBe(2);
      expect(await Promise.all(nested)).toEqual([0, 0]);
    });
  });

  describe('coded errors of the exports', () => {
    // Node's napi_create_error / napi_throw_error (and napi-rs's throw_error) assign `code` with [[Set]].
    const cases: [string, (b: Backend) => unknown, string][] = [
      ['cancel(bad handle)', (b) => b.raw.cancel(0.5), 'ERR_INVALID_HANDLE'],
      ['handler(bad dest)', (b) => b.raw.handler(5 as never, () => {}), 'ERR_INVALID_ARG_TYPE'],
      ['handler(bad callback)', (b) => b.raw.handler('d', 5 as never), 'ERR_INVALID_ARG_TYPE'],
      ['send(empty dest)', (b) => b.raw.send('', 'm'), 'ERR_INVALID_ARG_VALUE'],
      ['send(NUL message)', (b) => b.raw.send('d', 'a\0'), 'ERR_INTERIOR_NUL'],
      ['post(bad message)', (b) => b.raw.post('d', 5 as never), 'ERR_INVALID_ARG_TYPE'],
      ['produce(bad count)', (b) => b.raw.produce('d', -1, 0), 'ERR_OUT_OF_RANGE'],
      ['producer_stop(bad handle)', (b) => b.raw.producer_stop(-1), 'ERR_INVALID_HANDLE'],
      ['subscription_active(foreign handle)', (b) => b.raw.subscription_active(2 ** 52), 'ERR_INVALID_HANDLE'],
    ];

    test.each(cases)(
      'Risk: a setter named code on Object.prototype re-enters (grows the table, sends, shuts down) while %s throws',
      (_what, call, code) => {
        let runs = 0;
        let stormed = { ran: 0, registered: 0 };
        using held = backend.handler('coded', () => {}); // shut down by the storm
        let err: Thrown;
        const restore = patch(
          Object.prototype,
          'code',
          forwardingSetter('code', (value) => {
            if (value !== code || runs++ !== 0) return;
            stormed = storm(backend, 'coded-storm');
          }),
        );
        try {
          err = thrown(() => call(backend));
        } finally {
          restore();
        }
        expect(err.code).toBe(code);
        expect(held.active).toBe(runs === 0);
        if (runs !== 0) expect(stormed).toEqual({ ran: 1000, registered: 1000 });
      },
    );

    // Both backends define `code` on their errors (napi_define_properties), and so does the TS layer (codedError).
    test('a setter named code never runs while an export builds its coded error', () => {
      let runs = 0;
      const restore = patch(Object.prototype, 'code', {
        set() {
          runs++;
        },
      });
      const errs: Thrown[] = [];
      try {
        for (const [, call] of cases) errs.push(thrown(() => call(backend)));
        // The TS layer's own checks (before any native call) define it too.
        errs.push(thrown(() => backend.printAndReturn(42 as unknown as string)));
      } finally {
        restore();
      }
      expect(runs).toBe(0);
      expect(errs.map((e) => e.code)).toEqual([...cases.map(([, , code]) => code), 'ERR_INVALID_ARG_TYPE']);
    });
  });
});

describe('a getter on globalThis.Promise at the first post of an environment (child process)', () => {
  test('Risk: the getter re-enters handler(), send() and post() while the addon looks Promise up', () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'napi-ownership-reentrancy-'));
    const file = join(dir, 'child.mjs');
    writeFileSync(
      file,
      `
      const { backends } = await import(${JSON.stringify(dist)});
      const out = {};
      for (const b of backends) {
        b.stats(); // loaded before the patch: the getter runs only where an addon looks Promise up later
        const Original = Promise;
        let runs = 0, inner = 'not run';
        Object.defineProperty(globalThis, 'Promise', { configurable: true, get() {
          if (runs++ === 0) {
            try {
              const s = b.handler('pg', () => {});
              const sent = b.send('pg', 'x');
              const nested = b.post('pg', 'nested');
              s.cancel();
              inner = { sent, nested: typeof nested.then };
            } catch (e) { inner = String(e.code) + ': ' + e.message; }
          }
          return Original;
        } });
        let outer;
        try { outer = await b.post('pg', 'outer'); } catch (e) { outer = String(e.code) + ': ' + e.message; }
        Object.defineProperty(globalThis, 'Promise', { value: Original, writable: true, configurable: true });
        const st = b.stats();
        out[b.name] = { outer, inner, live: st.handlers.live, pending: st.posts.pending };
      }
      console.log(JSON.stringify(out));
    `,
    );
    const r = spawnSync(process.execPath, scriptArgs(file), { encoding: 'utf8', timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, { outer: unknown; inner: unknown; live: number; pending: number }>;
    for (const name of ['cpp', 'rust']) {
      const got = out[name]!;
      expect(got.outer, name).toBe(0);
      // cpp keeps the Promise of its load; rust looks it up at its first post, and the getter's calls must then work.
      if (got.inner !== 'not run') expect(got.inner, name).toEqual({ sent: 1, nested: 'function' });
      expect([got.live, got.pending], name).toEqual([0, 0]);
    }
  });
});
