/**
 * `napi-ownership leak-test`: every scenario, for each backend, in its own node process under valgrind memcheck;
 * then the seeds' own programs (without Node) when run from a checkout. A verdict per run, and one for the whole.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../native/load.js';
import { scenarios } from './scenarios.js';
import { parseMemcheck, stackSummary, type MemcheckReport } from './valgrind.js';

export interface LeakTestOptions {
  backends: ('cpp' | 'rust')[];
  /** Only scenarios whose name is in this list (all when empty). */
  scenarios: string[];
  json?: string | undefined;
  /** Also run the seeds' own programs (needs a checkout with cmake and cargo). */
  seeds: boolean;
  jobs: number;
  /** Extra environment for every node run (the self-test points the loader at seeded-bug builds). */
  env?: Record<string, string>;
  /** Another copy of scenario-main.js to run (the self-test's patched package). */
  scenarioMain?: string | undefined;
  /** The node binary every scenario process runs (default: the one running this, `process.execPath`). */
  node?: string | undefined;
  out?: NodeJS.WritableStream;
}

export type Verdict = 'clean' | 'leak' | 'errors' | 'ledger' | 'failed';

/** The node binary that runs the scenarios: `--node`, else `$NAPI_OWNERSHIP_LEAK_NODE`, else the running one. */
export function scenarioNode(node?: string): string {
  return node || process.env.NAPI_OWNERSHIP_LEAK_NODE || process.execPath;
}

/** `node --version` of `node` (`v24.22.3`), or an error naming the binary. */
export function nodeVersion(node: string): string {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0 || !/^v\d+\.\d+\.\d+/.test(r.stdout.trim())) {
    throw new Error(`${node} --version failed (${r.error?.message ?? `exit ${String(r.status ?? r.signal)}`}): not a node binary`);
  }
  return r.stdout.trim();
}

export interface RunResult {
  scenario: string;
  backend: string;
  seconds: number;
  verdict: Verdict;
  allocs: number;
  frees: number;
  ours: MemcheckReport['ours'];
  ourErrors: number;
  failure?: string | undefined;
  /** Our loss records and errors, with their stacks. */
  findings: { what: string; stack: string }[];
  /** Node's own (no frame of ours), after the suppressions: bytes by kind, errors, and the records themselves. */
  nodes: { lost: MemcheckReport['all']; errors: number; findings: { what: string; stack: string }[] };
}

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * Node's noise: valgrind/node.supp (every line), and valgrind/node-<major>.supp for what only one release line
 * shows (its own allocations at teardown, which moved between lines). Both name node's frames only.
 */
export function suppressionFiles(version: string): string[] {
  const major = /^v(\d+)\./.exec(version)?.[1];
  const files = [join(packageRoot, 'valgrind', 'node.supp')];
  const perLine = join(packageRoot, 'valgrind', `node-${major}.supp`);
  if (major && existsSync(perLine)) files.push(perLine);
  return files;
}

