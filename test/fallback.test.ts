/**
 * The FinalizationRegistry fallback: what a user forgets to free is released after the wrapper is collected,
 * counted as `finalized`, never released twice, and native memory reported to V8 keeps it bounded.
 */
import { describe, expect, test } from 'vitest';
import { backends, type NativeString } from '../src/index.js';
import { gcUntil, nextJob } from './support/gc.js';

describe.each(backends)('$name: fallback (FinalizationRegistry)', (backend) => {
  test('strings dropped without free are finalized; live returns to baseline', async () => {
    const before = backend.stats().strings;
    (() => {
      for (let i = 0; i < 200; i++) backend.printAndReturn(`dropped ${i}`);
    })();
    await gcUntil('200 strings finalized', () => backend.stats().strings.finalized - before.finalized === 200);
    const after = backend.stats().strings;
    expect(after.live).toBe(before.live);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.freed).toBe(before.freed);
  });

  test('an explicit free unregisters: the registry releases only what was never freed, each once', async () => {
    // Risk: an armed string freed explicitly stays registered, and the registry releases it a second time. Native code
    // would answer `false` (stale handle) and the ledger would not show it, so watch the registry's calls themselves.
    const raw = backend.raw;
    const original = raw.finalize_string;
    const calls: boolean[] = [];
    raw.finalize_string = (handle) => {
      const released = original(handle);
      calls.push(released);
      return released;
    };
    const before = backend.stats().strings;
    try {
      const kept: NativeString[] = [];
      (() => {
        for (let i = 0; i < 100; i++) {
          const s = backend.printAndReturn(`#${i}`);
          if (i % 2 === 0) kept.push(s);
        }
      })();
      await nextJob(); // every survivor is now armed with the registry
      for (const s of kept) expect(s.free()).toBe(true); // armed, then freed: must unregister
      kept.length = 0;
      await gcUntil('50 finalized', () => backend.stats().strings.finalized - before.finalized >= 50);
      for (let i = 0; i < 5; i++) await gcUntil('settled', () => true); // give a double release every chance to show
    } finally {
      raw.finalize_string = original;
    }
    expect(calls.length).toBe(50);
    expect(calls.every(Boolean)).toBe(true);
    const after = backend.stats().strings;
    expect(after.freed - before.freed).toBe(50);
    expect(after.finalized - before.finalized).toBe(50);
    expect(after.live).toBe(before.live);
  });

  test('a view held after its string was collected keeps its bytes, and lets them go when collected', async () => {
    const before = backend.stats().strings;
    // Held in an object rather than a local: JavaScriptCore (Bun) scans the stack conservatively, and a cleared
    // local's old value can stay in a frame's slot for as long as the test runs.
    const held: { view?: Uint8Array } = { view: (() => backend.printAndReturn('orphaned view').view())() };
    await gcUntil('string finalized', () => backend.stats().strings.finalized > before.finalized);
    expect(Buffer.from(held.view!).toString()).toBe('orphaned view');
    expect(backend.stats().strings.viewHeld - before.viewHeld).toBe(1);
    delete held.view;
    await gcUntil('the view released its bytes', () => backend.stats().strings.viewHeld === before.viewHeld);
    expect(backend.stats().strings.viewHeldBytes).toBe(before.viewHeldBytes);
  });

  test('Risk: V8 never hears of native memory — the bytes of a string and each registration are reported, and taken back', () => {
    // What V8 is told (napi_adjust_external_memory) is what prompts the collections the fallback depends on. A 1 MiB
    // string is reported at once; registrations go in 64 KiB batches; releasing takes each back.
    const total = (): number => backend.stats().memory.reported + backend.stats().memory.pending;
    const start = backend.stats().memory;
    const base = total();
    const big = backend.printAndReturn('m'.repeat(1 << 20));
    expect(total() - base).toBe(1 << 20);
    expect(backend.stats().memory.reported - start.reported, 'reported at once').toBeGreaterThanOrEqual((1 << 20) - 65536);
    big.free();
    expect(total()).toBe(base);
    const subs = Array.from({ length: 1000 }, () => backend.handler('memory-ledger', () => {}));
    const perRegistration = (total() - base) / 1000;
    expect(Number.isInteger(perRegistration)).toBe(true);
    // Its measured native footprint (box, Node's reference, wrapper, slot, the dispatcher's record and index entry).
    expect(perRegistration).toBeGreaterThanOrEqual(256);
    expect(perRegistration).toBeLessThanOrEqual(1024);
    expect(backend.stats().memory.reported, 'batches went to V8').toBeGreaterThan(start.reported);
    for (const sub of subs) sub.cancel();
    expect(total()).toBe(base);
  });

  test('native memory is reported to V8, so the fallback alone keeps memory bounded', async () => {
    // 1 GiB allocated in 1 MiB strings, never freed, and no gc() call: only V8's own collections,
    // prompted by the reported external memory, let the registry release them.
    const input = 'm'.repeat(1 << 20);
    const before = backend.stats().strings;
    let peak = 0;
    for (let i = 0; i < 1024; i++) {
      backend.printAndReturn(input);
      if (i % 8 === 7) await nextJob();
      peak = Math.max(peak, backend.stats().strings.liveBytes - before.liveBytes);
    }
    expect(peak).toBeLessThan(512 << 20);
    await gcUntil('all finalized', () => backend.stats().strings.live === before.live);
  });
});
