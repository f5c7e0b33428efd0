/**
 * AbortSignal listeners over both backends: a subscription that follows a signal adds one 'abort' listener, and every
 * path that ends the subscription removes it — cancel(), Symbol.dispose, cancel(dest, sub), the abort itself, the
 * FinalizationRegistry fallback (the Subscription was dropped) and shutdown(). A listener left behind keeps its closure
 * alive for as long as the signal lives, and a shared signal ends up warning MaxListenersExceededWarning.
 */
import { getEventListeners, setMaxListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { backends, type HandlerLedger, type Subscription } from '../src/index.js';
import { gcUntil, nextJob } from './support/gc.js';

const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

/** Registers `n` subscriptions following `signal` and drops them, all inside a function that returns nothing. */
function dropSubscriptions(subscribe: () => unknown, n: number): void {
  for (let i = 0; i < n; i++) subscribe();
}

describe.each(backends)('$name: AbortSignal listeners', (backend) => {
  let before: HandlerLedger;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  beforeEach(() => {
    before = backend.stats().handlers;
    warnings.length = 0;
    process.on('warning', onWarning);
  });
  afterEach(async () => {
    await nextJob(); // warnings are emitted on the next tick
    process.off('warning', onWarning);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    expect(backend.stats().handlers.live, 'live registrations back to baseline').toBe(before.live);
  });

  test('Risk: 1000 dropped subscriptions leave 1000 abort listeners', async () => {
    const controller = new AbortController();
    setMaxListeners(2000, controller.signal); // 1000 are live at once here, legitimately
    dropSubscriptions(() => backend.handler('dropped-signal', () => {}, { signal: controller.signal }), 1000);
    expect(listeners(controller.signal)).toBe(1000);
    await gcUntil(
      'every dropped subscription finalized',
      () => backend.stats().handlers.finalized - before.finalized === 1000,
    );
    expect(listeners(controller.signal), 'the fallback removed each listener').toBe(0);
    controller.abort(); // nothing left to call
    expect(backend.stats().handlers.cancelled).toBe(before.cancelled);
  });

  test('Risk: subscriptions dropped a few at a time with one shared signal warn MaxListenersExceededWarning', async () => {
    const controller = new AbortController(); // default limit: a warning past 10 listeners
    for (let round = 0; round < 12; round++) {
      const target = backend.stats().handlers.finalized + 5;
      dropSubscriptions(() => backend.handler('drip', () => {}, { signal: controller.signal }), 5);
      await gcUntil(`round ${round} finalized`, () => backend.stats().handlers.finalized >= target);
      expect(listeners(controller.signal), `after round ${round}`).toBe(0);
    }
  });

  test('shutdown() removes every listener, of a shared signal and of separate ones', () => {
    const shared = new AbortController();
    const own = [new AbortController(), new AbortController()];
    const subs: Subscription[] = [];
    for (let i = 0; i < 5; i++) subs.push(backend.handler('sd-signal', () => {}, { signal: shared.signal }));
    for (const c of own) subs.push(backend.handler('sd-signal', () => {}, { signal: c.signal }));
    expect(listeners(shared.signal)).toBe(5);
    backend.shutdown();
    expect(listeners(shared.signal)).toBe(0);
    expect(own.map((c) => listeners(c.signal))).toEqual([0, 0]);
    shared.abort();
    expect(subs.every((s) => !s.active && !s.cancel())).toBe(true);
  });

  test('shutdown() from inside a callback removes them too', () => {
    const controller = new AbortController();
    using stopper = backend.handler('sd-inner', () => backend.shutdown(), { signal: controller.signal });
    backend.handler('sd-inner', () => {}, { signal: controller.signal });
    expect(listeners(controller.signal)).toBe(2);
    expect(backend.send('sd-inner', 'x')).toBe(1);
    expect(listeners(controller.signal)).toBe(0);
    expect(stopper.active).toBe(false);
  });

  test('cancel(), Symbol.dispose, cancel(dest, sub) and the abort each remove their own listener (a wrong dest keeps it)', () => {
    const controller = new AbortController();
    const { signal } = controller;
    const a = backend.handler('own', () => {}, { signal });
    const b = backend.handler('own', () => {}, { signal });
    const c = backend.handler('own', () => {}, { signal });
    {
      using d = backend.handler('own', () => {}, { signal });
      expect(d.active).toBe(true);
      expect(listeners(signal)).toBe(4);
    }
    expect(listeners(signal), 'dispose').toBe(3);
    expect(a.cancel()).toBe(true);
    expect(listeners(signal), 'cancel()').toBe(2);
    expect(backend.cancel('elsewhere', b)).toBe(false);
    expect(listeners(signal), 'a wrong dest leaves it registered, and following').toBe(2);
    expect(backend.cancel('own', b)).toBe(true);
    expect(listeners(signal), 'cancel(dest, sub)').toBe(1);
    controller.abort();
    expect(c.active).toBe(false);
    expect(listeners(signal), 'abort').toBe(0);
  });

  test('one signal per subscription: each listener goes with its own subscription', () => {
    const controllers = Array.from({ length: 20 }, () => new AbortController());
    const subs = controllers.map((c) => backend.handler('each', () => {}, { signal: c.signal }));
    subs.forEach((s, i) => (i % 2 === 0 ? s.cancel() : controllers[i]!.abort()));
    expect(controllers.map((c) => listeners(c.signal))).toEqual(controllers.map(() => 0));
  });

  test('the listener does not keep its Subscription alive; the signal may outlive it', async () => {
    const controller = new AbortController();
    let weak!: WeakRef<Subscription>;
    (() => {
      weak = new WeakRef(backend.handler('weakly', () => {}, { signal: controller.signal }));
    })();
    await gcUntil('the Subscription collected', () => weak.deref() === undefined);
    await gcUntil('and finalized', () => backend.stats().handlers.finalized - before.finalized === 1);
    expect(listeners(controller.signal)).toBe(0);
  });
});
