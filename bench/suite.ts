/**
 * One measuring process of `npm run bench`: bench/run.ts starts it as
 *
 *   node --expose-gc --import tsx bench/suite.ts <js|cpp|rust|mixed> <out.json> [--time=ms] [--warmup=ms]
 *
 * and it writes what it measured to <out.json> (see ./rows.ts for the shapes).
 *
 * Why a process per backend: V8 specializes every call site to what it has seen. Measured in one process, the
 * backend measured second runs its native calls through call sites that have already seen the other backend's
 * functions; they go polymorphic and its no-op call costs twice as much (14 ns vs 27 ns on the development machine,
 * whichever backend comes second). A real program uses one backend, so each backend gets a fresh process, and the
 * `mixed` suite measures what sharing costs.
 *
 * Why each task's loop is compiled from its own source text (`new Function`): for the same reason inside a process.
 * Closures made from one function literal share their feedback and optimized code, so a generic `for (...) op()`
 * wrapper goes megamorphic across tasks, and every operation pays a generic call (~20 ns) that inflates the floor and
 * flatters every ratio. A loop compiled per task calls one target and V8 inlines it.
 *
 * Each timed call runs the operation `batch` times, so the timer (~30 ns a reading) stays under 1 % of a sample.
 */
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Bench, type Task } from 'tinybench';
import { cpp, rust, type Backend } from '../src/index.js';
import type { Measured, Suite, SuiteResult } from './rows.js';

const [suiteArg, outPath, ...flags] = process.argv.slice(2);
const suites: readonly Suite[] = ['js', 'cpp', 'rust', 'mixed'];
if (!suites.includes(suiteArg as Suite) || !outPath) {
  throw new Error(`usage: bench/suite.ts <${suites.join('|')}> <out.json> [--time=ms] [--warmup=ms]`);
}
const suite = suiteArg as Suite;
const flag = (name: string, fallback: number) => {
  const found = flags.find((f) => f.startsWith(`--${name}=`));
  return found ? Number(found.slice(name.length + 3)) : fallback;
};

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (bench/run.ts does)');

// At least 16 samples a task: the tasks with untimed setup (first view, crowd) spend most of their budget on it.
const bench = new Bench({ time: flag('time', 200), warmupTime: flag('warmup', 50), iterations: 16, warmupIterations: 8 });
const BATCH = 256;
/** The scale rows' sizes: N live strings, or registrations on one dest. */
const SCALES = [['10', 10], ['1k', 1_000], ['100k', 100_000]] as const;

const s16 = 'sixteen bytes ok';
const s1k = 'k'.repeat(1024);
const s1m = 'm'.repeat(1 << 20);
const u16 = new TextEncoder().encode(s16);
const u1m = new TextEncoder().encode(s1m);
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const now = () => performance.now();

type Scope = Record<string, unknown>;

/** Compiles `source` (a function body returning the task) with `scope`'s entries as its free variables. */
function compile<T>(scope: Scope, source: string): T {
  const names = Object.keys(scope);
  const make = new Function(...names, `'use strict';\n${source}`) as (...args: unknown[]) => T;
  return make(...names.map((n) => scope[n]));
}

/** `body` run `batch` times per sample. */
const loop = (batch: number, scope: Scope, body: string) =>
  compile<() => void>(scope, `return function task() { for (let i = 0; i < ${batch}; i++) { ${body}; } };`);

/** `body` run `batch` times per sample, each in its own job (an await between them). */
const loopPerJob = (batch: number, scope: Scope, body: string) =>
  compile<() => Promise<void>>(
    scope,
    `return async function task() { for (let i = 0; i < ${batch}; i++) { ${body}; await null; } };`,
  );

interface Entry {
  key: string;
  batch: number;
  note?: string;
}
const entries = new Map<string, Entry>();
const skipped: SuiteResult['skipped'] = [];
/** Releases what the tasks shared (strings, registrations), after the run. */
const cleanup: (() => void)[] = [];

interface AddOptions {
  /** Fail the run unless the task leaves this backend's ledger (live strings and registrations) where it found it. */
  ledger?: Backend;
  /** Runs before each phase (warm-up, run) of the task. */
  before?: () => void;
  /** Runs after the timed phase: checks what the task did and returns a note for the record. */
  after?: () => string | undefined;
}

