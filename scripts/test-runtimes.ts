/**
 * `npm run test:runtimes [-- NAME...]`: the whole test suite (every contract suite over both backends, the fallback,
 * environments and teardown, and the packed-tarball consumer test) under each runtime users run, fetched by
 * scripts/runtimes.ts: Node 22, 24 and 26 and Deno run vitest itself; Bun runs the same files with `bun test` (its
 * runner takes vitest's API), each file in its own process as vitest's forks pool does. The machine's own node runs
 * them in `npm test`.
 *
 * Then scripts/runtime-probe.mjs measures, under each, where the runtime runs our views' finalizers (off the JS thread
 * on Deno; never on Node, where that fails the run). Prints a table runtime × backend (passed / failed / skipped)
 * and writes it to build/runtimes/results.json; exits non-zero if any test failed or a runner did not finish.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot } from '../src/native/load.js';
import { ensureRuntime, RUNTIMES, runtime, versionOf, type Runtime } from './runtimes.js';

type Status = 'passed' | 'failed' | 'skipped';
interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}
interface Result {
  runtime: string;
  label: string;
  version: string;
  seconds: number;
  /** By backend ('cpp', 'rust'), and 'both' for tests that are not one backend's (consumer, environments). */
  counts: Record<string, Counts>;
  failures: string[];
  /** The runner itself failed (crashed, timed out) beyond the failures it reported. */
  runnerError?: string | undefined;
  /** scripts/runtime-probe.mjs: of 64 dropped views per backend, how many were released and finalized off-thread. */
  probe?: Record<string, { views: number; released: number; offThread: number }> | undefined;
}

