/**
 * One run of `npm run bench:memory` (bench/memory.ts starts it, one process per way and backend, so no run inherits
 * another's heap):
 *
 *   node --expose-gc memory-child.mjs <strings|subscriptions> <way> <cpp|rust> <cycles> <every> <out.json>
 *
 * bench/memory.ts compiles this file to plain JS importing the built package (dist/), so each run measures the
 * library as users load it. By hand, `node --expose-gc --import tsx bench/memory-child.ts …` works too, with tsx's
 * loader adding ~32 MiB to every RSS figure.
 *
 * strings, one 1 KiB string a cycle:
 *   explicit   printAndReturn(s).free()
 *   fallback   printAndReturn(s), dropped: the FinalizationRegistry releases it after a collection
 *   leak       printAndReturn(s), kept in an array and never released; stops once RSS reaches the cap (1 GiB)
 * subscriptions, one registration a cycle (each with its own callback closure, as real code would have):
 *   cancel     handler(dest, cb).cancel()
 *   drop       handler(dest, cb), dropped: the registry cancels it after a collection
 * and, for scale, the FinalizationRegistry's own floor (no addon call at all; the backend argument is ignored):
 *   floor      a plain JS object with its own callback closure, registered with a registry (with itself as the
 *              unregister token, as the fallback does), dropped; the registry's callback only counts
 *   floor-held the same, with the closure held strongly elsewhere until the registry's callback lets it go, as the
 *              addon's strong reference to a registered callback does
 *
 * Every way yields to the event loop every YIELD_EVERY cycles (the registry's callbacks run only then) and records
 * RSS, the V8 heap and the backend's ledger every `every` cycles.
 */
import { writeFileSync } from 'node:fs';
import { cpp, rust, type NativeString } from '../src/index.js';

export type Kind = 'strings' | 'subscriptions';
export interface Sample {
  cycle: number;
  /** Milliseconds since the loop started. */
  ms: number;
  rssMiB: number;
  /** The V8 heap. (process.memoryUsage().external is not recorded: on Node 20 it counts ArrayBuffer backing stores
   * only, not what the addons report with napi_adjust_external_memory, so it would read flat and mislead.) */
  heapUsedMiB: number;
  /** The ledger: live strings, or live registrations. */
  live: number;
  /** Released by the fallback so far (strings: finalized; subscriptions: finalized). */
  finalized: number;
}
export interface RunResult {
  kind: Kind;
  way: string;
  /** 'js' for the floor ways, which call no addon. */
  backend: 'cpp' | 'rust' | 'js';
  cycles: number;
  /** Cycles actually run (the leak stops at the cap). */
  ran: number;
  stoppedAtCap: boolean;
  capMiB: number;
  samples: Sample[];
  /** After the loop: a bounded gc-and-yield loop, then the ledger (what the fallback still had to release). */
  after: { rssMiB: number; live: number; finalized: number; gcRounds: number };
  node: string;
}

const YIELD_EVERY = 1000;
const CAP_MIB = 1024;

const [kindArg, way, backendArg, cyclesArg, everyArg, out] = process.argv.slice(2);
const kind = kindArg as Kind;
const ways: Record<Kind, string[]> = { strings: ['explicit', 'fallback', 'leak'], subscriptions: ['cancel', 'drop', 'floor', 'floor-held'] };
if (!ways[kind]?.includes(way!) || (backendArg !== 'cpp' && backendArg !== 'rust') || !out) {
  throw new Error('usage: memory-child.ts <strings|subscriptions> <way> <cpp|rust> <cycles> <every> <out.json>');
}
const b = backendArg === 'cpp' ? cpp : rust;
const cycles = Number(cyclesArg);
const every = Number(everyArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const MiB = 1024 * 1024;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const s1k = 'k'.repeat(1024);
const kept: NativeString[] = [];
let received = 0;

// The floor ways' own ledger: what was made and what the registry's callback has seen.
let floorMade = 0;
let floorCleaned = 0;
const floorHeld = new Map<number, unknown>();
const floorRegistry = new FinalizationRegistry<number>((id) => {
  floorCleaned++;
  floorHeld.delete(id);
});
class FloorSubscription {
  _handle: number;
  _life = 0;
  readonly dest = 'memory';
  readonly callback: unknown;
  constructor(handle: number, callback: unknown) {
    this._handle = handle;
    this.callback = callback;
  }
}
const isFloor = way === 'floor' || way === 'floor-held';
function floorStep(held: boolean): void {
  const id = ++floorMade;
  const callback = (m: string) => void (received += m.length);
  const owner = new FloorSubscription(id, held ? undefined : callback);
  if (held) floorHeld.set(id, callback);
  floorRegistry.register(owner, id, owner);
}

function ledger(): { live: number; finalized: number } {
  if (isFloor) return { live: floorMade - floorCleaned, finalized: floorCleaned };
  const stats = b.stats();
  const l = kind === 'strings' ? stats.strings : stats.handlers;
  return { live: l.live, finalized: l.finalized };
}

const samples: Sample[] = [];
let start = 0;
function sample(cycle: number): number {
  const m = process.memoryUsage();
  samples.push({
    cycle,
    ms: performance.now() - start,
    rssMiB: m.rss / MiB,
    heapUsedMiB: m.heapUsed / MiB,
    ...ledger(),
  });
  return m.rss / MiB;
}

/** One cycle of the chosen way. */
const steps: Record<string, () => void> = {
  'strings explicit': () => void b.printAndReturn(s1k).free(),
  'strings fallback': () => void b.printAndReturn(s1k),
  'strings leak': () => void kept.push(b.printAndReturn(s1k)),
  'subscriptions cancel': () => void b.handler('memory', (m: string) => void (received += m.length)).cancel(),
  'subscriptions drop': () => void b.handler('memory', (m: string) => void (received += m.length)),
  'subscriptions floor': () => floorStep(false),
  'subscriptions floor-held': () => floorStep(true),
};
const step = steps[`${kind} ${way}`]!;

// Settle first: the addon loaded, a collection done, so the first sample is the baseline.
step();
gc();
await yieldToLoop();
start = performance.now();
sample(0);
let ran = 0;
let stoppedAtCap = false;
for (let cycle = 1; cycle <= cycles; cycle++) {
  step();
  ran = cycle;
  if (cycle % YIELD_EVERY === 0) await yieldToLoop();
  if (cycle % every === 0) {
    const rss = sample(cycle);
    if (rss >= CAP_MIB) {
      stoppedAtCap = true;
      break;
    }
  }
}

// What is left for the fallback: a bounded loop of collections and yields until the ledger shows nothing live.
let gcRounds = 0;
const leftover = () => ledger().live - (kind === 'strings' ? kept.length : 0);
while (leftover() > 0 && gcRounds < 100) {
  gc();
  await yieldToLoop();
  gcRounds++;
}
const after = { rssMiB: process.memoryUsage.rss() / MiB, ...ledger(), gcRounds };
for (const s of kept) s.free();

const result: RunResult = {
  kind,
  way: way!,
  backend: isFloor ? 'js' : b.name,
  cycles,
  ran,
  stoppedAtCap,
  capMiB: CAP_MIB,
  samples,
  after,
  node: process.version,
};
writeFileSync(out, JSON.stringify(result));
