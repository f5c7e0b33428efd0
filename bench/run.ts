/**
 * `npm run bench`: what ownership costs, every figure beside the no-op native call of the same backend and, where JS
 * has one, a plain-JS equivalent, all measured in this one run.
 *
 *   npm run bench                 5 rounds (~2 minutes)
 *   npm run bench -- --quick      1 short round (~20 s), for a smoke test
 *   npm run bench -- --rounds=5   more rounds, tighter spread
 *   npm run bench -- --profile=rust:tostring-1m   one row of one suite under `node --cpu-prof` (writes bench/profiles/)
 *
 * A round measures every suite in its own process (bench/suite.ts says why): plain JS, cpp, rust (cpp and rust take
 * turns going first), and `mixed` (both backends through one call site). Within a process tinybench warms each task
 * up and then takes many samples of `batch` operations each. A figure is the median over rounds of each round's mean
 * (the amortized cost, garbage collection included). Its spread (±) is the larger of tinybench's 95 % margin of error
 * within a round (the median over rounds) and half the interquartile range of the round means: how far a typical
 * round strays. One round spoiled by someone else's burst moves neither; the targets print every ratio's lowest and
 * highest round, and bench/results.json keeps each round's figure.
 *
 * Writes bench/results.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROWS, type Measured, type Suite, type SuiteResult } from './rows.js';
import { COLORS, renderChart, type Series } from './svg.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
// Many short rounds rather than a few long ones: on a shared machine a burst of someone else's work then spoils one
// round of a row, and the median over rounds leaves it out.
const rounds = Number(option('rounds') ?? (quick ? 1 : 5));
const time = quick ? 100 : 200;
const warmup = quick ? 25 : 50;
const root = fileURLToPath(new URL('..', import.meta.url));
const suiteFile = fileURLToPath(new URL('./suite.ts', import.meta.url));

function runSuite(suite: Suite, extra: string[] = [], nodeFlags: string[] = []): SuiteResult {
  const dir = mkdtempSync(join(tmpdir(), 'napi-ownership-bench-'));
  const out = join(dir, `${suite}.json`);
  try {
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', ...nodeFlags, '--import', 'tsx', suiteFile, suite, out, `--time=${time}`, `--warmup=${warmup}`, ...extra],
      { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NAPI_OWNERSHIP_TRACE: '' } },
    );
    if (child.status !== 0) throw new Error(`the ${suite} suite failed (exit ${child.status ?? child.signal})`);
    return JSON.parse(readFileSync(out, 'utf8')) as SuiteResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --profile=<suite>:<row>: one row under the V8 CPU profiler, then stop.
const profile = option('profile');
if (profile) {
  const [suite, key] = profile.split(':') as [Suite, string];
  const dir = join(root, 'bench', 'profiles');
  mkdirSync(dir, { recursive: true });
  const result = runSuite(suite, [`--only=${key}`], ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=100']);
  for (const r of result.rows) console.log(`${suite} ${r.key}: ${r.mean.toFixed(1)} ns/op (±${r.rme.toFixed(1)} %)`);
  console.log(`profile written to ${dir} (open it in Chrome DevTools, Performance tab)`);
  process.exit(0);
}

// ---- measure -----------------------------------------------------------------------------------------------------
const ALONE = ['public-1m'];
const started = Date.now();
/** The 1-minute load average before each suite: above the core count minus one, something else shared the CPUs. */
const loads: number[] = [];
const perRound: SuiteResult[][] = [];
const skipped = new Map<string, string>();
for (let round = 0; round < rounds; round++) {
  const order: Suite[] = round % 2 === 0 ? ['js', 'cpp', 'rust', 'mixed'] : ['js', 'rust', 'cpp', 'mixed'];
  const results: SuiteResult[] = [];
  for (const suite of order) {
    process.stderr.write(`\rround ${round + 1}/${rounds}: ${suite}      `);
    loads.push(loadavg()[0]!);
    let result: SuiteResult;
    if (suite === 'cpp' || suite === 'rust') {
      // Rows whose cost depends on the allocator's state run in a process of their own (see bench/suite.ts).
      const alone = runSuite(suite, [`--only=${ALONE.join(',')}`]);
      result = runSuite(suite, [`--skip=${ALONE.join(',')}`]);
      result.rows.unshift(...alone.rows);
    } else {
      result = runSuite(suite);
    }
    for (const s of result.skipped) skipped.set(`${s.key}: ${s.why}`, s.why);
    results.push(result);
  }
  perRound.push(results);
}
process.stderr.write(`\rmeasured ${rounds} round(s) in ${((Date.now() - started) / 1000).toFixed(0)} s\n\n`);

