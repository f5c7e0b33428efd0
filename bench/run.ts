/**
 * `npm run bench`: what ownership costs, every figure a ratio measured side by side in this one run.
 *
 * Each sample runs an operation BATCH times and reports the mean per operation, so a ~15 ns call is not drowned by the
 * timer (~30 ns per reading). tinybench supplies warm-up, many samples and the spread (relative margin of error).
 * The floor is a no-op native call of the same backend; a plain-JS baseline sits beside it.
 */
import { writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { backends, type Backend } from '../src/index.js';

const BATCH = 256;
const quick = process.argv.includes('--quick');
const bench = new Bench({ time: quick ? 100 : 600, warmupTime: quick ? 20 : 150 });

const s16 = 'sixteen bytes ok';
const s1k = 'k'.repeat(1024);
const s1m = 'm'.repeat(1 << 20);
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function batched(name: string, op: () => void, batch = BATCH): void {
  bench.add(name, () => {
    for (let i = 0; i < batch; i++) op();
  });
  perOp.set(name, batch);
}
const perOp = new Map<string, number>();

// Plain-JS baselines: a function call, and the JS way to get 16 UTF-8 bytes of a string.
const jsNoop = (x?: unknown) => x;
const encoder = new TextEncoder();
batched('js: noop function', () => void jsNoop());
batched('js: TextEncoder.encode 16 B', () => void encoder.encode(s16));

function addBackend(b: Backend): void {
  const raw = b.raw;
  const p = `${b.name}: `;
  batched(`${p}noop native call`, () => raw.noop());
  batched(`${p}raw print_and_return+free_string 16 B`, () => void raw.free_string(raw.print_and_return(s16)));
  batched(`${p}printAndReturn+free 16 B`, () => void b.printAndReturn(s16).free());
  batched(`${p}printAndReturn+free 1 KiB`, () => void b.printAndReturn(s1k).free());
  batched(`${p}printAndReturn+free 1 MiB`, () => void b.printAndReturn(s1m).free(), 4);
  const small = b.printAndReturn(s16);
  const big = b.printAndReturn(s1m);
  batched(`${p}view() 16 B`, () => void small.view());
  batched(`${p}view() 1 MiB`, () => void big.view());
  batched(`${p}toString() 1 MiB`, () => void big.toString(), 4);
  // Fallback only: never freed; the FinalizationRegistry releases after GC. The yield each batch lets it run.
  bench.add(`${p}printAndReturn 16 B, fallback only`, async () => {
    for (let i = 0; i < BATCH; i++) b.printAndReturn(s16);
    await yieldToLoop();
  });
  perOp.set(`${p}printAndReturn 16 B, fallback only`, BATCH);
}
for (const b of backends) addBackend(b);

await bench.run();

interface Row {
  name: string;
  nsPerOp: number;
  opsPerSec: number;
  rmePercent: number;
  samples: number;
}
const rows: Row[] = [];
for (const task of bench.tasks) {
  const r = task.result;
  if (r.state !== 'completed') throw new Error(`${task.name}: ${r.state} ${'error' in r ? String(r.error) : ''}`);
  const batch = perOp.get(task.name) ?? 1;
  const nsPerOp = (r.latency.mean * 1e6) / batch;
  rows.push({ name: task.name, nsPerOp, opsPerSec: 1e9 / nsPerOp, rmePercent: r.latency.rme, samples: r.latency.samplesCount ?? r.latency.samples?.length ?? 0 });
}
const ns = (name: string) => rows.find((r) => r.name === name)!.nsPerOp;

const table = rows.map((r) => {
  const [backend, op] = r.name.includes(': ') ? (r.name.split(': ') as [string, string]) : ['', r.name];
  const noop = backend === 'js' ? ns('js: noop function') : ns(`${backend}: noop native call`);
  const twin = backend === 'rust' ? rows.find((x) => x.name === `cpp: ${op}`) : undefined;
  return {
    operation: r.name,
    'ns/op': r.nsPerOp.toFixed(1),
    'ops/s': Math.round(r.opsPerSec).toLocaleString('en-US'),
    '± %': r.rmePercent.toFixed(1),
    '× noop': (r.nsPerOp / noop).toFixed(1),
    'rust/cpp': twin ? (r.nsPerOp / twin.nsPerOp).toFixed(2) : '',
  };
});
console.table(table);

interface Target {
  what: string;
  ratio: number;
  limit: number;
}
const targets: Target[] = [];
for (const b of backends) {
  const p = `${b.name}: `;
  targets.push(
    { what: `${p}raw round trip 16 B / noop`, ratio: ns(`${p}raw print_and_return+free_string 16 B`) / ns(`${p}noop native call`), limit: 15 },
    { what: `${p}public explicit 16 B / raw round trip`, ratio: ns(`${p}printAndReturn+free 16 B`) / ns(`${p}raw print_and_return+free_string 16 B`), limit: 2 },
    { what: `${p}view 1 MiB / view 16 B`, ratio: ns(`${p}view() 1 MiB`) / ns(`${p}view() 16 B`), limit: 2 },
  );
}
for (const op of ['noop native call', 'raw print_and_return+free_string 16 B', 'printAndReturn+free 16 B', 'printAndReturn+free 1 KiB', 'view() 16 B']) {
  const r = ns(`rust: ${op}`) / ns(`cpp: ${op}`);
  targets.push({ what: `rust/cpp ${op} (either way)`, ratio: Math.max(r, 1 / r), limit: 1.5 });
}
console.log('\nTargets (ratios from this run):');
for (const t of targets) {
  console.log(`  ${t.ratio <= t.limit ? 'met ' : 'MISS'}  ${t.what}: ${t.ratio.toFixed(2)} (≤ ${t.limit})`);
}
writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify({ node: process.version, batch: BATCH, rows, targets }, null, 2));
console.log('\nwrote bench/results.json');
