/**
 * `npm run bench:memory`: does memory stay flat? RSS and the ledger over time, for each way of letting go.
 *
 *   npm run bench:memory              1,000,000 string cycles and 2,000,000 subscription cycles per way and backend
 *   npm run bench:memory -- --quick   a tenth of that, for a smoke test (charts go to the temp directory, not docs/)
 *
 * Strings (1 KiB each): explicit free · fallback only (dropped; the FinalizationRegistry releases them after GC) ·
 * never released (kept; stops at 1 GiB RSS so the machine is safe). Subscriptions: handler + cancel · handler + drop
 * (the registry cancels them). Each (way × backend) runs in its own process (bench/memory-child.ts), so no run
 * inherits another's heap. Writes bench/memory-results.json, docs/memory.svg and docs/memory-subscriptions.svg.
 *
 * Targets (reported, not asserted): explicit free grows RSS by ≤ 10 MiB over 1M cycles; fallback only peaks at
 * ≤ 256 MiB RSS. Subscriptions dropped (handler + drop, the registry cancels them): peak RSS over the first million
 * ≤ 256 MiB, the second million adds ≤ 10 % to that peak, and a drop cycle costs ≤ 3× a cancel cycle.
 *
 * For scale, the FinalizationRegistry's floor, with no addon at all (bench/memory-child.ts, ways `floor` and
 * `floor-held`): what a plain JS object dropped and cleaned up by a registry costs on this runtime, with its closure
 * owned by the object or (as a registered callback is) held until the registry's callback runs. Any fallback built on
 * a FinalizationRegistry pays at least this per dropped subscription, so the report sets each drop cycle beside it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import type { Kind, RunResult } from './memory-child.js';
import { COLORS, renderChart, type Series } from './svg.js';

const quick = process.argv.includes('--quick');
const STRING_CYCLES = quick ? 100_000 : 1_000_000;
// Subscriptions: two million cycles, so the targets can compare the second million with the first.
const SUB_CYCLES = quick ? 200_000 : 2_000_000;
const root = fileURLToPath(new URL('..', import.meta.url));
const childFile = fileURLToPath(new URL('./memory-child.ts', import.meta.url));
const backends = ['cpp', 'rust'] as const;
const tmp = mkdtempSync(join(tmpdir(), 'napi-ownership-memory-'));

// Each child runs the package as its users load it: compiled JS from dist/, under plain node. Not through tsx: its
// loader thread alone adds ~32 MiB of RSS to every process (Node 20: 79 MiB against 47 MiB with both addons loaded),
// which is the bench's cost, not the library's, and would sit under every peak below.
const built = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (built.status !== 0) throw new Error('tsc -p tsconfig.build.json failed');
const childSource = readFileSync(childFile, 'utf8');
const SRC_IMPORT = "from '../src/index.js'";
if (!childSource.includes(SRC_IMPORT)) throw new Error(`bench/memory-child.ts no longer imports ${SRC_IMPORT}`);
const childJs = join(tmp, 'memory-child.mjs');
writeFileSync(
  childJs,
  ts.transpileModule(childSource.replace(SRC_IMPORT, `from '${pathToFileURL(join(root, 'dist', 'index.js')).href}'`), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText,
);

function run(kind: Kind, way: string, backend: (typeof backends)[number], cycles: number, every: number): RunResult {
  // The floor ways call no addon; the child is handed 'cpp' only to satisfy its usage line, and records 'js'.
  process.stderr.write(`\r${kind} ${way} ${backend}: ${cycles.toLocaleString('en-US')} cycles…                `);
  const out = join(tmp, `${kind}-${way}-${backend}.json`);
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', childJs, kind, way, backend, String(cycles), String(every), out],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NAPI_OWNERSHIP_TRACE: '' } },
  );
  if (child.status !== 0) throw new Error(`${kind} ${way} ${backend} failed (exit ${child.status ?? child.signal})`);
  return JSON.parse(readFileSync(out, 'utf8')) as RunResult;
}

const started = Date.now();
const runs: RunResult[] = [];
try {
  for (const backend of backends) {
    for (const way of ['explicit', 'fallback', 'leak']) runs.push(run('strings', way, backend, STRING_CYCLES, STRING_CYCLES / 200));
    for (const way of ['cancel', 'drop']) runs.push(run('subscriptions', way, backend, SUB_CYCLES, SUB_CYCLES / 200));
  }
  for (const way of ['floor', 'floor-held']) runs.push(run('subscriptions', way, 'cpp', SUB_CYCLES, SUB_CYCLES / 200));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
const seconds = (Date.now() - started) / 1000;
process.stderr.write(`\rmeasured ${runs.length} runs in ${seconds.toFixed(0)} s                                        \n\n`);

// ---- summarize ---------------------------------------------------------------------------------------------------
interface Summary {
  kind: Kind;
  way: string;
  backend: string;
  ran: number;
  startMiB: number;
  endMiB: number;
  peakMiB: number;
  growthMiB: number;
  peakLive: number;
  finalized: number;
  liveAfterGc: number;
  seconds: number;
  stoppedAtCap: boolean;
}
const summarize = (r: RunResult): Summary => {
  const s = r.samples;
  const startMiB = s[0]!.rssMiB;
  const endMiB = s[s.length - 1]!.rssMiB;
  return {
    kind: r.kind,
    way: r.way,
    backend: r.backend,
    ran: r.ran,
    startMiB,
    endMiB,
    peakMiB: Math.max(...s.map((x) => x.rssMiB)),
    growthMiB: endMiB - startMiB,
    peakLive: Math.max(...s.map((x) => x.live)),
    finalized: r.after.finalized,
    liveAfterGc: r.after.live,
    seconds: s[s.length - 1]!.ms / 1000,
    stoppedAtCap: r.stoppedAtCap,
  };
};
const summaries = runs.map(summarize);
const find = (kind: Kind, way: string, backend: string) => summaries.find((s) => s.kind === kind && s.way === way && s.backend === backend)!;

const mib = (v: number) => `${v.toFixed(1)} MiB`;
const count = (n: number) => n.toLocaleString('en-US');
const WAY_NAMES: Record<string, string> = {
  explicit: 'explicit free',
  fallback: 'fallback only',
  leak: 'never released',
  cancel: 'handler + cancel',
  drop: 'handler + drop',
  floor: 'registry floor (plain JS, no addon)',
  'floor-held': 'registry floor, callback held until cleanup',
};
console.log(`napi-ownership bench:memory: node ${process.version}, ${cpus()[0]?.model ?? ''} × ${cpus().length}\n`);
const header = ['run', 'cycles', 'RSS start', 'end', 'peak', 'growth', 'peak live', 'finalized', 'time'];
const rows = summaries.map((s) => [
  s.backend === 'js' ? `js: ${WAY_NAMES[s.way]}` : `${s.backend} ${s.kind === 'strings' ? 'strings' : 'subs'}: ${WAY_NAMES[s.way]}`,
  count(s.ran) + (s.stoppedAtCap ? ' (cap)' : ''),
  mib(s.startMiB),
  mib(s.endMiB),
  mib(s.peakMiB),
  `${s.growthMiB >= 0 ? '+' : ''}${mib(s.growthMiB)}`,
  count(s.peakLive),
  count(s.finalized),
  `${s.seconds.toFixed(1)} s`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log('\n"peak live": the most strings (or registrations) the ledger held live at any sample; "finalized": released');
console.log('by the FinalizationRegistry by the end (after a bounded gc-and-yield loop).');

const targets = backends.flatMap((b) => {
  const explicit = find('strings', 'explicit', b);
  const fallback = find('strings', 'fallback', b);
  return [
    { what: `${b}: explicit free, RSS growth over ${count(explicit.ran)} cycles`, value: explicit.growthMiB, limit: 10 },
    { what: `${b}: fallback only, peak RSS`, value: fallback.peakMiB, limit: 256 },
  ].map((t) => ({ ...t, met: t.value <= t.limit, unit: 'MiB' }));
});
// Dropped subscriptions, against the first half of the run and against cancelling.
for (const b of backends) {
  const drop = runs.find((r) => r.kind === 'subscriptions' && r.way === 'drop' && r.backend === b)!;
  const cancel = find('subscriptions', 'cancel', b);
  const half = drop.cycles / 2;
  const peak = (from: number, to: number) =>
    Math.max(...drop.samples.filter((x) => x.cycle > from && x.cycle <= to).map((x) => x.rssMiB));
  const first = peak(0, half);
  const second = peak(half, drop.cycles);
  const d = find('subscriptions', 'drop', b);
  targets.push(
    { what: `${b}: handler + drop, peak RSS over the first ${count(half)} cycles`, value: first, limit: 256, met: first <= 256, unit: 'MiB' },
    {
      what: `${b}: handler + drop, the second ${count(half)} over the first (peak RSS)`,
      value: second / first,
      limit: 1.1,
      met: second / first <= 1.1,
      unit: '×',
    },
    {
      what: `${b}: a handler + drop cycle over a handler + cancel cycle (time)`,
      value: d.seconds / d.ran / (cancel.seconds / cancel.ran),
      limit: 3,
      met: d.seconds / d.ran <= 3 * (cancel.seconds / cancel.ran),
      unit: '×',
    },
  );
}
// What the runtime itself charges for a dropped object cleaned up by a FinalizationRegistry: no target, the scale the
// drop-cycle target sits on.
const perCycleSeconds = (s: Summary) => s.seconds / s.ran;
const floor = find('subscriptions', 'floor', 'js');
const floorHeld = find('subscriptions', 'floor-held', 'js');
const context = backends.flatMap((b) => {
  const cancel = perCycleSeconds(find('subscriptions', 'cancel', b));
  const drop = perCycleSeconds(find('subscriptions', 'drop', b));
  return [
    { what: `${b}: the registry floor (plain JS) over a ${b} handler + cancel cycle`, value: perCycleSeconds(floor) / cancel },
    { what: `${b}: the floor with the callback held, over a ${b} handler + cancel cycle`, value: perCycleSeconds(floorHeld) / cancel },
    { what: `${b}: a handler + drop cycle over the floor with the callback held`, value: drop / perCycleSeconds(floorHeld) },
  ];
});
console.log(`\nthe FinalizationRegistry's floor: ${(perCycleSeconds(floor) * 1e6).toFixed(2)} µs a dropped plain object, ${(perCycleSeconds(floorHeld) * 1e6).toFixed(2)} µs with its callback held until cleanup`);
for (const c of context) console.log(`  ${c.what}: ${c.value.toFixed(2)}×`);
console.log('\ntargets (reported, not asserted):');
for (const t of targets) {
  const value = t.unit === 'MiB' ? mib(t.value) : `${t.value.toFixed(2)}×`;
  console.log(`  ${t.met ? 'met ' : 'MISS'}  ${t.what}: ${value} (≤ ${t.limit}${t.unit === 'MiB' ? ' MiB' : '×'})`);
}
for (const b of backends) {
  const f = find('strings', 'fallback', b);
  const d = find('subscriptions', 'drop', b);
  if (f.liveAfterGc !== 0) console.log(`  NOTE  ${b}: ${f.liveAfterGc} strings still live after the fallback run's gc loop`);
  if (d.liveAfterGc !== 0) console.log(`  NOTE  ${b}: ${d.liveAfterGc} registrations still live after the drop run's gc loop`);
}

writeFileSync(
  new URL(quick ? './memory-results.quick.json' : './memory-results.json', import.meta.url),
  JSON.stringify({ node: process.version, cpu: `${cpus()[0]?.model ?? ''} × ${cpus().length}`, date: new Date().toISOString(), quick, summaries, targets, context, runs }, null, 1),
);
console.log(`\nwrote bench/memory-results${quick ? '.quick' : ''}.json`);

// ---- draw --------------------------------------------------------------------------------------------------------
// Colour says the way; rust is a darker shade of it, dashed, so the two backends part even where the lines cross.
const STYLE: Record<string, { cpp: string; rust: string }> = {
  explicit: { cpp: COLORS.blue, rust: COLORS.darkBlue },
  fallback: { cpp: COLORS.orange, rust: COLORS.darkOrange },
  leak: { cpp: COLORS.vermillion, rust: COLORS.darkVermillion },
  cancel: { cpp: COLORS.blue, rust: COLORS.darkBlue },
  drop: { cpp: COLORS.orange, rust: COLORS.darkOrange },
};
const DASH: Record<string, string | undefined> = { cpp: undefined, rust: '7 4' };
const kilo = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v));
const machine = `node ${process.version} · ${cpus().length} cores · ${Math.round(totalmem() / 2 ** 30)} GiB · each line its own process`;

function series(kind: Kind, way: string, y: 'rssMiB' | 'live', detail: (s: Summary) => string, endNote?: (s: Summary) => string | undefined): Series[] {
  return backends.map((b) => {
    const r = runs.find((x) => x.kind === kind && x.way === way && x.backend === b)!;
    const s = find(kind, way, b);
    const note = endNote?.(s);
    return {
      label: `${b} · ${WAY_NAMES[way]}`,
      detail: detail(s),
      color: STYLE[way]![b],
      ...(DASH[b] ? { dash: DASH[b] } : {}),
      points: r.samples.map((p) => [p.cycle, p[y]] as const),
      ...(note ? { endNote: note } : {}),
    };
  });
}

const perCycle = (s: Summary) => {
  const us = (s.seconds * 1e6) / s.ran;
  return us < 10 ? `${us.toFixed(2)} µs` : `${us.toFixed(0)} µs`;
};
const explicitStart = Math.max(...backends.map((b) => find('strings', 'explicit', b).startMiB));
const strings = renderChart({
  title: 'Native strings: RSS over 1 KiB string cycles',
  subtitle: [
    `${count(STRING_CYCLES)} cycles of printAndReturn(1 KiB) per way and backend; RSS and the ledger sampled every ${count(STRING_CYCLES / 200)} cycles.`,
    'Fallback only: each drop in live strings is a garbage collection after which the FinalizationRegistry released them.',
    machine,
  ],
  xLabel: 'cycles (strings made)',
  xMax: STRING_CYCLES,
  xFormat: kilo,
  panels: [
    {
      title: 'RSS, all three ways',
      yLabel: 'RSS (MiB)',
      height: 250,
      yMax: 1100,
      yStep: 256,
      refLines: [{ y: 1024, label: 'cap: the never-released run stops at 1 GiB', color: COLORS.grey }],
      series: [
        ...series('strings', 'explicit', 'rssMiB', (s) => `${s.growthMiB <= 10 ? 'flat' : 'grows'}: ${s.growthMiB >= 0 ? '+' : ''}${mib(s.growthMiB)} over the run`),
        ...series('strings', 'fallback', 'rssMiB', (s) => `${s.peakMiB <= 256 ? 'bounded' : 'over target'}: peak ${mib(s.peakMiB)}`),
        ...series(
          'strings',
          'leak',
          'rssMiB',
          (s) => (s.stoppedAtCap ? `stopped at the cap after ${count(s.ran)}` : `${count(s.ran)} kept, peak ${mib(s.peakMiB)}`),
          (s) => (s.stoppedAtCap && s.backend === 'cpp' ? `cap: ${kilo(Math.round(s.ran / 1000) * 1000)} kept` : undefined),
        ),
      ],
    },
    {
      title: 'RSS, zoomed in: explicit free vs fallback only',
      yLabel: 'RSS (MiB)',
      height: 210,
      yMax: 280,
      yStep: 64,
      refLines: [
        { y: 256, label: 'target for the fallback: peak ≤ 256 MiB', color: COLORS.orange },
        { y: explicitStart + 10, label: 'target for explicit free: ≤ 10 MiB growth', color: COLORS.blue },
      ],
      series: [
        ...series('strings', 'explicit', 'rssMiB', (s) => `start ${mib(s.startMiB)}, end ${mib(s.endMiB)}`),
        ...series('strings', 'fallback', 'rssMiB', (s) => `peak ${mib(s.peakMiB)}, end ${mib(s.endMiB)}`),
      ],
    },
    {
      title: 'Live native strings (the ledger): what is allocated and not yet released',
      yLabel: 'live strings',
      height: 170,
      yFormat: kilo,
      series: [
        ...series('strings', 'explicit', 'live', (s) => `at most ${count(s.peakLive)} live`),
        ...series('strings', 'fallback', 'live', (s) => `at most ${count(s.peakLive)}; ${count(s.finalized)} finalized`),
      ],
    },
  ],
});
// A quick run is a smoke test: its charts go to the temp directory, so docs/ only ever shows a full run.
const chartDir = quick ? mkdtempSync(join(tmpdir(), 'napi-ownership-charts-')) : join(root, 'docs');
writeFileSync(join(chartDir, 'memory.svg'), strings);

const subs = renderChart({
  title: 'Subscriptions: RSS over handler() cycles',
  subtitle: [
    `${count(SUB_CYCLES)} cycles of handler(dest, fresh closure) per way and backend, then cancel() or drop it; sampled every ${count(SUB_CYCLES / 200)} cycles.`,
    'Drop: the FinalizationRegistry cancels a dropped Subscription only after a full collection; each fall is one.',
    `The registry's own floor, no addon: ${(perCycleSeconds(floor) * 1e6).toFixed(2)} µs a dropped plain object, ${(perCycleSeconds(floorHeld) * 1e6).toFixed(2)} µs with its callback held until cleanup.`,
    machine,
  ],
  xLabel: 'cycles (registrations made)',
  xMax: SUB_CYCLES,
  xFormat: kilo,
  panels: [
    {
      title: 'RSS',
      yLabel: 'RSS (MiB)',
      height: 250,
      series: [
        ...series('subscriptions', 'cancel', 'rssMiB', (s) => `${s.growthMiB >= 0 ? '+' : ''}${mib(s.growthMiB)}; ${perCycle(s)} a cycle`),
        ...series('subscriptions', 'drop', 'rssMiB', (s) => `peak ${mib(s.peakMiB)}; ${perCycle(s)} a cycle`),
      ],
    },
    {
      title: 'Live registrations (the ledger): held by the dispatcher, callbacks kept alive',
      yLabel: 'live registrations',
      height: 190,
      yFormat: kilo,
      series: [
        ...series('subscriptions', 'cancel', 'live', (s) => `at most ${count(s.peakLive)} live`),
        ...series('subscriptions', 'drop', 'live', (s) => `at most ${count(s.peakLive)}; ${count(s.finalized)} finalized`),
      ],
    },
  ],
});
writeFileSync(join(chartDir, 'memory-subscriptions.svg'), subs);
console.log(`wrote ${join(chartDir, 'memory.svg')} and ${join(chartDir, 'memory-subscriptions.svg')}`);
