/**
 * The threads (and the one process) of the worker scenarios. Workers load the compiled dist/ copy of this file.
 *
 * - A worker with `{ backend }`: strings, subscriptions and native-thread delivery until it is ended
 *   (worker-terminated, exit-during-delivery).
 * - A worker with `{ backend, mode: 'dead-worker' }`: loads that backend only, makes strings and a subscription, posts
 *   their raw handles to its parent and exits (foreign-env-dead-worker).
 * - The main thread of `node worker-entry.js foreign-env-dead-worker <cpp|rust>`: a process that has loaded no backend
 *   yet. It runs the dead worker, waits until it is gone (its environment torn down, the `.node` unloaded if nothing
 *   else holds it), then loads the backend and checks that every handle of the dead worker is refused with
 *   ERR_FOREIGN_ENV. Prints one JSON line: `{ refused, accepted: [what was not refused], unloaded }`; exits 1 if any.
 */
import { readFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { cpp, rust } from '../index.js';

type DeadWorkerHandles = { strings: number[]; subscription: number };

const backendOf = (name: unknown) => (name === 'cpp' ? cpp : name === 'rust' ? rust : undefined);

if (isMainThread) await refuseDeadWorkersHandles();
else if ((workerData as { mode?: string }).mode === 'dead-worker') deadWorker();
else deliverUntilEnded();

function deadWorker(): void {
  const backend = backendOf((workerData as { backend: string }).backend)!;
  const live: unknown[] = []; // held until exit: the handles must be live in this environment when it dies
  const strings = Array.from({ length: 4 }, (_, i) => {
    const s = backend.printAndReturn(`dead worker's string ${i}`);
    live.push(s, s.view());
    return s._handle;
  });
  const sub = backend.handler('dead-worker', () => {});
  live.push(sub);
  parentPort!.postMessage({ strings, subscription: sub._handle } satisfies DeadWorkerHandles);
  process.exit(0); // a worker's exit tears its environment down: every handle above dies with it
}

async function refuseDeadWorkersHandles(): Promise<void> {
  const [mode, name] = process.argv.slice(2);
  const backend = backendOf(name);
  if (mode !== 'foreign-env-dead-worker' || !backend) {
    process.stderr.write('usage: worker-entry foreign-env-dead-worker <cpp|rust>\n');
    process.exit(64);
  }
  const marker = backend.name === 'cpp' ? 'napi_ownership_cpp' : 'napi-ownership-rust';
  const mapped = () => readFileSync('/proc/self/maps', 'utf8').includes(marker);
  if (mapped()) throw new Error(`the ${backend.name} addon is loaded before the worker ran: this process cannot test a reload`);
  const worker = new Worker(new URL(import.meta.url), { workerData: { backend: backend.name, mode: 'dead-worker' } });
  let handles: DeadWorkerHandles | undefined;
  worker.on('message', (m: DeadWorkerHandles) => (handles = m));
  const code = await new Promise<number>((resolve, reject) => {
    worker.once('exit', resolve);
    worker.once('error', reject);
  });
  if (code !== 0 || !handles) throw new Error(`the dead worker exited with ${code} and posted ${handles ? 'its handles' : 'nothing'}`);
  const unloaded = !mapped(); // informative: whether this run tests a .node loaded again (its globals restarted)

  // Only now does this thread load the backend.
  const raw = backend.raw;
  const calls: [string, () => unknown][] = [
    ...handles.strings.flatMap((h): [string, () => unknown][] => [
      [`string_text(${h})`, () => raw.string_text(h)],
      [`free_string(${h})`, () => raw.free_string(h)],
    ]),
    [`cancel(${handles.subscription})`, () => raw.cancel(handles!.subscription)],
  ];
  const accepted: string[] = [];
  let refused = 0;
  for (const [what, call] of calls) {
    try {
      accepted.push(`${what} returned ${JSON.stringify(call())}`);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'ERR_FOREIGN_ENV') refused++;
      else accepted.push(`${what} threw ${String(code)} (${(error as Error).message}), not ERR_FOREIGN_ENV`);
    }
  }
  const stats = backend.stats();
  if (stats.strings.live !== 0 || stats.handlers.live !== 0) accepted.push(`this environment's ledger is not empty: ${JSON.stringify(stats)}`);
  process.stdout.write(`${JSON.stringify({ refused, accepted, unloaded })}\n`);
  process.exitCode = accepted.length ? 1 : 0;
}

function deliverUntilEnded(): void {
  const { backend: name, exitInside } = workerData as { backend: string; exitInside?: boolean };
  const backend = backendOf(name)!;
  const live: unknown[] = [];
  let i = 0;
  function work(): void {
    for (let j = 0; j < 50; j++, i++) {
      const s = backend.printAndReturn(`worker ${i}`);
      s.view();
      if (i % 3) s.free();
      else live.push(s); // left live for teardown
      const sub = backend.handler('w', () => {});
      backend.send('w', 'x');
      if (i % 2) sub.cancel();
      else live.push(sub);
    }
    if (i === 100) {
      // Deliveries are in flight now: the producer posts, the worker thread delivers, items wait on the threadsafe
      // function. Either the main thread terminates us, or we exit ourselves: a worker's process.exit() tears its
      // environment down (unlike the main thread's), so every queued item must be freed there.
      if (exitInside) {
        // Hold this thread (bounded) while the dispatcher's worker keeps delivering: with no JS turn to drain them,
        // items pile up on the threadsafe function, so teardown has many to free, deterministically.
        const until = Date.now() + 3000;
        while (backend.stats().posts.pending < 2000 && Date.now() < until);
        process.exit(0);
      }
      parentPort!.postMessage('busy');
    }
    setImmediate(work); // never stops by itself: only terminate() ends it
  }
  backend.handler('w', () => {}); // kept registered: the producer's deliveries are in flight when terminate() lands
  live.push(backend.produce('w', { count: 1_000_000, intervalMs: 0 }));
  work();
}
