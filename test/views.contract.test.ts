/**
 * Views co-own their bytes: the contract, tried the way real consumers use memory. Node's own async consumers (fs,
 * zlib, sockets) take a view's pointer and use it later, on the threadpool or in the kernel; detaching the view would
 * not stop them. So a view's external ArrayBuffer holds a share of the native bytes, and the bytes go only when the
 * handle and every view have let go. Every test keeps the libuv threadpool busy, so the consumer runs after the release.
 */
import { pbkdf2 } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, write } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflate, inflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { backends, type Backend, type NativeString, type StringLedger } from '../src/index.js';
import { gcUntil } from './support/gc.js';
import { copyViews } from './support/views.js';

const dir = mkdtempSync(join(tmpdir(), 'napi-ownership-views-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const tmpFile = () => join(dir, `f${files++}`);

/** Text of `size` bytes that differs from any other call's (so a reused block shows). */
let patterns = 0;
function pattern(size: number): string {
  const unit = `<${(patterns++).toString(36)}:0123456789abcdef>`;
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

/**
 * Occupies every libuv threadpool thread with slow work queued first, so whatever is queued next (fs.write, zlib)
 * runs only after the current job (and our release) is over. Resolves when the pool is free again.
 */
function occupyThreadpool(iterations = 300_000): Promise<void> {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  return Promise.all(
    Array.from({ length: threads }, () => new Promise<void>((resolve, reject) => pbkdf2('busy', 'salt', iterations, 32, 'sha512', (e) => (e ? reject(e) : resolve())))),
  ).then(() => undefined);
}

/** Fresh allocations of `size` bytes with other contents: where a freed block is reused, they land in it. */
function churn(backend: Backend, size: number): () => void {
  const others = Array.from({ length: 4 }, () => backend.printAndReturn(pattern(size)));
  return () => others.forEach((o) => o.free());
}

const waitViewsReleased = (backend: Backend, before: StringLedger) =>
  gcUntil('view-held bytes released', () => backend.stats().strings.viewHeld === before.viewHeld);

// 32 KiB: a freed block the next allocation of that size reuses; 4 MiB: mmapped by glibc, unmapped on free.
const sizes = [
  ['32 KiB', 32 << 10],
  ['4 MiB', 4 << 20],
] as const;

describe.each(backends)('$name: views co-own their bytes', (backend) => {
  let before: StringLedger;
  beforeEach(() => {
    before = backend.stats().strings;
  });
  afterEach(async () => {
    await waitViewsReleased(backend, before);
    const after = backend.stats().strings;
    expect(after.live, 'live strings back to baseline').toBe(before.live);
    expect(after.viewHeldBytes, 'view-held bytes back to baseline').toBe(before.viewHeldBytes);
  });

  test('a view taken before free() keeps the same bytes; the ledger shows what views hold', () => {
    const s = backend.printAndReturn('kept by its view');
    const v1 = s.view();
    const v2 = s.view();
    if (!copyViews) expect(v2).toBe(v1); // the same Uint8Array while it lives
    expect(s.free()).toBe(true);
    const now = backend.stats().strings;
    const done = churn(backend, 16);
    expect(Buffer.from(v1).toString()).toBe('kept by its view');
    expect(now.live).toBe(before.live);
    expect(now.liveBytes).toBe(before.liveBytes);
    // A copy shares nothing: nothing native is held for it.
    expect(now.viewHeld - before.viewHeld).toBe(copyViews ? 0 : 1);
    expect(now.viewHeldBytes - before.viewHeldBytes).toBe(copyViews ? 0 : 16);
    done();
    expect(() => s.view()).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_RELEASED' }));
  });

  test('writes through a view after free() reach only its own bytes', () => {
    const s = backend.printAndReturn('abcdef');
    const v = s.view();
    s.free();
    const t = backend.printAndReturn('ghijkl');
    v.fill(0x21);
    expect(t.toString()).toBe('ghijkl');
    expect(Buffer.from(v).toString()).toBe('!!!!!!');
    t.free();
  });

  test('Risk: NUL bytes written through a view before the free (a core that frees by strlen would free a shorter string)', async () => {
    // The Rust core frees with CString::from_raw, which re-measures with strlen: a view's 0 bytes must be repaired
    // first (the core's debug builds assert it: core_string_is_the_safe_owner). Whichever of the handle and the view
    // lets go last frees the bytes.
    for (const order of ['free first', 'view first'] as const) {
      const before = backend.stats().strings;
      const s = backend.printAndReturn('nul through a view');
      let v: Uint8Array | undefined = s.view();
      v.fill(0, 0, 4);
      v[10] = 0;
      const written = '\0\0\0\0throug\0 a view';
      // The string is its length, not up to its first NUL. (A copying view writes only its copy.)
      expect(s.toString()).toBe(copyViews ? 'nul through a view' : written);
      if (order === 'free first') {
        expect(s.free()).toBe(true);
        expect(Buffer.from(v).toString()).toBe(written); // the view still holds the bytes, as written
      } else {
        // The view goes first: its buffer collected (and its share of the bytes ended) before the handle is freed.
        const buffer = new WeakRef(v.buffer);
        v = undefined;
        await gcUntil("the view's buffer collected", () => buffer.deref() === undefined);
        expect(s.free()).toBe(true);
        expect(backend.stats().strings.viewHeld).toBe(before.viewHeld); // no view left to hold the bytes: freed now
      }
      v = undefined;
      await gcUntil('every view finalized', () => backend.stats().strings.viewHeld === before.viewHeld);
      const after = backend.stats().strings;
      expect(after.live).toBe(before.live);
      expect(after.viewHeldBytes).toBe(before.viewHeldBytes);
      const next = backend.printAndReturn('after');
      expect(next.toString()).toBe('after');
      next.free();
    }
  });

  test('a view whose Uint8Array was dropped but whose buffer JS kept still shares the bytes', async () => {
    const s = backend.printAndReturn('buffer only');
    const buffer = (() => s.view().buffer)();
    await gcUntil('one round of collection (the Uint8Array may go)', () => true, 3);
    const again = s.view();
    if (!copyViews) expect(again.buffer).toBe(buffer);
    s.free();
    expect(Buffer.from(buffer).toString()).toBe('buffer only');
  });

  test('Risk: a structured clone or transfer moves native memory out from under the view', () => {
    const s = backend.printAndReturn('stay home');
    const v = s.view();
    let moved: Uint8Array | undefined;
    try {
      moved = structuredClone(v, { transfer: [v.buffer as ArrayBuffer] });
    } catch (error) {
      expect((error as Error).name).toBe('DataCloneError'); // refusing is as safe as copying
    }
    s.free();
    const done = churn(backend, 9);
    // Whatever the runtime did (copy, refuse, move), every view reads the original bytes.
    for (const view of [v, moved]) if (view && view.byteLength) expect(Buffer.from(view).toString()).toBe('stay home');
    done();
  });

  describe.each(sizes)('%s', (_name, size) => {
    test('Risk: a view handed to fs.write and then freed writes another allocation’s bytes', async () => {
      const text = pattern(size);
      const s = backend.printAndReturn(text);
      const busy = occupyThreadpool();
      const file = tmpFile();
      const fd = openSync(file, 'w');
      const written = new Promise<number>((resolve, reject) => {
        const v = s.view();
        write(fd, v, 0, v.length, 0, (error, n) => (error ? reject(error) : resolve(n)));
      });
      expect(s.free()).toBe(true); // the write is still queued behind the busy pool
      const done = churn(backend, size);
      expect(backend.stats().strings.viewHeld - before.viewHeld).toBe(copyViews ? 0 : 1);
      expect(await written).toBe(size);
      closeSync(fd);
      done();
      await busy;
      expect(readFileSync(file).equals(Buffer.from(text))).toBe(true);
    });

    test('Risk: a view handed to fs.promises.writeFile and then freed writes freed memory', async () => {
      const text = pattern(size);
      const s = backend.printAndReturn(text);
      const busy = occupyThreadpool();
      const file = tmpFile();
      const written = writeFile(file, s.view());
      s.free();
      const done = churn(backend, size);
      await written;
      done();
      await busy;
      expect(readFileSync(file).equals(Buffer.from(text))).toBe(true);
    });

    test('Risk: a view handed to zlib.deflate and then freed compresses freed memory', async () => {
      const text = pattern(size);
      const s = backend.printAndReturn(text);
      const busy = occupyThreadpool();
      const compressed = new Promise<Buffer>((resolve, reject) => deflate(s.view(), (e, out) => (e ? reject(e) : resolve(out))));
      s.free();
      const done = churn(backend, size);
      const out = await compressed;
      done();
      await busy;
      expect(inflateSync(out).equals(Buffer.from(text))).toBe(true);
    });

    test('Risk: a view dropped with its string (no free) is released by the fallback while fs still writes it', async () => {
      const text = pattern(size);
      const busy = occupyThreadpool(600_000);
      const file = tmpFile();
      const fd = openSync(file, 'w');
      const finalizedBefore = before.finalized;
      const written = (() => {
        const v = backend.printAndReturn(text).view(); // the wrapper is unreachable from here on
        return new Promise<number>((resolve, reject) => write(fd, v, 0, v.length, 0, (e, n) => (e ? reject(e) : resolve(n))));
      })();
      // The fallback releases the handle while the write waits behind the busy pool; the view keeps the bytes.
      await gcUntil('the string finalized', () => backend.stats().strings.finalized > finalizedBefore);
      const done = churn(backend, size);
      expect(await written).toBe(size);
      closeSync(fd);
      done();
      await busy;
      expect(readFileSync(file).equals(Buffer.from(text))).toBe(true);
    });
  });

  test('Risk: a large view handed to socket.write and then freed sends freed memory (EFAULT)', async () => {
    const size = 8 << 20; // more than a loopback socket buffer takes at once: libuv keeps the pointer for later
    const text = pattern(size);
    const received: Buffer[] = [];
    const server = createServer((socket) => socket.on('data', (chunk) => received.push(chunk)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    const s = backend.printAndReturn(text);
    const flushed = new Promise<void>((resolve, reject) => client.end(s.view(), () => resolve()).once('error', reject));
    s.free();
    const done = churn(backend, size);
    await flushed;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    done();
    expect(Buffer.concat(received).equals(Buffer.from(text))).toBe(true);
  });

  test('Risk: an asm.js module makes the buffer non-detachable, and the freed bytes are reused under it', () => {
    // asm.js links a heap whose size is a power of two from 4 KiB: 64 KiB.
    const text = pattern(1 << 16);
    const s = backend.printAndReturn(text);
    const v = s.view();
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const AsmModule = new Function('stdlib', 'foreign', 'heap', `'use asm'; var h = new stdlib.Uint8Array(heap); function get(i) { i = i | 0; return h[i] | 0; } return get;`) as (
      stdlib: typeof globalThis,
      foreign: object,
      heap: ArrayBufferLike,
    ) => (i: number) => number;
    const get = AsmModule(globalThis, {}, v.buffer);
    expect(s.free()).toBe(true);
    const done = churn(backend, 1 << 16);
    const expected = Buffer.from(text);
    for (const i of [0, 1, 4095, 40000, (1 << 16) - 1]) expect(get(i)).toBe(expected[i]);
    expect(Buffer.from(v).equals(expected)).toBe(true);
    done();
  });

  test('Risk: the runtime finalizes a view off the JS thread (Deno: V8’s background sweeper) while JS releases and allocates', async () => {
    // Deno 2.9 runs an external buffer's finalizer from V8's backing-store deleter, on a V8 background thread when
    // the concurrent sweeper frees a large store. A finalizer that touched the state, a Cell or Node-API crashed it
    // (SIGSEGV in view_finalized on "V8 DefaultWorker"). Large views dropped in rounds, both ends of each share:
    // views outliving their handle (the finalizer frees the bytes) and handles outliving their view (the finalizer
    // gives the bytes back to our external-memory report), while the JS thread keeps allocating and releasing.
    const size = 4 << 20;
    for (let round = 0; round < 6; round++) {
      const kept: { view: Uint8Array; text: string }[] = [];
      const live: NativeString[] = [];
      const dropped: WeakRef<ArrayBuffer>[] = [];
      (() => {
        for (let i = 0; i < 4; i++) {
          const text = pattern(size);
          const s = backend.printAndReturn(text);
          const v = s.view();
          if (i % 2 === 0) {
            kept.push({ view: v, text }); // outlives its handle
            s.free();
          } else {
            dropped.push(new WeakRef(v.buffer as ArrayBuffer)); // its handle outlives it
            live.push(s);
          }
        }
      })();
      const done = churn(backend, size);
      await gcUntil('the dropped views collected', () => dropped.every((d) => d.deref() === undefined));
      await gcUntil('a few more rounds for their finalizers', () => true, 3);
      // Checked in a plain function: a loop variable of this async function would stay in its suspended frame.
      ((r: number) => kept.forEach((k, i) => expect(Buffer.from(k.view).equals(Buffer.from(k.text)), `round ${r}, view ${i}`).toBe(true)))(round);
      done();
      for (const s of live) expect(s.free()).toBe(true);
      kept.length = 0;
      await waitViewsReleased(backend, before);
    }
    const offThread = backend.stats().strings.viewFinalizedOffThread - before.viewFinalizedOffThread;
    expect(offThread).toBeGreaterThanOrEqual(0);
    // Node defers every such finalizer to the JS thread: the count must stay 0 there (the counter is no guess).
    if (!('Deno' in globalThis) && !('Bun' in globalThis)) expect(offThread).toBe(0);
  });

  test('views never touch JS while they are made: a setter on Object.prototype and patched builtins do not run', () => {
    // Risk: the C++ view called worker_threads.markAsUntransferable (a patchable builtin) while holding a table
    // entry; string_info set `address` with a [[Set]], which a setter on Object.prototype intercepts.
    const calls: string[] = [];
    const names = ['address', 'byteLength', 'live', 'viewHeld'];
    for (const name of names) {
      Object.defineProperty(Object.prototype, name, {
        configurable: true,
        set(this: unknown, _value: unknown) {
          calls.push(name);
          // What a hostile setter does: free what is in use and grow the table.
          for (let i = 0; i < 64; i++) backend.printAndReturn(`grow ${i}`).free();
        },
      });
    }
    try {
      const s = backend.printAndReturn('re-entrant');
      const info = backend.raw.string_info(s._handle);
      expect(info.byteLength).toBe(10);
      expect(typeof info.address).toBe('bigint');
      expect(Buffer.from(s.view()).toString()).toBe('re-entrant');
      expect(backend.stats().strings.live).toBe(before.live + 1);
      s.free();
    } finally {
      for (const name of names) delete (Object.prototype as Record<string, unknown>)[name];
    }
    expect(calls).toEqual([]);
  });
});