/** `--only=a,b`: measure just these rows; `--skip=a,b`: all but these (bench/run.ts runs some rows on their own). */
const only = flags.find((f) => f.startsWith('--only='))?.slice(7).split(',');
const skip = flags.find((f) => f.startsWith('--skip='))?.slice(7).split(',') ?? [];

function add(key: string, batch: number, fn: () => unknown, options: AddOptions = {}): void {
  if ((only && !only.includes(key)) || skip.includes(key)) return;
  const isAsync = fn.constructor.name === 'AsyncFunction';
  const entry: Entry = { key, batch };
  let before: ReturnType<Backend['stats']> | undefined;
  bench.add(key, fn as () => void, {
    async: isAsync,
    beforeAll() {
      // A full collection before each phase of each task, so one task's garbage is not billed to the next.
      gc!();
      before = options.ledger?.stats();
      options.before?.();
    },
    afterAll(mode) {
      const b = options.ledger;
      const notes: string[] = [];
      if (b && before) {
        const after = b.stats();
        const strings = after.strings.live - before.strings.live;
        const handlers = after.handlers.live - before.handlers.live;
        if (strings !== 0 || handlers !== 0) {
          throw new Error(`${b.name} ${key}: the task left ${strings} strings and ${handlers} registrations live`);
        }
        notes.push(
          `ledger back to baseline after ${after.strings.allocated - before.strings.allocated} strings and ${
            after.handlers.registered - before.handlers.registered
          } registrations`,
        );
      }
      if (mode === 'run') {
        const note = options.after?.();
        if (note) notes.push(note);
        entry.note = notes.join('; ');
      }
    },
  });
  entries.set(key, entry);
}

async function gcUntil(done: () => boolean, rounds = 50): Promise<boolean> {
  for (let i = 0; i < rounds && !done(); i++) {
    gc!();
    await yieldToLoop();
  }
  return done();
}