export function valgrindVersion(): string | undefined {
  const r = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function memcheckArgs(logDir: string, suppressions: string[]): string[] {
  return [
    '--tool=memcheck',
    '--leak-check=full',
    '--show-leak-kinds=definite,indirect,possible',
    '--errors-for-leak-kinds=definite,indirect',
    '--trace-children=yes',
    '--num-callers=24', // deep enough to reach our frames from malloc; each extra frame is paid on every allocation
    '--fullpath-after=',
    ...suppressions.map((file) => `--suppressions=${file}`),
    `--log-file=${join(logDir, 'vg.%p.log')}`,
  ];
}

interface Job {
  scenario: string;
  backend: string;
  command: string[];
  env: Record<string, string>;
  suppressions: string[];
  /** The seeds' programs free everything: valgrind must say "All heap blocks were freed -- no leaks are possible". */
  allFreed?: boolean;
}

function runJob(job: Job): Promise<RunResult> {
  const logDir = mkdtempSync(join(tmpdir(), 'napi-ownership-leak-'));
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('valgrind', [...memcheckArgs(logDir, job.suppressions), ...job.command], {
      env: { ...process.env, ...job.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code, signal) => {
      const logs = readdirSync(logDir).map((f) => readFileSync(join(logDir, f), 'utf8'));
      rmSync(logDir, { recursive: true, force: true });
      const report = parseMemcheck(logs);
      let failure: string | undefined;
      try {
        const line = stdout.trim().split('\n').pop() ?? '';
        failure = line.startsWith('{') ? (JSON.parse(line) as { failure?: string }).failure : undefined;
      } catch {
        /* not a scenario: a seed program */
      }
      const notAllFreed = job.allFreed === true && !report.allFreed;
      if (!failure && notAllFreed) failure = 'valgrind did not report "All heap blocks were freed -- no leaks are possible"';
      if (!failure && (code !== 0 || signal)) {
        const lines = (stderr.trim() || stdout.trim()).split('\n');
        const at = Math.max(0, lines.findIndex((l) => /Error|error:|panicked|Assertion/.test(l)));
        failure = `exited with ${signal ?? code}: ${lines.slice(at, at + 3).join(' | ')}`;
      }
      const oursLeaked = notAllFreed || report.ours.definitely + report.ours.indirectly + report.ours.possibly > 0;
      const verdict: Verdict = oursLeaked
        ? 'leak'
        : report.ourErrors > 0
          ? 'errors'
          : failure?.startsWith('ledger')
            ? 'ledger'
            : failure
              ? 'failed'
              : 'clean';
      const findings = [
        ...report.records
          .filter((r) => r.ours && r.kind !== 'reachable')
          .sort((a, b) => b.bytes - a.bytes)
          .map((r) => ({
          what: `${r.bytes} bytes in ${r.blocks} blocks ${r.kind} lost`,
          stack: stackSummary(r.frames),
        })),
        ...report.errors.filter((e) => e.ours).map((e) => ({ what: e.what, stack: stackSummary(e.frames) })),
      ];
      const lost = {
        definitely: report.all.definitely - report.ours.definitely,
        indirectly: report.all.indirectly - report.ours.indirectly,
        possibly: report.all.possibly - report.ours.possibly,
      };
      const nodes = {
        lost,
        errors: report.errors.length - report.ourErrors,
        findings: [
          ...report.records
            .filter((r) => !r.ours && r.kind !== 'reachable')
            .map((r) => ({ what: `${r.bytes} bytes in ${r.blocks} blocks ${r.kind} lost`, stack: r.frames.join('\n') })),
          ...report.errors.filter((e) => !e.ours).map((e) => ({ what: e.what, stack: e.frames.join('\n') })),
        ],
      };
      resolve({
        scenario: job.scenario,
        backend: job.backend,
        seconds: (Date.now() - started) / 1000,
        verdict,
        allocs: report.allocs,
        frees: report.frees,
        ours: report.ours,
        ourErrors: report.ourErrors,
        failure,
        findings,
        nodes,
      });
    });
  });
}

