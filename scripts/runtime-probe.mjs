// What a runtime does with our views' finalizers, measured: run by `npm run test:runtimes` under each runtime (plain
// ESM, compiled package). Drops 64 views of 4 MiB strings whose handles were freed, collects until every one was
// finalized, and prints one JSON line: how many of those finalizers ran on a thread other than the JS thread.
// Node defers them to the JS thread (0); Deno 2.9 runs some on V8's background sweeper thread.
import { backends } from '../dist/index.js';

const collect = () => (typeof globalThis.gc === 'function' ? globalThis.gc() : globalThis.Bun.gc(true));
const nextJob = () => new Promise((resolve) => setImmediate(resolve));
const views = 64;
const out = {};
for (const b of backends) {
  const before = b.stats().strings;
  (() => {
    for (let i = 0; i < views; i++) {
      const s = b.printAndReturn(String.fromCharCode(97 + (i % 26)).repeat(4 << 20));
      s.view();
      s.free();
    }
  })();
  let rounds = 0;
  while (b.stats().strings.viewHeld > before.viewHeld && rounds < 1000) {
    await nextJob();
    collect();
    await nextJob();
    rounds++;
  }
  const after = b.stats().strings;
  out[b.name] = {
    views,
    released: views - (after.viewHeld - before.viewHeld),
    offThread: after.viewFinalizedOffThread - before.viewFinalizedOffThread,
  };
}
console.log(JSON.stringify(out));
