/**
 * Native-thread delivery over both backends: the dispatcher's worker thread calls back off the JS thread, and the
 * addon carries each call to the JS thread through a threadsafe function. After every test nothing is pending and no
 * producer or registration is left live.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { backends, type Stats, type Subscription } from '../src/index.js';
import { thrown } from './support/errors.js';

describe.each(backends)('$name: native-thread delivery', (backend) => {
  let before: Stats;
  beforeEach(() => {
    before = backend.stats();
  });
  afterEach(() => {
    const after = backend.stats();
    expect(after.posts.pending, 'nothing left queued').toBe(0);
    expect(after.producers.live, 'no producer left').toBe(before.producers.live);
    expect(after.handlers.live, 'no registration left').toBe(before.handlers.live);
  });

  test('post() resolves, on the JS thread, with how many callbacks ran', async () => {
    const got: string[] = [];
    using a = backend.handler('p', (m) => got.push(`a:${m}`));
    using b = backend.handler('p', (m) => got.push(`b:${m}`));
    const pending = backend.post('p', 'first');
    expect(got).toEqual([]); // nothing runs synchronously: the worker thread has it
    expect(await pending).toBe(2);
    expect(await backend.post('p', 'second')).toBe(2);
    expect(await backend.post('nobody', 'x')).toBe(0);
    expect(got).toEqual(['a:first', 'b:first', 'a:second', 'b:second']);
    const now = backend.stats().posts;
    expect(now.posted - before.posts.posted).toBe(3);
    expect(now.delivered - before.posts.delivered).toBe(4);
  });

  test('Risk: a callback runs after cancel() returned true — never, even for messages already queued', async () => {
    let afterCancel = 0;
    let calls = 0;
    let cancelled = false;
    const sub: Subscription = backend.handler('queued', () => {
      if (cancelled) afterCancel++;
      calls++;
    });
    const posts = Array.from({ length: 200 }, (_, i) => backend.post('queued', `m${i}`));
    expect(sub.cancel()).toBe(true); // most of the 200 are still queued on the worker or the threadsafe function
    cancelled = true;
    const counts = await Promise.all(posts);
    expect(afterCancel).toBe(0);
    expect(counts.reduce((x, y) => x + y, 0)).toBe(calls);
    const skipped = backend.stats().posts.skipped - before.posts.skipped;
    expect(calls + skipped).toBeLessThanOrEqual(200);
  });

  test('a throwing callback: the others still run; the post rejects with the error (several: AggregateError)', async () => {
    const got: string[] = [];
    const boom = new Error('boom');
    using a = backend.handler('t', () => {
      throw boom;
    });
    using b = backend.handler('t', (m) => got.push(m));
    await expect(backend.post('t', 'x')).rejects.toBe(boom);
    expect(got).toEqual(['x']);
    using c = backend.handler('t', () => {
      throw new Error('second');
    });
    const err = await backend.post('t', 'y').catch((e: unknown) => e as AggregateError & { code?: string });
    expect(err).toBeInstanceOf(AggregateError);
    expect((err as { code?: string }).code).toBe('ERR_CALLBACKS_THREW');
    expect((err as AggregateError).errors.map((e: Error) => e.message)).toEqual(['boom', 'second']);
  });

  test('Risk: a callback throwing during a producer’s deliveries crashes the process — no: one warning, done resolves', async () => {
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      let ran = 0;
      using thrower = backend.handler('pw', (m) => {
        throw new Error(`boom ${m}`);
      });
      using counter = backend.handler('pw', () => ran++);
      expect(await backend.produce('pw', { count: 20 }).done).toBe(20);
      expect(ran).toBe(20); // the others still ran
      await new Promise<void>((resolve) => setImmediate(resolve)); // emitWarning emits on the next tick
      expect(warnings).toHaveLength(1);
      const w = warnings[0] as AggregateError & { code?: string };
      expect(w).toBeInstanceOf(AggregateError);
      expect(w.code).toBe('ERR_CALLBACKS_THREW');
      expect(w.message).toBe('20 callbacks threw while delivering to "pw"');
      expect(w.errors).toHaveLength(20);

      using other = backend.handler('pw1', () => {
        throw new Error('only one');
      });
      expect(await backend.produce('pw1', { count: 1 }).done).toBe(1);
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(2);
      expect((warnings[1] as Error).message).toBe('only one'); // exactly one: the error itself

      // One value that is not an Error: emitWarning would refuse it, so it is reported inside an AggregateError.
      using odd = backend.handler('pw2', () => {
        throw { not: 'an Error' };
      });
      expect(await backend.produce('pw2', { count: 1 }).done).toBe(1);
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(3);
      const wrapped = warnings[2] as AggregateError & { code?: string };
      expect([wrapped.constructor, wrapped.code, wrapped.message]).toEqual([
        AggregateError,
        'ERR_CALLBACKS_THREW',
        '1 callbacks threw while delivering to "pw2"',
      ]);
      expect(wrapped.errors).toEqual([{ not: 'an Error' }]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('a producer thread posts count messages; done resolves with the count; its record is released', async () => {
    const got: string[] = [];
    using sub = backend.handler('prod', (m) => got.push(m));
    const producer = backend.produce('prod', { count: 50 });
    expect(await producer.done).toBe(50); // posted (queued); deliveries may still be in flight
    expect(producer.active).toBe(false);
    expect(producer.stop()).toBe(false);
    // The worker delivers in order: a post after the producer's messages settles after all of them ran.
    expect(await backend.post('prod', 'flush')).toBe(1);
    expect(got).toEqual([...Array.from({ length: 50 }, (_, i) => String(i)), 'flush']);
    expect(backend.stats().producers.started - before.producers.started).toBe(1);
  });

  test('stop() ends a producer early (joins its thread); using does the same', async () => {
    using sub = backend.handler('slow', () => {});
    const producer = backend.produce('slow', { count: 1_000_000, intervalMs: 50 });
    expect(producer.active).toBe(true);
    expect(producer.stop()).toBe(true);
    expect(producer.stop()).toBe(false);
    expect(await producer.done).toBeLessThan(1_000_000);
    let escaped;
    {
      using p = backend.produce('slow', { count: 1_000_000, intervalMs: 50 });
      escaped = p;
    }
    expect(escaped.active).toBe(false);
    await escaped.done;
  });

  test('shutdown() with posts in flight: every callback cancelled, every promise settled, nothing left queued', async () => {
    let calls = 0;
    backend.handler('sd', () => calls++);
    const posts = Array.from({ length: 100 }, () => backend.post('sd', 'x'));
    backend.shutdown();
    const counts = await Promise.all(posts);
    expect(counts.reduce((x, y) => x + y, 0)).toBe(calls);
    expect(await backend.post('sd', 'after')).toBe(0);
  });

  test('bad arguments: coded errors before anything is queued or started', () => {
    for (const [options, Kind, code] of [
      [{ count: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ count: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ count: 2 ** 32 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ count: 1, intervalMs: 60_001 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ count: '3' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
      [null, TypeError, 'ERR_INVALID_ARG_TYPE'],
    ] as const) {
      const err = thrown(() => backend.produce('d', options as never));
      expect([err.constructor, err.code], JSON.stringify(options)).toEqual([Kind, code]);
    }
    expect(thrown(() => backend.produce('d', { count: -1 })).message).toBe(
      'The value of "count" is out of range. It must be an integer from 0 to 4294967295. Received -1',
    );
    expect(thrown(() => backend.post('', 'x')).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => backend.raw.post('d', 5 as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(backend.stats().producers.started).toBe(before.producers.started);
  });

  test('Stress: 100k posted messages with random cancels — no delivery after cancel, ledger back to baseline', async () => {
    // Risk: a cancel racing the worker thread frees boxes it is using, or a queued item reaches a cancelled callback.
    const DEST = 'stress';
    let violations = 0;
    let delivered = 0;
    const live = new Set<{ sub: Subscription; cancelled: boolean }>();
    const add = () => {
      const entry = { sub: undefined as unknown as Subscription, cancelled: false };
      entry.sub = backend.handler(DEST, () => {
        if (entry.cancelled) violations++;
        delivered++;
        if (Math.random() < 0.001) churn();
      });
      live.add(entry);
    };
    const churn = () => {
      const victims = [...live].filter(() => Math.random() < 0.3);
      for (const v of victims) {
        expect(v.sub.cancel()).toBe(true);
        v.cancelled = true;
        live.delete(v);
      }
      while (live.size < 4) add();
    };
    for (let i = 0; i < 4; i++) add();
    const producer = backend.produce(DEST, { count: 100_000 });
    const posted = await producer.done;
    expect(posted).toBe(100_000);
    await backend.post(DEST, 'flush'); // FIFO: everything the producer posted has reached JS before this settles
    for (const v of live) v.sub.cancel();
    expect(violations).toBe(0);
    const now = backend.stats().posts;
    expect(now.posted - before.posts.posted).toBe(100_001);
    // Each message reached every handler registered when the worker took it (four at almost every moment): each of
    // those deliveries either ran on the JS thread or was skipped because its subscription had been cancelled since.
    expect(now.delivered - before.posts.delivered).toBe(delivered);
    expect(delivered + (now.skipped - before.posts.skipped)).toBeGreaterThan(100_000);
  });
});