function addBackend(b: Backend): void {
  const raw = b.raw;
  const explicit = (key: string, batch: number, fn: () => unknown) => add(key, batch, fn, { ledger: b });

  // bench/run.ts measures this row in a process of its own: a 1 MiB round trip costs mostly page faults (the
  // conversion scratch and the copy are 1 MiB each; freed together they reach glibc's trim threshold and go back to
  // the OS, so the next call faults 2 MiB in again, ~500 faults). Whether that happens depends on what else the heap
  // holds: with the other tasks' strings and registrations allocated it moved between 0.35 and 1 ms, differently for
  // each backend. Alone, both backends start from the same heap.
  explicit('public-1m', 4, loop(4, { b, s1m }, 'b.printAndReturn(s1m).free()'));
  explicit('call', BATCH, loop(BATCH, { raw }, 'raw.noop()'));
  explicit('raw-16', BATCH, loop(BATCH, { raw, s16 }, 'raw.free_string(raw.print_and_return(s16))'));
  explicit('raw-1k', BATCH, loop(BATCH, { raw, s1k }, 'raw.free_string(raw.print_and_return(s1k))'));
  explicit('raw-16-u8', BATCH, loop(BATCH, { raw, u16 }, 'raw.free_string(raw.print_and_return(u16))'));
  // The fast path's twins written in each library's own idiom (docs/raw-contract.md): the same contract and table,
  // so the difference is what the library's argument conversion, wrapper and scopes cost per call.
  if (typeof raw.noop_idiomatic === 'function') {
    explicit('call-idiom', BATCH, loop(BATCH, { raw }, 'raw.noop_idiomatic()'));
    explicit('raw-16-idiom', BATCH, loop(BATCH, { raw, s16 }, 'raw.free_string_idiomatic(raw.print_and_return_idiomatic(s16))'));
    explicit('raw-1k-idiom', BATCH, loop(BATCH, { raw, s1k }, 'raw.free_string_idiomatic(raw.print_and_return_idiomatic(s1k))'));
    explicit('raw-16-u8-idiom', BATCH, loop(BATCH, { raw, u16 }, 'raw.free_string_idiomatic(raw.print_and_return_idiomatic(u16))'));
  } else {
    for (const key of ['call-idiom', 'raw-16-idiom', 'raw-1k-idiom', 'raw-16-u8-idiom']) {
      skipped.push({ key, why: `${b.name}: this build has no idiomatic twins (noop_idiomatic, …)` });
    }
  }
  explicit('public-16', BATCH, loop(BATCH, { b, s16 }, 'b.printAndReturn(s16).free()'));
  explicit('public-1k', BATCH, loop(BATCH, { b, s1k }, 'b.printAndReturn(s1k).free()'));
  explicit('raw-16-job', 64, loopPerJob(64, { raw, s16 }, 'raw.free_string(raw.print_and_return(s16))'));
  explicit('public-16-job', 64, loopPerJob(64, { b, s16 }, 'b.printAndReturn(s16).free()'));
  // Made in one job, freed in the next: by then the fallback has registered each (and free() unregisters it).
  explicit(
    'public-16-armed',
    BATCH,
    compile({ b, s16 }, `
      const strings = new Array(${BATCH});
      return async function task() {
        for (let i = 0; i < ${BATCH}; i++) strings[i] = b.printAndReturn(s16);
        await null;
        for (let i = 0; i < ${BATCH}; i++) strings[i].free();
      };`),
  );

  // Never freed: the FinalizationRegistry releases each after GC. The yield per batch lets its callbacks run, inside
  // the timed window, so the figure is the whole cost of the fallback, collection included. The note (set at the end
  // of the run, after a bounded gc loop) says whether the registry released every one.
  add(
    'fallback-16',
    BATCH,
    compile({ b, s16, yieldToLoop }, `
      return async function task() {
        for (let i = 0; i < ${BATCH}; i++) b.printAndReturn(s16);
        await yieldToLoop();
      };`),
  );

  // The first view() of a string creates its external ArrayBuffer; making and freeing the strings is not timed.
  // Before the timed part both sizes sweep the same 8 MiB of memory: copying 8 × 1 MiB in the setup alone leaves the
  // caches cold, which made the 1 MiB views ~2 µs slower than the 16 B ones for reasons that have nothing to do with
  // their size (a 16 B view after the same sweep costs the same). So the two rows differ in size only.
  const sweep = new Uint8Array(8 << 20);
  const firstView = (key: string, input: Uint8Array, batch: number) =>
    explicit(
      key,
      batch,
      compile({ b, input, now, sweep }, `
        const strings = new Array(${batch});
        let round = 0;
        return function task() {
          const start = now();
          for (let i = 0; i < ${batch}; i++) strings[i] = b.printAndReturn(input);
          sweep.fill(round++ & 255);
          const t0 = now();
          for (let i = 0; i < ${batch}; i++) strings[i].view();
          const t1 = now();
          for (let i = 0; i < ${batch}; i++) strings[i].free();
          return { overriddenDuration: t1 - t0, overriddenIterationCost: now() - start };
        };`),
    );
  // 8 at a time: with 32, the 32 MiB of strings plus the 32 MiB their views add to V8's external memory crossed its
  // 64 MiB soft limit every round, and the task measured a full collection every 64 views (~90 µs a view).
  firstView('view-first-16', u16, 8);
  firstView('view-first-1m', u1m, 8);
  // The Node floor of a first view, made by the same addon in the same run: a bare external ArrayBuffer and a
  // Uint8Array over a static scratch, with no ownership work (no share, no reference, no report). The same shape as
  // firstView: the same sweep before, 8 a sample, the views dropped after.
  const floorView = (key: string, length: number, batch: number) =>
    explicit(
      key,
      batch,
      compile({ raw, now, sweep }, `
        const views = new Array(${batch});
        let round = 0;
        return function task() {
          const start = now();
          sweep.fill(round++ & 255);
          const t0 = now();
          for (let i = 0; i < ${batch}; i++) views[i] = raw.noop_view(${length});
          const t1 = now();
          views.fill(undefined);
          return { overriddenDuration: t1 - t0, overriddenIterationCost: now() - start };
        };`),
    );
  floorView('view-floor-16', 16, 8);
  floorView('view-floor-1m', 1 << 20, 8);

  const small = b.printAndReturn(s16);
  const big = b.printAndReturn(s1m);
  small.view();
  big.view();
  add('view-16', BATCH, loop(BATCH, { small }, 'small.view()'));
  add('view-1m', BATCH, loop(BATCH, { big }, 'big.view()'));
  add('tostring-16', BATCH, loop(BATCH, { small }, 'small.toString()'));
  add('tostring-1m', 4, loop(4, { big }, 'big.toString()'));
  cleanup.push(() => void small.free(), () => void big.free());

  // Subscriptions: the callback counts its calls; after the task they must equal the sum of what send() returned.
  let delivered = 0;
  const callback = () => void delivered++;
  const one = b.handler('bench-1', callback);
  const ten = Array.from({ length: 10 }, () => b.handler('bench-10', callback));
  const tally = { returned: 0 };
  const reset = () => {
    delivered = 0;
    tally.returned = 0;
  };
  const deliveries = (handlers: number) => () => {
    if (delivered !== tally.returned || delivered % handlers !== 0) {
      throw new Error(`${b.name}: send() reported ${tally.returned} deliveries, the callbacks counted ${delivered}`);
    }
    return `${delivered} deliveries, as send() reported`;
  };
  const sending = (key: string, handlers: number, body: string, scope: Scope) =>
    add(key, BATCH, loop(BATCH, { ...scope, tally }, `tally.returned += ${body}`), {
      before: reset,
      after: deliveries(handlers),
    });
  sending('send-1-raw', 1, `raw.send('bench-1', 'hello')`, { raw });
  sending('send-1', 1, `b.send('bench-1', 'hello')`, { b });
  sending('send-10', 10, `b.send('bench-10', 'hello')`, { b });
  cleanup.push(() => {
    one.cancel();
    for (const sub of ten) sub.cancel();
  });
  explicit('churn-raw', BATCH, loop(BATCH, { raw, callback }, `raw.cancel(raw.handler('churn', callback))`));
  explicit('churn', BATCH, loop(BATCH, { b, callback }, `b.handler('churn', callback).cancel()`));
  // Scale rows: each operation at N = 10, 1,000 and 100,000 on one dest (or in the table), so the table shows whether a
  // cost grows with the work. Cancel drains a crowd of N made untimed, oldest first and newest first (what a fallback
  // sweep of dropped subscriptions, or a topic's subscribers leaving in order, costs per cancel); a small N is
  // repeated (10,000 cancels a sample) so two clock readings per crowd stay under 2 % of it. Each crowd outlives the
  // job that made it, so every cancel also unregisters from the FinalizationRegistry, at every N alike (made and
  // cancelled in one job, a crowd under 1,024 would never be registered and one over it would: unlike for like).
  for (const [tag, n] of SCALES) {
    const crowds = Math.max(1, Math.floor(10_000 / n));
    for (const order of ['oldest', 'newest'] as const) {
      const cancelAll =
        order === 'oldest'
          ? (call: string) => `for (let i = 0; i < ${n}; i++) ${call};`
          : (call: string) => `for (let i = ${n} - 1; i >= 0; i--) ${call};`;
      // The raw path (the binding and the dispatcher core: what O(1) cancel is about), then the public one.
      for (const [key, make, cancel] of [
        [`cancel-raw-${tag}-${order}`, `raw.handler('crowd', callback)`, cancelAll('raw.cancel(subs[i])')],
        [`cancel-${tag}-${order}`, `b.handler('crowd', callback)`, cancelAll('subs[i].cancel()')],
      ] as const) {
        explicit(
          key,
          n * crowds,
          compile({ b, raw, callback, now }, `
            const subs = new Array(${n});
            return async function task() {
              const start = now();
              let timed = 0;
              for (let c = 0; c < ${crowds}; c++) {
                for (let i = 0; i < ${n}; i++) subs[i] = ${make};
                await null; // a job boundary: the fallback arms every one, as for any subscription that outlives its job
                const t0 = now();
                ${cancel}
                timed += now() - t0;
              }
              return { overriddenDuration: timed, overriddenIterationCost: now() - start };
            };`),
        );
      }
    }
    // The explicit round trip with N other strings live in this environment's table (made before, freed after).
    const held: { free(): unknown }[] = [];
    let baseline = 0;
    const holding = () => {
      while (held.length < n) held.push(b.printAndReturn(s16));
      baseline = b.stats().strings.live;
    };
    const stillHeld = () => {
      const live = b.stats().strings.live;
      if (live !== baseline) throw new Error(`${b.name} public-16-live-${tag}: ${live - baseline} strings left live`);
      return `${held.length} other strings live throughout`;
    };
    add(`public-16-live-${tag}`, BATCH, loop(BATCH, { b, s16 }, 'b.printAndReturn(s16).free()'), {
      before: holding,
      after: stillHeld,
    });
    cleanup.push(() => {
      for (const str of held.splice(0)) str.free();
    });
    // send() to N handlers on one dest, per handler called: whether delivery cost per callback grows with the crowd.
    const dest = `fanout-${tag}`;
    const sends = Math.max(1, Math.floor(10_000 / n));
    const fanout: { cancel(): unknown }[] = [];
    add(`send-per-handler-${tag}`, n * sends, loop(sends, { b, dest, tally }, `tally.returned += b.send(dest, 'hello')`), {
      before() {
        while (fanout.length < n) fanout.push(b.handler(dest, callback));
        reset();
      },
      after: deliveries(n),
    });
    cleanup.push(() => {
      for (const sub of fanout.splice(0)) sub.cancel();
    });
  }

  // Native-thread delivery (issue 4), measured once both the public method and the built addon have it.
  const has = (name: string) => typeof (b as unknown as Record<string, unknown>)[name] === 'function';
  const rawHas = (name: string) => typeof (raw as unknown as Record<string, unknown>)[name] === 'function';
  const missing = (name: string) =>
    !has(name) ? `backend.${name}() does not exist` : !rawHas(name) ? `the built addon has no ${name} export (rebuild)` : undefined;
  const postMissing = missing('post');
  if (postMissing) {
    skipped.push({ key: 'post-1', why: `${b.name}: ${postMissing}` });
  } else {
    let posted = 0;
    const sub = b.handler('bench-post', () => void posted++);
    cleanup.push(() => void sub.cancel());
    // BATCH posts in flight, then awaited: the throughput of post → worker thread → threadsafe function → callback.
    add(
      'post-1',
      BATCH,
      compile({ b }, `
        const pending = new Array(${BATCH});
        return async function task() {
          for (let i = 0; i < ${BATCH}; i++) pending[i] = b.post('bench-post', 'hello');
          const counts = await Promise.all(pending);
          for (let i = 0; i < ${BATCH}; i++) if (counts[i] !== 1) throw new Error('a post reached ' + counts[i] + ' handlers');
        };`),
      { after: () => `${posted} posted messages delivered` },
    );
  }
  const produceMissing = missing('produce');
  if (produceMissing) {
    skipped.push({ key: 'produce-1', why: `${b.name}: ${produceMissing}` });
  } else {
    // A native producer thread posting PRODUCED messages as fast as it can; timed until the last one reached JS.
    const PRODUCED = 2048;
    let got = 0;
    let wake: (() => void) | undefined;
    const sub = b.handler('bench-produce', () => {
      if (++got === PRODUCED) wake?.();
    });
    cleanup.push(() => void sub.cancel());
    let total = 0;
    add(
      'produce-1',
      PRODUCED,
      async () => {
        got = 0;
        const arrived = new Promise<void>((resolve) => (wake = resolve));
        const producer = b.produce('bench-produce', { count: PRODUCED, intervalMs: 0 });
        await arrived;
        total += await producer.done;
      },
      { after: () => `${total} produced messages delivered` },
    );
  }
}

