/**
 * The subscription contract (seed 000's boxed callbacks), run over both backends.
 * After every test each backend's handler ledger is back where it started: nothing a test registered is left live.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { backends, Subscription, type HandlerLedger } from '../src/index.js';
import { other, thrown } from './support/errors.js';
import { gcUntil, nextJob } from './support/gc.js';

describe.each(backends)('$name: subscriptions', (backend) => {
  let before: HandlerLedger;
  beforeEach(() => {
    before = backend.stats().handlers;
  });
  afterEach(() => {
    expect(backend.stats().handlers.live, 'live registrations back to baseline').toBe(before.live);
  });

  describe('delivery', () => {
    test('send() calls every handler of the dest, in registration order, and counts them', () => {
      const got: string[] = [];
      using a = backend.handler('orders', (m) => got.push(`a:${m}`));
      using b = backend.handler('orders', (m) => got.push(`b:${m}`));
      using c = backend.handler('refunds', (m) => got.push(`c:${m}`));
      expect(backend.send('orders', 'hello')).toBe(2);
      expect(backend.send('refunds', 'back')).toBe(1);
      expect(backend.send('nobody', 'x')).toBe(0);
      expect(got).toEqual(['a:hello', 'b:hello', 'c:back']);
      expect([a.dest, b.dest, c.dest]).toEqual(['orders', 'orders', 'refunds']);
    });

    test('messages arrive as the same text, emoji and all; `this` is undefined', () => {
      const got: unknown[] = [];
      using s = backend.handler('text', function (this: unknown, m) {
        got.push(m, this);
      });
      backend.send('text', 'Grüße 👋');
      backend.send('text', '');
      expect(got).toEqual(['Grüße 👋', undefined, '', undefined]);
      expect(s.active).toBe(true);
    });

    test('the ledger counts registrations and cancels', () => {
      const subs = [1, 2, 3].map(() => backend.handler('ledger', () => {}));
      let now = backend.stats().handlers;
      expect(now.registered - before.registered).toBe(3);
      expect(now.live - before.live).toBe(3);
      for (const s of subs) s.cancel();
      now = backend.stats().handlers;
      expect(now.cancelled - before.cancelled).toBe(3);
      expect(now.finalized - before.finalized).toBe(0);
    });
  });

  describe('cancel', () => {
    test('cancel(): true the first time, false after; no more messages', () => {
      let calls = 0;
      const s = backend.handler('c', () => calls++);
      expect(s.active).toBe(true);
      expect(s.cancel()).toBe(true);
      expect(s.active).toBe(false);
      expect(s.cancel()).toBe(false);
      expect(backend.send('c', 'x')).toBe(0);
      expect(calls).toBe(0);
    });

    test('seed-shaped cancel(dest, sub); the wrong dest → false and it stays registered', () => {
      let calls = 0;
      const s = backend.handler('right', () => calls++);
      expect(backend.cancel('wrong', s)).toBe(false);
      expect(s.active).toBe(true);
      expect(backend.send('right', 'still here')).toBe(1);
      expect(backend.cancel('right', s)).toBe(true);
      expect(backend.cancel('right', s)).toBe(false);
      expect(calls).toBe(1);
    });

    test('using cancels at the end of the block', () => {
      let escaped: Subscription;
      {
        using s = backend.handler('scoped', () => {});
        escaped = s;
        expect(s.active).toBe(true);
      }
      expect(escaped.active).toBe(false);
      expect(backend.send('scoped', 'x')).toBe(0);
    });

    test('an AbortSignal cancels; an already-aborted one registers nothing', () => {
      const controller = new AbortController();
      let calls = 0;
      const s = backend.handler('aborted', () => calls++, { signal: controller.signal });
      expect(backend.send('aborted', 'one')).toBe(1);
      controller.abort();
      expect(s.active).toBe(false);
      expect(backend.send('aborted', 'two')).toBe(0);
      const registered = backend.stats().handlers.registered;
      const late = backend.handler('aborted', () => calls++, { signal: controller.signal });
      expect(late.active).toBe(false);
      expect(late.cancel()).toBe(false);
      expect(backend.stats().handlers.registered).toBe(registered);
      expect(calls).toBe(1);
    });

    test('shutdown() cancels every registration of the backend; it is usable again afterwards', () => {
      const a = backend.handler('s1', () => {});
      const b = backend.handler('s2', () => {});
      expect(backend.shutdown()).toBeGreaterThanOrEqual(2);
      expect(a.active).toBe(false);
      expect(b.active).toBe(false);
      expect(a.cancel()).toBe(false);
      expect(backend.send('s1', 'x')).toBe(0);
      using c = backend.handler('s1', () => {});
      expect(backend.send('s1', 'again')).toBe(1);
      expect(c.active).toBe(true);
    });

    test('shutdown() of one backend leaves the other’s registrations alone', () => {
      using mine = other(backend).handler('shared-name', () => {});
      backend.shutdown();
      expect(mine.active).toBe(true);
      expect(other(backend).send('shared-name', 'x')).toBe(1);
    });
  });

  describe('re-entrancy: callbacks that cancel, register and send', () => {
    test('a callback cancels itself: later handlers still run, it is not called again', () => {
      const got: string[] = [];
      const self: Subscription = backend.handler('re', (m) => {
        got.push(`self:${m}`);
        self.cancel();
      });
      using after = backend.handler('re', (m) => got.push(`after:${m}`));
      expect(backend.send('re', '1')).toBe(2);
      expect(backend.send('re', '2')).toBe(1);
      expect(got).toEqual(['self:1', 'after:1', 'after:2']);
    });

    test('a handler cancelled during a send is not called afterwards, even in that send', () => {
      const got: string[] = [];
      let victim: Subscription | undefined;
      using killer = backend.handler('kill', () => {
        got.push('killer');
        victim?.cancel();
      });
      victim = backend.handler('kill', () => got.push('victim'));
      expect(backend.send('kill', 'x')).toBe(1);
      expect(got).toEqual(['killer']);
    });

    test('a handler registered during a send gets the next message, not the current one', () => {
      const got: string[] = [];
      const added: Subscription[] = [];
      using adder = backend.handler('grow', (m) => {
        got.push(`adder:${m}`);
        if (added.length === 0) added.push(backend.handler('grow', (n) => got.push(`added:${n}`)));
      });
      expect(backend.send('grow', '1')).toBe(1);
      expect(backend.send('grow', '2')).toBe(2);
      expect(got).toEqual(['adder:1', 'adder:2', 'added:2']);
      for (const s of added) s.cancel();
    });

    test('a callback may send to another dest (nested sends) and shut the backend down', () => {
      const got: string[] = [];
      using inner = backend.handler('inner', (m) => got.push(`inner:${m}`));
      using outer = backend.handler('outer', (m) => {
        got.push(`outer:${m}`);
        got.push(`nested:${backend.send('inner', `from ${m}`)}`);
      });
      expect(backend.send('outer', 'o')).toBe(1);
      expect(got).toEqual(['outer:o', 'inner:from o', 'nested:1']);

      const order: string[] = [];
      backend.handler('down', () => {
        order.push('first');
        backend.shutdown();
      });
      backend.handler('down', () => order.push('second'));
      expect(backend.send('down', 'x')).toBe(1);
      expect(order).toEqual(['first']);
      expect(inner.active).toBe(false);
    });
  });

  describe('callbacks that throw', () => {
    test('one throws: the others still run, then send() rethrows that very error', () => {
      const got: string[] = [];
      const boom = new Error('boom');
      using a = backend.handler('t', () => got.push('a'));
      using b = backend.handler('t', () => {
        throw boom;
      });
      using c = backend.handler('t', () => got.push('c'));
      expect(thrown(() => backend.send('t', 'x'))).toBe(boom);
      expect(got).toEqual(['a', 'c']);
      expect(b.active).toBe(true);
    });

    test('several throw: an AggregateError with code ERR_CALLBACKS_THREW, errors in delivery order', () => {
      using a = backend.handler('tt', () => {
        throw new Error('first');
      });
      using b = backend.handler('tt', () => {
        throw new TypeError('second');
      });
      using c = backend.handler('tt', () => {
        throw 'not even an Error';
      });
      const err = thrown(() => backend.send('tt', 'x'));
      expect(err).toBeInstanceOf(AggregateError);
      expect(err.code).toBe('ERR_CALLBACKS_THREW');
      expect(err.message).toBe('3 callbacks threw while delivering to "tt"');
      expect((err.errors as Error[]).map((e) => (e instanceof Error ? e.message : e))).toEqual([
        'first',
        'second',
        'not even an Error',
      ]);
    });

    test('a throw inside a nested send is the nested send’s', () => {
      using inner = backend.handler('in', () => {
        throw new Error('inner');
      });
      let caught: unknown;
      using outer = backend.handler('out', () => {
        try {
          backend.send('in', 'x');
        } catch (error) {
          caught = error;
        }
      });
      expect(backend.send('out', 'x')).toBe(1);
      expect((caught as Error).message).toBe('inner');
    });
  });

  describe('bad input: a coded error, never a crash', () => {
    test.each([
      ['number', 42, TypeError, 'ERR_INVALID_ARG_TYPE', 'Expected a non-empty string for dest but received number'],
      ['empty', '', RangeError, 'ERR_INVALID_ARG_VALUE', 'dest must be a non-empty string'],
      ['NUL', 'ab\0c', RangeError, 'ERR_INTERIOR_NUL', 'dest contains a NUL byte at offset 2; a NUL-terminated C string cannot carry it'],
    ])('dest %s', (_what, dest, Kind, code, message) => {
      for (const call of [
        () => backend.handler(dest as string, () => {}),
        () => backend.send(dest as string, 'm'),
        () => backend.raw.handler(dest as string, () => {}),
        () => backend.raw.send(dest as string, 'm'),
      ]) {
        const err = thrown(call);
        expect(err).toBeInstanceOf(Kind);
        expect(err.code).toBe(code);
        expect(err.message).toBe(message);
      }
    });

    test('callback not a function; message not a string or with NUL', () => {
      for (const call of [() => backend.handler('d', 'nope' as never), () => backend.raw.handler('d', 'nope' as never)]) {
        const err = thrown(call);
        expect([err.constructor, err.code, err.message]).toEqual([
          TypeError,
          'ERR_INVALID_ARG_TYPE',
          'Expected a function for callback but received string',
        ]);
      }
      for (const call of [() => backend.send('d', 7 as never), () => backend.raw.send('d', 7 as never)]) {
        expect(thrown(call).message).toBe('Expected a string for message but received number');
      }
      const nul = thrown(() => backend.raw.send('d', 'x\0'));
      expect([nul.constructor, nul.code]).toEqual([RangeError, 'ERR_INTERIOR_NUL']);
      expect(nul.message).toBe('message contains a NUL byte at offset 1; a NUL-terminated C string cannot carry it');
      expect(backend.stats().handlers.registered).toBe(before.registered);
    });

    test('another backend’s Subscription → ERR_FOREIGN_HANDLE, natively too', () => {
      using theirs = other(backend).handler('x', () => {});
      const err = thrown(() => backend.cancel('x', theirs));
      expect([err.constructor, err.code]).toEqual([TypeError, 'ERR_FOREIGN_HANDLE']);
      const raw = thrown(() => backend.raw.cancel(theirs._handle));
      expect([raw.constructor, raw.code]).toEqual([TypeError, 'ERR_FOREIGN_HANDLE']);
      expect(theirs.active).toBe(true);
      expect(thrown(() => backend.cancel('x', {} as Subscription)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(thrown(() => backend.handler('x', () => {}, { signal: 'no' as never })).code).toBe('ERR_INVALID_ARG_TYPE');
    });

    test('a string handle is not a subscription handle', () => {
      const s = backend.raw.print_and_return('not a sub');
      try {
        const err = thrown(() => backend.raw.cancel(s));
        expect([err.constructor, err.code]).toEqual([TypeError, 'ERR_INVALID_HANDLE']);
        expect(err.message).toBe(`${s} is not a live or released subscription handle of the ${backend.name} backend`);
      } finally {
        backend.raw.free_string(s);
      }
    });
  });

  describe('lifetimes (seed 004: what native code holds stays alive, and only that)', () => {
    test('a registered callback survives gc with no JS reference; after cancel it is collected', async () => {
      let weak!: WeakRef<() => void>;
      const sub = (() => {
        const callback = () => {};
        weak = new WeakRef(callback);
        return backend.handler('life', callback);
      })();
      for (let i = 0; i < 10; i++) await gcUntil('a round', () => true);
      expect(weak.deref(), 'alive while registered').toBeTypeOf('function');
      await nextJob(); // let go of what deref() held
      expect(backend.send('life', 'still called')).toBe(1);
      sub.cancel();
      await gcUntil('callback collected after cancel', () => weak.deref() === undefined);
    });

    test('after shutdown() the callbacks are collectable too', async () => {
      let weak!: WeakRef<() => void>;
      const sub = (() => {
        const callback = () => {};
        weak = new WeakRef(callback);
        return backend.handler('life2', callback);
      })();
      backend.shutdown();
      await gcUntil('callback collected after shutdown', () => weak.deref() === undefined);
      expect(sub.active).toBe(false);
    });

    test('fallback: a Subscription dropped without cancel is cancelled and counted as finalized', async () => {
      let calls = 0;
      (() => {
        for (let i = 0; i < 20; i++) backend.handler('dropped', () => calls++);
      })();
      expect(backend.send('dropped', 'before gc')).toBe(20);
      await gcUntil('20 finalized', () => backend.stats().handlers.finalized - before.finalized === 20);
      expect(backend.send('dropped', 'after gc')).toBe(0);
      expect(calls).toBe(20);
      const now = backend.stats().handlers;
      expect(now.cancelled).toBe(before.cancelled);
    });

    test('a callback that closes over its own Subscription keeps it (native code holds the callback)', async () => {
      let calls = 0;
      (() => {
        const sub: Subscription = backend.handler('self-held', () => {
          calls++;
          if (calls === 2) sub.cancel();
        });
      })();
      for (let i = 0; i < 10; i++) await gcUntil('a round', () => true);
      expect(backend.send('self-held', 'one')).toBe(1);
      expect(backend.send('self-held', 'two')).toBe(1);
      expect(backend.send('self-held', 'three')).toBe(0);
      expect(backend.stats().handlers.finalized).toBe(before.finalized);
    });
  });
});