const outDir = join(packageRoot, 'build', 'runtimes');
const testFiles = readdirSync(join(packageRoot, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
  .map((f) => join('test', f));

/** 'cpp' / 'rust' from a test's full name ("cpp: strings > …", "'rust': views …"), else 'both'. */
function backendOf(fullName: string): string {
  return /^'?(cpp|rust)'?[: ]/.exec(fullName)?.[1] ?? 'both';
}

function tally(result: Result, fullName: string, status: Status): void {
  const counts = (result.counts[backendOf(fullName)] ??= { passed: 0, failed: 0, skipped: 0 });
  counts[status]++;
  if (status === 'failed') result.failures.push(fullName);
}

const TIMEOUT_MS = 20 * 60_000;

function runVitest(rt: Runtime, bin: string, result: Result): void {
  const json = join(outDir, `${rt.name}.vitest.json`);
  rmSync(json, { force: true });
  const vitest = join(packageRoot, 'node_modules', 'vitest', 'vitest.mjs');
  const args = rt.kind === 'deno' ? ['run', '-A', vitest] : [vitest];
  const r = spawnSync(bin, [...args, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`], {
    cwd: packageRoot,
    stdio: 'inherit',
    timeout: TIMEOUT_MS,
    // Children the tests spawn (npm for the consumer test, scripts) find this runtime's node first.
    env: { ...process.env, PATH: rt.kind === 'node' ? `${dirname(bin)}:${process.env.PATH}` : process.env.PATH },
  });
  try {
    const report = JSON.parse(readFileSync(json, 'utf8')) as {
      testResults: { assertionResults: { fullName: string; status: string }[]; status: string; message?: string; name: string }[];
    };
    for (const file of report.testResults) {
      for (const t of file.assertionResults) {
        tally(result, t.fullName, t.status === 'passed' ? 'passed' : t.status === 'failed' ? 'failed' : 'skipped');
      }
      if (file.status === 'failed' && file.assertionResults.every((t) => t.status !== 'failed')) {
        result.failures.push(`${file.name}: ${file.message ?? 'the file failed outside its tests'}`);
      }
    }
  } catch (error) {
    result.runnerError = `no vitest report (${(error as Error).message})`;
  }
  if (r.status !== 0 && !result.runnerError && result.failures.length === 0) {
    result.runnerError = `vitest exited with ${r.status ?? r.signal}`;
  }
}

function runBun(bin: string, result: Result): void {
  for (const file of testFiles) {
    const r = spawnSync(bin, ['test', file], { cwd: packageRoot, encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 1 << 26 });
    const output = `${r.stdout}${r.stderr}`;
    process.stdout.write(`bun test ${file}: exit ${r.status ?? r.signal}\n`);
    let seen = 0;
    for (const line of output.split('\n')) {
      // bun repeats the failed and skipped tests under "N tests failed:" / "N tests skipped:": count them once.
      if (/^\s*\d+ tests? (failed|skipped|todo)/.test(line)) break;
      const m = /^\((pass|fail|skip|todo)\) (.*?)(?: \[[\d.]+m?s\])?$/.exec(line.trim());
      if (!m) continue;
      seen++;
      tally(result, m[2]!, m[1] === 'pass' ? 'passed' : m[1] === 'fail' ? 'failed' : 'skipped');
    }
    if (r.status !== 0 && !output.split('\n').some((l) => l.startsWith('(fail)'))) {
      result.failures.push(`${file}: bun test exited with ${r.status ?? r.signal} (${seen} tests reported)`);
      process.stdout.write(output.split('\n').slice(-30).join('\n'));
    }
  }
}

/** Where the runtime runs our views' finalizers. Node's contract is the JS thread: any other count fails there. */
function runProbe(rt: Runtime, bin: string, result: Result): void {
  const probe = join(packageRoot, 'scripts', 'runtime-probe.mjs');
  const args = rt.kind === 'deno' ? ['run', '-A', '--v8-flags=--expose-gc', probe] : rt.kind === 'bun' ? [probe] : ['--expose-gc', probe];
  const r = spawnSync(bin, args, { cwd: packageRoot, encoding: 'utf8', timeout: 5 * 60_000 });
  try {
    result.probe = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result['probe'];
  } catch {
    result.failures.push(`runtime-probe: exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return;
  }
  for (const [backend, p] of Object.entries(result.probe!)) {
    if (p.released !== p.views) result.failures.push(`runtime-probe ${backend}: ${p.released} of ${p.views} views released`);
    if (rt.kind === 'node' && p.offThread !== 0) result.failures.push(`runtime-probe ${backend}: ${p.offThread} view finalizers off the JS thread on Node`);
  }
}

function sum(result: Result): Counts {
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const c of Object.values(result.counts)) for (const k of ['passed', 'failed', 'skipped'] as const) total[k] += c[k];
  return total;
}

function table(results: Result[]): string {
  const cell = (c: Counts | undefined) => (c ? `${c.passed} passed${c.failed ? `, ${c.failed} FAILED` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''}` : '-');
  const rows = results.map((r) => [
    `${r.label} (${r.version})`,
    cell(r.counts.cpp),
    cell(r.counts.rust),
    cell(r.counts.both),
    r.probe ? Object.values(r.probe).map((p) => `${p.offThread}/${p.views}`).join(' · ') : '-',
    `${r.seconds.toFixed(0)} s`,
    r.runnerError ? `RUNNER: ${r.runnerError}` : r.failures.length ? 'FAILED' : 'ok',
  ]);
  const header = ['runtime', 'cpp', 'rust', 'both / neither', 'views finalized off-thread (cpp · rust)', 'wall', 'verdict'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const names = process.argv.slice(2);
const chosen = names.length ? names.map(runtime) : [...RUNTIMES];
mkdirSync(outDir, { recursive: true });
// The suites import src/ directly; the workers and child scripts load dist/, which vitest's global setup rebuilds.
// bun test does not run that setup: build it here once for every runtime.
spawnSync(process.execPath, [join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
  cwd: packageRoot,
  stdio: 'inherit',
});

const results: Result[] = [];
for (const rt of chosen) {
  const bin = ensureRuntime(rt.name, (l) => process.stdout.write(`${l}\n`));
  const result: Result = { runtime: rt.name, label: rt.label, version: versionOf(bin), seconds: 0, counts: {}, failures: [] };
  process.stdout.write(`\ntest:runtimes: ── ${rt.label}: ${result.version} (${bin}) ──\n`);
  const started = Date.now();
  if (rt.kind === 'bun') runBun(bin, result);
  else runVitest(rt, bin, result);
  runProbe(rt, bin, result);
  result.seconds = (Date.now() - started) / 1000;
  results.push(result);
  process.stdout.write(`test:runtimes: ── ${rt.label}: ${JSON.stringify(sum(result))} in ${result.seconds.toFixed(0)} s ──\n`);
}

process.stdout.write(`\n${table(results)}\n`);
for (const r of results) {
  for (const f of r.failures) process.stdout.write(`  ${r.runtime}: FAILED ${f}\n`);
  if (r.runnerError) process.stdout.write(`  ${r.runtime}: ${r.runnerError}\n`);
}
writeFileSync(join(outDir, 'results.json'), JSON.stringify({ results }, null, 2));
const ok = results.every((r) => !r.runnerError && r.failures.length === 0 && sum(r).passed > 0);
process.stdout.write(`\ntest:runtimes: ${ok ? 'every runtime passed' : 'FAILED'}\n`);
process.exitCode = ok ? 0 : 1;