// ---- aggregate ---------------------------------------------------------------------------------------------------
interface Figure {
  /** ns per operation: the median over rounds of each round's mean. */
  ns: number;
  /** ± percent: max(tinybench's 95 % margin (median over rounds), half the interquartile range of the round means). */
  spread: number;
  /** Each round's mean, in round order. */
  rounds: number[];
  samples: number;
  batch: number;
  notes: string[];
}

/** The q-quantile (0..1) of xs, linearly interpolated. */
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo);
};
const median = (xs: number[]) => quantile(xs, 0.5);

function figure(suite: Suite, key: string): Figure | undefined {
  const measured: Measured[] = [];
  for (const results of perRound) {
    const row = results.find((r) => r.suite === suite)?.rows.find((r) => r.key === key);
    if (row) measured.push(row);
  }
  if (measured.length === 0) return undefined;
  const means = measured.map((m) => m.mean);
  const ns = median(means);
  const halfIqr = ((quantile(means, 0.75) - quantile(means, 0.25)) / 2 / ns) * 100;
  return {
    ns,
    spread: Math.max(halfIqr, median(measured.map((m) => m.rme))),
    rounds: means,
    samples: measured.reduce((n, m) => n + m.samples, 0),
    batch: measured[0]!.batch,
    notes: [...new Set(measured.map((m) => m.note).filter((n): n is string => !!n))],
  };
}

const table = ROWS.map((row) => ({
  ...row,
  cpp: figure('cpp', row.key),
  rust: figure('rust', row.key),
  jsFigure: figure('js', row.key),
  mixed: figure('mixed', row.key),
})).filter((r) => r.cpp || r.rust || r.jsFigure || r.mixed);

const floor = { cpp: figure('cpp', 'call')!, rust: figure('rust', 'call')!, js: figure('js', 'call')! };

/** The ratio of two figures per round (paired by round), and its median. */
function ratio(a: Figure, b: Figure): { value: number; min: number; max: number } {
  const n = Math.min(a.rounds.length, b.rounds.length);
  const each = Array.from({ length: n }, (_, i) => a.rounds[i]! / b.rounds[i]!);
  return { value: a.ns / b.ns, min: Math.min(...each), max: Math.max(...each) };
}

// ---- print -------------------------------------------------------------------------------------------------------
function ns(x: number): string {
  if (x < 100) return `${x.toFixed(1)} ns`;
  if (x < 10_000) return `${x.toFixed(0)} ns`;
  if (x < 10_000_000) return `${(x / 1000).toFixed(1)} µs`;
  return `${(x / 1e6).toFixed(1)} ms`;
}
function perSecond(x: number): string {
  const ops = 1e9 / x;
  if (ops >= 1e6) return `${(ops / 1e6).toFixed(ops >= 1e7 ? 1 : 2)} M`;
  if (ops >= 1e3) return `${(ops / 1e3).toFixed(ops >= 1e4 ? 1 : 2)} k`;
  return ops.toFixed(0);
}
const times = (x: number) => `${x < 10 ? x.toFixed(2) : x.toFixed(1)}×`;
const pm = (f: Figure) => `±${f.spread < 10 ? f.spread.toFixed(1) : f.spread.toFixed(0)}%`;