function addPlainJs(): void {
  const ab16 = new ArrayBuffer(16);
  const ab1m = new ArrayBuffer(1 << 20);
  const decoder = new TextDecoder();
  add('call', BATCH, compile({}, `
    function f(x) { return x; }
    return function task() { for (let i = 0; i < ${BATCH}; i++) f(i); };`));
  add('public-16', BATCH, loop(BATCH, { Buffer, s16 }, 'Buffer.from(s16)'));
  add('public-1k', BATCH, loop(BATCH, { Buffer, s1k }, 'Buffer.from(s1k)'));
  add('public-1m', 4, loop(4, { Buffer, s1m }, 'Buffer.from(s1m)'));
  add('raw-16-job', 64, loopPerJob(64, {}, ''));
  // What the fallback pays per job to arm itself (src/fallback.ts uses queueMicrotask), and the V8-native alternative.
  {
    let ran = 0;
    const arm = () => void ran++;
    const resolved = Promise.resolve();
    add('job-queue-microtask', 64, loopPerJob(64, { arm }, 'queueMicrotask(arm)'));
    add('job-then', 64, loopPerJob(64, { arm, resolved }, 'resolved.then(arm)'), { after: () => `${ran} scheduled calls ran` });
  }
  {
    const registry = new FinalizationRegistry<number>(() => {});
    add('public-16-armed', BATCH, compile({ registry }, `
      const tokens = new Array(${BATCH});
      return async function task() {
        for (let i = 0; i < ${BATCH}; i++) { const o = { i }; registry.register(o, i, o); tokens[i] = o; }
        await null;
        for (let i = 0; i < ${BATCH}; i++) registry.unregister(tokens[i]);
      };`));
  }
  {
    let finalized = 0;
    const registry = new FinalizationRegistry<number>(() => void finalized++);
    add('fallback-16', BATCH, compile({ registry, yieldToLoop }, `
      return async function task() {
        for (let i = 0; i < ${BATCH}; i++) registry.register({ i }, i);
        await yieldToLoop();
      };`), { after: () => `${finalized} finalized so far` });
  }
  add('view-first-16', BATCH, loop(BATCH, { ab16 }, 'new Uint8Array(ab16)'));
  add('view-first-1m', BATCH, loop(BATCH, { ab1m }, 'new Uint8Array(ab1m)'));
  add('tostring-16', BATCH, loop(BATCH, { decoder, u16 }, 'decoder.decode(u16)'));
  add('tostring-1m', 4, loop(4, { decoder, u1m }, 'decoder.decode(u1m)'));
  const ee = new EventEmitter();
  ee.setMaxListeners(20);
  const callback = () => {};
  ee.on('bench-1', callback);
  for (let i = 0; i < 10; i++) ee.on('bench-10', callback);
  add('send-1', BATCH, loop(BATCH, { ee }, `ee.emit('bench-1', 'hello')`));
  add('send-10', BATCH, loop(BATCH, { ee }, `ee.emit('bench-10', 'hello')`));
  add('churn', BATCH, loop(BATCH, { ee, callback }, `ee.on('churn', callback); ee.off('churn', callback)`));
  for (const [tag, n] of SCALES) {
    const dest = `fanout-${tag}`;
    ee.setMaxListeners(0);
    for (let i = 0; i < n; i++) ee.on(dest, callback);
    const sends = Math.max(1, Math.floor(10_000 / n));
    add(`send-per-handler-${tag}`, n * sends, loop(sends, { ee, dest }, `ee.emit(dest, 'hello')`));
  }
}