/** The seeds' programs, built from a checkout: seed 003's C++ main over the Rust core, seed 000's Rust program. */
function seedJobs(out: NodeJS.WritableStream): Job[] {
  const cmakeDir = join(packageRoot, 'build', 'core-tests');
  const manifest = join(packageRoot, 'native-rust', 'Cargo.toml');
  if (!existsSync(join(packageRoot, 'CMakeLists.txt')) || !existsSync(manifest)) {
    out.write('seeds: not a checkout (the seed programs are built from sources): skipped\n');
    return [];
  }
  const build = (what: string, cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: packageRoot, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building ${what} failed:\n${r.stdout}\n${r.stderr}`);
  };
  out.write('seeds: building seed 003 (C++ over the Rust core) and seed 000 (Rust over the C++ dispatcher)…\n');
  build('seed 003', 'cmake', ['-S', '.', '-B', cmakeDir, '-G', 'Ninja', '-DNAPI_OWNERSHIP_CORE_TESTS=ON']);
  build('seed 003', 'cmake', ['--build', cmakeDir, '--target', 'seed003_main']);
  build('seed 000', 'cargo', ['build', '--manifest-path', manifest, '-p', 'napi-ownership-dispatch', '--example', 'seed000']);
  const find = (dir: string, name: string): string => {
    for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (entry.isFile() && entry.name === name) return join(entry.parentPath, entry.name);
    }
    throw new Error(`${name} not found under ${dir}`);
  };
  return [
    { scenario: 'seed003-main', backend: 'native', command: [find(cmakeDir, 'seed003_main')], env: {}, suppressions: suppressionFiles(''), allFreed: true },
    {
      scenario: 'seed000-program',
      backend: 'native',
      command: [join(packageRoot, 'native-rust', 'target', 'debug', 'examples', 'seed000')],
      env: {},
      suppressions: suppressionFiles(''), // no node in these programs: node.supp only, as before
      allFreed: true,
    },
  ];
}

export async function leakTest(options: LeakTestOptions): Promise<{ ok: boolean; node: string; results: RunResult[] }> {
  const out = options.out ?? process.stdout;
  const chosen = scenarios.filter((s) => options.scenarios.length === 0 || options.scenarios.includes(s.name));
  const unknown = options.scenarios.filter((n) => !scenarios.some((s) => s.name === n) && !n.startsWith('seed'));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);

  const main = options.scenarioMain ?? join(here, existsSync(join(here, 'scenario-main.js')) ? 'scenario-main.js' : 'scenario-main.ts');
  const nodeArgs = main.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const node = scenarioNode(options.node);
  const version = nodeVersion(node);
  const suppressions = suppressionFiles(version);
  out.write(`leak-test: node ${version} (${node}); suppressions ${suppressions.map((f) => basename(f)).join(', ')}\n`);
  const jobs: Job[] = [];
  for (const s of chosen) {
    for (const backend of options.backends) {
      jobs.push({
        scenario: s.name,
        backend,
        command: [node, '--expose-gc', ...nodeArgs, main, s.name, backend],
        env: options.env ?? {},
        suppressions,
      });
    }
  }
  if (options.seeds) jobs.push(...seedJobs(out));

  const results: RunResult[] = new Array(jobs.length);
  let next = 0;
  let done = 0;
  const width = String(jobs.length).length;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      const job = jobs[index]!;
      const result = await runJob(job);
      results[index] = result;
      done++;
      out.write(
        `[${String(done).padStart(width)}/${jobs.length}] ${job.backend.padEnd(6)} ${job.scenario.padEnd(24)} ${result.verdict.padEnd(6)} ${result.seconds.toFixed(1)} s\n`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.jobs, jobs.length)) }, worker));

  out.write(`\n${formatTable(results)}\n`);
  for (const r of results.filter((x) => x.verdict !== 'clean')) {
    out.write(`\n${r.backend} ${r.scenario}: ${r.verdict.toUpperCase()}${r.failure ? `: ${r.failure}` : ''}\n`);
    for (const f of r.findings.slice(0, 5)) out.write(`  ${f.what}\n      ${f.stack}\n`);
  }
  const noisy = results.filter((r) => r.nodes.findings.length > 0);
  const sum = (f: (r: RunResult) => number) => results.reduce((a, r) => a + f(r), 0);
  out.write(
    `\nnode's own, after suppressions (not counted against us): ${sum((r) => r.nodes.lost.definitely)} B definitely, ` +
      `${sum((r) => r.nodes.lost.indirectly)} B indirectly, ${sum((r) => r.nodes.lost.possibly)} B possibly lost, ` +
      `${sum((r) => r.nodes.errors)} errors, in ${noisy.length} of ${results.length} runs${noisy.length ? ' (their stacks: --json)' : ''}\n`,
  );
  const ok = results.every((r) => r.verdict === 'clean');
  const clean = results.filter((r) => r.verdict === 'clean').length;
  out.write(`\nleak-test: ${clean} passed, ${results.length - clean} failed (node ${version})\n`);
  if (options.json) {
    mkdirSync(join(options.json, '..'), { recursive: true });
    writeFileSync(options.json, JSON.stringify({ node: version, nodePath: node, suppressions, valgrind: valgrindVersion(), ok, results }, null, 2));
  }
  return { ok, node: version, results };
}

function formatTable(results: RunResult[]): string {
  const header = ['scenario', 'backend', 'allocs', 'frees', 'definite B', 'indirect B', 'possible B', 'errors', 'verdict'];
  const rows = results.map((r) => [
    r.scenario,
    r.backend,
    r.allocs.toLocaleString('en-US'),
    r.frees.toLocaleString('en-US'),
    String(r.ours.definitely),
    String(r.ours.indirectly),
    String(r.ours.possibly),
    String(r.ourErrors),
    r.verdict === 'clean' ? 'clean' : r.verdict.toUpperCase(),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