type Cell = string;
const header: Cell[] = ['operation', 'cpp ns/op', '±', 'ops/s', '× noop', 'rust ns/op', '±', 'ops/s', '× noop', 'rust/cpp', 'plain JS', '±'];
const lines: Cell[][] = [];
for (const r of table) {
  const side = (f: Figure | undefined, noop: Figure): Cell[] =>
    f ? [ns(f.ns), pm(f), perSecond(f.ns), r.key === 'call' ? '1' : times(f.ns / noop.ns)] : ['', '', '', ''];
  if (r.mixed) {
    // Both backends through one call site: one figure, compared with the mean of the two separate floors.
    const sep = r.key === 'mixed-call' ? (floor.cpp.ns + floor.rust.ns) / 2 : undefined;
    lines.push([r.label, ns(r.mixed.ns), pm(r.mixed), perSecond(r.mixed.ns), sep ? times(r.mixed.ns / sep) : '', '', '', '', '', '', '', '']);
    continue;
  }
  const rc = r.cpp && r.rust ? ratio(r.rust, r.cpp) : undefined;
  lines.push([
    r.label,
    ...side(r.cpp, floor.cpp),
    ...side(r.rust, floor.rust),
    rc ? rc.value.toFixed(2) : '',
    r.jsFigure ? ns(r.jsFigure.ns) : '',
    r.jsFigure ? pm(r.jsFigure) : '',
  ]);
}
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const fmt = (cells: Cell[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
console.log(`napi-ownership bench: node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, ${rounds} round(s)`);
console.log(`ns/op: median over rounds of the mean; ±: spread (see bench/run.ts); × noop: to the same backend's no-op call`);
// This run itself keeps about one core busy; more than that means someone else was running too.
const busy = Math.max(...loads) > cpus().length - 0.25;
console.log(
  `load average before each suite: ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} on ${cpus().length} cores${
    busy ? ' — WARNING: other processes were using the CPUs; expect wide spreads and treat ratios with care' : ''
  }\n`,
);
console.log(fmt(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const l of lines) console.log(fmt(l));

{
  const mixedCall = figure('mixed', 'mixed-call');
  const mixedPublic = figure('mixed', 'mixed-public-16');
  const pub = [figure('cpp', 'public-16'), figure('rust', 'public-16')];
  if (mixedCall && mixedPublic && pub[0] && pub[1]) {
    const sepCall = (floor.cpp.ns + floor.rust.ns) / 2;
    const sepPublic = (pub[0].ns + pub[1].ns) / 2;
    console.log(
      `\nboth backends in one process (the last two rows): a call site that sees both costs ${times(mixedCall.ns / sepCall)} the ` +
        `separate floors' mean, and printAndReturn + free() in turn ${times(mixedPublic.ns / sepPublic)} the separate mean ` +
        `(V8's inline caches go polymorphic). Every other row is measured in a process that loads one backend.`,
    );
  }
}
console.log('\nplain JS column:');
for (const r of table) if (r.jsFigure && r.js) console.log(`  ${r.label}: ${r.js}`);
if (skipped.size) {
  console.log('\nnot measured:');
  for (const line of skipped.keys()) console.log(`  ${line}`);
}

// ---- targets -----------------------------------------------------------------------------------------------------
interface Target {
  what: string;
  limit: number;
  value: number;
  min: number;
  max: number;
  met: boolean;
}
const targets: Target[] = [];
function target(what: string, a: Figure | undefined, b: Figure | undefined, limit: number, eitherWay = false): void {
  if (!a || !b) return;
  let r = ratio(a, b);
  if (eitherWay && r.value < 1) r = { value: 1 / r.value, min: 1 / r.max, max: 1 / r.min };
  targets.push({ what, limit, ...r, met: r.value <= limit });
}
for (const name of ['cpp', 'rust'] as const) {
  const f = (key: string) => figure(name, key);
  target(`${name}: raw round trip 16 B / noop call`, f('raw-16'), f('call'), 15);
  target(`${name}: public explicit path 16 B / raw round trip`, f('public-16'), f('raw-16'), 1.3);
  target(`${name}:   the same, one string per job`, f('public-16-job'), f('raw-16-job'), 2);
  target(`${name}: first view() 16 B / the floor (bare external ArrayBuffer + Uint8Array)`, f('view-first-16'), f('view-floor-16'), 1.5);
  target(`${name}: first view() 1 MiB / the floor`, f('view-first-1m'), f('view-floor-1m'), 1.5);
  target(`${name}: view() 1 MiB / view() 16 B, first view (creates the buffer)`, f('view-first-1m'), f('view-first-16'), 1.5);
  target(`${name}: view() 1 MiB / view() 16 B, again (cached)`, f('view-1m'), f('view-16'), 2);
  target(`${name}: send() to 1 handler / noop call`, f('send-1'), f('call'), 20);
}
// Rust within 1.5x of C++ where both take the same path: the fenced raw fast path and what the public API builds on
// it. Every other Rust export is a #[napi] function now (issue 11), and napi-derive's wrapper (a native-borrow scope
// per call with arguments, ~80-100 ns here) is the idiom's cost: those rows are shown beside C++, not held to 1.5x.
const SAME_PATH = new Set(['raw-16', 'raw-1k', 'raw-16-u8', 'public-16', 'public-1k', 'public-1m', 'raw-16-job', 'public-16-job',
  'public-16-armed', 'fallback-16', 'public-16-live-10', 'public-16-live-1k', 'public-16-live-100k', 'produce-1']);
for (const r of table) {
  if (r.cpp && r.rust && SAME_PATH.has(r.key)) target(`rust vs cpp: ${r.label}`, r.rust, r.cpp, 1.5, true);
}

// O(1) cancel (issue 12), in the dispatcher core both addons share: dispatcher_cancel alone, Node-free
// (native-cpp/tests/dispatcher_bench.cpp, a Release build). The addons' raw and public cancel rows above add their own
// tables, Node's references and (public) the registry's unregister and the JS objects, whose cache misses grow with
// the working set: shown in the table and in docs/scale.svg.
const core: { n: number; order: string; ns: number }[] = [];
{
  const dir = join(root, 'build', 'core-bench');
  const built =
    spawnSync('cmake', ['-S', root, '-B', dir, '-G', 'Ninja', '-DNAPI_OWNERSHIP_CORE_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'ignore' }).status === 0 &&
    spawnSync('cmake', ['--build', dir, '--target', 'dispatcher_bench'], { stdio: 'ignore' }).status === 0;
  const run = built ? spawnSync(join(dir, 'native-cpp', 'tests', 'dispatcher_bench'), { encoding: 'utf8' }) : undefined;
  if (run?.status === 0) {
    for (const line of run.stdout.trim().split('\n')) core.push(JSON.parse(line) as { n: number; order: string; ns: number });
    console.log('\nthe dispatcher core alone: dispatcher_cancel draining N registrations on one dest (best of 7 rounds):');
    for (const c of core) console.log(`  N = ${c.n.toLocaleString('en-US').padStart(7)}  ${c.order} first  ${c.ns.toFixed(1)} ns`);
    for (const order of ['oldest', 'newest']) {
      const at = (n: number) => core.find((c) => c.n === n && c.order === order)!.ns;
      const value = at(100_000) / at(10);
      targets.push({ what: `core: dispatcher_cancel among 100,000 / among 10, ${order} first`, limit: 1.5, value, min: value, max: value, met: value <= 1.5 });
    }
  } else {
    console.log('\nthe dispatcher core alone: NOT MEASURED (could not build or run native-cpp/tests/dispatcher_bench)');
  }
}

// What each library's idiom costs over the fenced raw path: shown, not a target (the raw path exists because of it).
{
  const pairs: [string, string, string][] = [
    ['no-op call', 'call-idiom', 'call'],
    ['round trip 16 B (string)', 'raw-16-idiom', 'raw-16'],
    ['round trip 1 KiB (string)', 'raw-1k-idiom', 'raw-1k'],
    ['round trip 16 B (Uint8Array)', 'raw-16-u8-idiom', 'raw-16-u8'],
  ];
  const lines = pairs.flatMap(([what, idiom, rawKey]) =>
    (['cpp', 'rust'] as const).flatMap((name) => {
      const a = figure(name, idiom);
      const b = figure(name, rawKey);
      if (!a || !b) return [];
      const lib = name === 'cpp' ? 'node-addon-api' : 'napi-rs';
      const extra = a.ns - b.ns;
      return [`  ${name.padEnd(4)}  ${what.padEnd(28)} ${lib.padEnd(14)} ${ns(a.ns).padStart(9)}  raw ${ns(b.ns).padStart(9)}  ${times(a.ns / b.ns)}  (${extra >= 0 ? '+' : '−'}${ns(Math.abs(extra))})`];
    }),
  );
  if (lines.length) {
    console.log('\nwhat each library idiom costs over the raw Node-API fast path (same contract, same table):');
    for (const l of lines) console.log(l);
  }
}
console.log('\ntargets (ratios of this run; in brackets the lowest and highest round):');
const tw = Math.max(...targets.map((t) => t.what.length));
for (const t of targets) {
  const straddles = t.min <= t.limit !== t.max <= t.limit ? '  (rounds straddle the limit)' : '';
  const range = rounds > 1 ? ` [${t.min.toFixed(2)}–${t.max.toFixed(2)}]` : '';
  console.log(`  ${t.met ? 'met ' : 'MISS'}  ${t.what.padEnd(tw)}  ${t.value.toFixed(2)}${range} ≤ ${t.limit}${straddles}`);
}

const notes = table.flatMap((r) =>
  (['cpp', 'rust', 'jsFigure'] as const).flatMap((s) => (r[s]?.notes ?? []).map((n) => `${s === 'jsFigure' ? 'js' : s} ${r.key}: ${n}`)),
);
writeFileSync(
  new URL('./results.json', import.meta.url),
  JSON.stringify(
    {
      node: process.version,
      cpu: `${cpus()[0]?.model ?? ''} × ${cpus().length}`,
      date: new Date().toISOString(),
      settings: { rounds, timeMs: time, warmupMs: warmup, quick },
      loadAverages: loads,
      rows: table.map(({ key, label, js, cpp, rust, jsFigure, mixed }) => ({ key, label, js, cpp, rust, plainJs: jsFigure, mixed })),
      core,
      targets,
      skipped: [...skipped.keys()],
      notes,
    },
    null,
    2,
  ),
);
console.log('\nwrote bench/results.json');

// ---- the scale chart: cost against N (log scale), each backend, beside plain JS where it has an equivalent ---------
{
  const SCALE_TAGS = [['10', 1], ['1k', 3], ['100k', 5]] as const;
  const line = (label: string, suite: Suite, key: (tag: string) => string, color: string, dash?: string): Series[] => {
    const points = SCALE_TAGS.flatMap(([tag, x]) => {
      const f = figure(suite, key(tag));
      return f ? [[x, f.ns] as const] : [];
    });
    if (points.length === 0) return [];
    const last = points[points.length - 1]![1];
    return [{ label, detail: `${ns(points[0]![1])} ns at 10, ${ns(last)} ns at 100,000`, color, ...(dash ? { dash } : {}), points }];
  };
  const both = (what: string, key: (tag: string) => string, cppColor: string, rustColor: string): Series[] => [
    ...line(`cpp: ${what}`, 'cpp', key, cppColor),
    ...line(`rust: ${what}`, 'rust', key, rustColor, '7 4'),
  ];
  const svg = renderChart({
    title: 'Cost against the work: each operation at N = 10, 1,000 and 100,000',
    subtitle: [
      'ns per operation (median of the rounds), N on a log scale: a flat line is a cost that does not grow with the work.',
      `node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, ${rounds} round(s); npm run bench`,
    ],
    xLabel: 'N (registrations on the dest, or other strings live)',
    xMax: 5,
    xFormat: (v) => (v === 0 ? '1' : (10 ** v).toLocaleString('en-US')),
    panels: [
      {
        title: 'cancel() among N registrations on one dest (draining it)',
        yLabel: 'ns per cancel',
        height: 200,
        series: [
          ...both('raw, oldest first', (t) => `cancel-raw-${t}-oldest`, COLORS.sky, COLORS.blue),
          ...both('raw, newest first', (t) => `cancel-raw-${t}-newest`, COLORS.purple, COLORS.purple),
          ...both('public, oldest first', (t) => `cancel-${t}-oldest`, COLORS.orange, COLORS.darkOrange),
          ...both('public, newest first', (t) => `cancel-${t}-newest`, COLORS.vermillion, COLORS.darkVermillion),
        ],
      },
      {
        title: 'send() to N handlers on one dest, per handler called',
        yLabel: 'ns per handler',
        height: 170,
        series: [
          ...both('send()', (t) => `send-per-handler-${t}`, COLORS.green, COLORS.green),
          ...line('plain JS: EventEmitter emit', 'js', (t) => `send-per-handler-${t}`, COLORS.grey),
        ],
      },
      {
        title: 'printAndReturn + free() 16 B with N other strings live',
        yLabel: 'ns per round trip',
        height: 170,
        series: both('round trip', (t) => `public-16-live-${t}`, COLORS.vermillion, COLORS.darkVermillion),
      },
    ],
  });
  // A quick run is a smoke test: its chart goes to the temp directory, so docs/ only ever shows a full run.
  const dir = quick ? mkdtempSync(join(tmpdir(), 'napi-ownership-scale-')) : fileURLToPath(new URL('../docs/', import.meta.url));
  writeFileSync(join(dir, 'scale.svg'), svg);
  console.log(`wrote ${join(dir, 'scale.svg')}`);
}