/** Both backends through the same call sites, as in a program that uses both. */
function addMixed(): void {
  const raws = [cpp.raw, rust.raw];
  const bs = [cpp, rust];
  add('mixed-call', BATCH, loop(BATCH, { raws }, 'raws[i & 1].noop()'));
  add('mixed-public-16', BATCH, loop(BATCH, { bs, s16 }, 'bs[i & 1].printAndReturn(s16).free()'));
}

if (suite === 'js') addPlainJs();
else if (suite === 'mixed') addMixed();
else addBackend(suite === 'cpp' ? cpp : rust);

await bench.run();
for (const release of cleanup) release();

const rows: Measured[] = [];
for (const task of bench.tasks) {
  const r = task.result;
  if (r.state !== 'completed') {
    throw new Error(`${suite} ${task.name}: ${r.state} ${'error' in r ? String(r.error?.stack ?? r.error) : ''}`);
  }
  const { batch } = entries.get(task.name)!;
  const perOp = (ms: number) => (ms * 1e6) / batch;
  rows.push({
    key: task.name,
    suite,
    batch,
    mean: perOp(r.latency.mean),
    p50: perOp(r.latency.p50),
    min: perOp(r.latency.min),
    p99: perOp(r.latency.p99),
    rme: r.latency.rme,
    samples: r.latency.samplesCount,
    ...(entries.get(task.name)!.note ? { note: entries.get(task.name)!.note! } : {}),
  });
}

// The fallback task's strings: every one must be released by the registry once collected.
if (suite === 'cpp' || suite === 'rust') {
  const b = suite === 'cpp' ? cpp : rust;
  const ok = await gcUntil(() => b.stats().strings.live === 0 && b.stats().handlers.live === 0);
  const s = b.stats();
  const row = rows.find((r) => r.key === 'fallback-16');
  if (row) row.note = `${s.strings.finalized} finalized by the registry; live after gc: ${s.strings.live}`;
  if (!ok) throw new Error(`${suite}: after the run ${JSON.stringify(s)} — something is still live`);
}

const result: SuiteResult = { suite, node: process.version, rows, skipped };
writeFileSync(outPath, JSON.stringify(result));
