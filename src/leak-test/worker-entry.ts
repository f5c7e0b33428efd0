/** The worker of the worker scenarios: strings, subscriptions and native-thread delivery until it is ended. */
import { parentPort, workerData } from 'node:worker_threads';
import { cpp, rust } from '../index.js';

const { backend: name, exitInside } = workerData as { backend: string; exitInside?: boolean };
const backend = name === 'cpp' ? cpp : rust;
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
