/**
 * `npm run test:leak:self`: proves the leak-test suite can fail. Builds each seeded-bug ("mutant") variant — never
 * shipped, off by default — runs the scenario that should catch it under valgrind, and checks the suite flags it,
 * attributed to the right scenario and stack. A mutant the suite misses is a failure of the suite.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/native/load.js';
import { leakTest, type RunResult, type Verdict } from '../src/leak-test/run.js';

const mutantsDir = join(packageRoot, 'build', 'mutants');
const triple = 'linux-x64-gnu';

interface Mutant {
  id: number;
  bug: string;
  backend: 'cpp' | 'rust';
  /** The leak scenario that must catch it, or, for a bug valgrind cannot see (memory that is freed, only too late),
   * the vitest test (file and name pattern) that must fail against the variant, for its backend. */
  scenario: string;
  vitest?: { file: string; test: string };
  /** Builds the variant; returns the environment that makes the scenario load it. */
  build(): { env: Record<string, string>; scenarioMain?: string };
  verdicts: Verdict[];
  /** What the reported stack (or failure) must show. */
  evidence: RegExp;
}

/** Runs one vitest test against a variant: did the variant's backend's test fail, with this evidence? */
function vitestCatches(m: Mutant, env: Record<string, string>): { caught: boolean; verdict: string } {
  const { file, test } = m.vitest!;
  const out = join(mutantsDir, `vitest-${m.id}.json`);
  rmSync(out, { force: true });
  const r = spawnSync(
    process.execPath,
    [join(packageRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run', file, '-t', test, '--reporter=json', `--outputFile=${out}`],
    { cwd: packageRoot, encoding: 'utf8', env: { ...process.env, ...env } },
  );
  let results: { assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[] = [];
  try {
    results = (JSON.parse(readFileSync(out, 'utf8')) as { testResults: typeof results }).testResults;
  } catch {
    return { caught: false, verdict: `vitest wrote no report (exit ${r.status}): ${r.stderr.slice(-400)}` };
  }
  const mine = results.flatMap((f) => f.assertionResults).filter((a) => new RegExp(`^'?${m.backend}'?: `).test(a.fullName)); // describe.each may quote the name
  const failed = mine.filter((a) => a.status === 'failed');
  const evidence = failed.flatMap((a) => [a.fullName, ...a.failureMessages]).join('\n');
  const caught = mine.length > 0 && failed.length > 0 && m.evidence.test(evidence);
  const names = failed.map((a) => a.fullName.replace(/^.*> /, '')).join('; ');
  return {
    caught,
    verdict: `${failed.length} ${m.backend} test(s) failed${names ? `: ${names}` : ''}${caught ? '' : `; evidence ${m.evidence} not found`}`,
  };
}

function sh(what: string, cmd: string, args: string[], env: Record<string, string> = {}): void {
  process.stdout.write(`  build: ${what}\n`);
  const r = spawnSync(cmd, args, { cwd: packageRoot, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${what} failed:\n${r.stdout}\n${r.stderr}`);
}

function findFile(dir: string, suffix: string): string {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) return join(entry.parentPath, entry.name);
  }
  throw new Error(`no *${suffix} under ${dir}`);
}

/** A debug build of the C++ addon with -DNAPI_OWNERSHIP_SEED_BUG=<bug>. */
function cppMutant(bug: string): { env: Record<string, string> } {
  const out = join(mutantsDir, `cpp-${bug}`, 'Debug');
  sh(`cpp addon with seeded bug ${bug}`, 'npx', ['cmake-js', 'compile', '-G', 'Ninja', '--debug', '--out', out, `--CDNAPI_OWNERSHIP_SEED_BUG=${bug}`]);
  return { env: { NAPI_OWNERSHIP_CPP_ADDON: findFile(out, 'napi_ownership_cpp.node') } };
}

/** A debug build of the Rust addon with cargo feature seed-bug-<bug>, in a target dir of its own. */
function rustMutant(bug: string): { env: Record<string, string> } {
  const out = join(mutantsDir, `rust-${bug}`);
  sh(`rust addon with seeded bug ${bug}`, 'npx', [
    'napi', 'build', '--platform', '--manifest-path', 'native-rust/addon/Cargo.toml', '--package-json-path', 'package.json',
    '--output-dir', out, '--no-js', '--features', `seed-bug-${bug}`, '--target-dir', join(mutantsDir, 'rust-target'),
  ]);
  return { env: { NAPI_OWNERSHIP_RUST_ADDON: join(out, `napi-ownership-rust.${triple}.node`) } };
}

/** A copy of the compiled package whose FinalizationRegistry callback never releases. */
function fallbackMutant(): { env: Record<string, string>; scenarioMain: string } {
  const root = join(mutantsDir, 'js-fallback-never-releases');
  rmSync(root, { recursive: true, force: true });
  cpSync(join(packageRoot, 'dist'), join(root, 'dist'), { recursive: true });
  cpSync(join(packageRoot, 'valgrind'), join(root, 'valgrind'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ type: 'module' }));
  const file = join(root, 'dist', 'fallback.js');
  const source = readFileSync(file, 'utf8');
  const release = '                release(handle);';
  if (source.split(release).length !== 2) throw new Error('fallback mutant: the release call to remove was not found exactly once');
  writeFileSync(file, source.replace(release, '                void release; // seeded bug 6: the fallback never releases'));
  process.stdout.write('  build: package copy whose FinalizationRegistry never releases\n');
  return {
    env: {
      NAPI_OWNERSHIP_CPP_ADDON: join(packageRoot, 'build', 'Release', 'napi_ownership_cpp.node'),
      NAPI_OWNERSHIP_RUST_ADDON: join(packageRoot, 'build', 'rust', `napi-ownership-rust.${triple}.node`),
    },
    scenarioMain: join(root, 'dist', 'leak-test', 'scenario-main.js'),
  };
}

const mutants: Mutant[] = [
  {
    id: 1,
    bug: "Rust cancel_ without seed 000's Box::from_raw rebuild",
    backend: 'rust',
    scenario: 'subs-cancelled',
    build: () => rustMutant('cancel-keeps-boxes'),
    verdicts: ['leak'],
    evidence: /handler_/,
  },
  {
    id: 2,
    bug: 'C++ free_string that does not free',
    backend: 'cpp',
    scenario: 'strings-freed',
    build: () => cppMutant('free_string_keeps'),
    verdicts: ['leak'],
    evidence: /cpp_print_and_return/,
  },
  {
    id: 3,
    bug: 'the JS callback reference not deleted on cancel',
    backend: 'rust',
    scenario: 'subs-cancelled',
    build: () => rustMutant('callback-ref-kept'),
    verdicts: ['leak'],
    evidence: /napi_create_reference/,
  },
  {
    id: 4,
    bug: 'a threadsafe-function item not freed at teardown',
    backend: 'cpp',
    scenario: 'exit-during-delivery',
    build: () => cppMutant('tsfn_item_leaked'),
    verdicts: ['leak'],
    evidence: /napi_ownership::/,
  },
  {
    id: 5,
    bug: 'a view that holds no share (release frees the bytes while views live)',
    backend: 'cpp',
    // fs.write takes the pointer, the threadpool writes after free(): memcheck sees the write read a block we freed.
    scenario: 'views-to-fs-write',
    build: () => cppMutant('view_holds_no_share'),
    verdicts: ['errors'],
    evidence: /cpp_free_string/,
  },
  {
    id: 6,
    bug: 'a FinalizationRegistry fallback that never releases',
    backend: 'rust',
    scenario: 'strings-finalized',
    build: fallbackMutant,
    verdicts: ['ledger'],
    evidence: /ledger not back to baseline/,
  },
  {
    id: 7,
    bug: 'a Rust view that holds no share (release frees the bytes while views live)',
    backend: 'rust',
    scenario: 'views-to-fs-write',
    build: () => rustMutant('view-holds-no-share'),
    verdicts: ['errors'],
    evidence: /napi_ownership_core::free_string/, // the core's free_string (in debug builds its closure frame)
  },
  {
    id: 8,
    bug: 'C++ native memory never reported to V8 (no napi_adjust_external_memory)',
    backend: 'cpp',
    // Nothing leaks (the fallback frees it all, eventually): what breaks is the bound, which only a test can see.
    scenario: 'bounded memory (vitest)',
    vitest: { file: 'test/fallback.test.ts', test: 'keeps memory bounded' },
    build: () => cppMutant('no_external_memory'),
    verdicts: [],
    evidence: /keeps memory bounded/,
  },
  {
    id: 9,
    bug: 'Rust native memory never reported to V8 (no napi_adjust_external_memory)',
    backend: 'rust',
    scenario: 'bounded memory (vitest)',
    vitest: { file: 'test/fallback.test.ts', test: 'keeps memory bounded' },
    build: () => rustMutant('no-external-memory'),
    verdicts: [],
    evidence: /keeps memory bounded/,
  },
  {
    id: 10,
    bug: "a Rust threadsafe-function item not freed when Node drains the queue with a NULL env (napi 3.16.1's ThreadsafeFunction's bug, which raw/tsfn.rs's call_js avoids)",
    backend: 'rust',
    scenario: 'exit-during-delivery',
    build: () => rustMutant('tsfn-item-leaked'),
    verdicts: ['leak'],
    evidence: /napi_ownership_rust::raw::tsfn::Marshal::enqueue/, // the item the queue held, never rebuilt
  },
];

mkdirSync(mutantsDir, { recursive: true });
// `leak-self-test.ts [--node PATH] [ID...]`: the mutants' scenarios run under that node (leak-test --node).
const { values: options, positionals } = parseArgs({ options: { node: { type: 'string' } }, allowPositionals: true });
const only = positionals.map(Number).filter(Boolean);
let nodeVersion = '';
let missed = 0;
for (const m of mutants.filter((x) => only.length === 0 || only.includes(x.id))) {
  const expectation = m.vitest ? `expect ${m.vitest.file} "${m.vitest.test}" to fail` : `expect ${m.verdicts.join('/')} in ${m.scenario}`;
  process.stdout.write(`\nmutant ${m.id}: ${m.bug} (${m.backend}, ${expectation})\n`);
  const { env, scenarioMain } = m.build();
  if (m.vitest) {
    const { caught, verdict } = vitestCatches(m, env);
    nodeVersion ||= process.version;
    process.stdout.write(`mutant ${m.id}: ${caught ? 'caught' : 'MISSED'} (${verdict})\n`);
    if (!caught) missed++;
    continue;
  }
  const { results, node } = await leakTest({
    backends: [m.backend], scenarios: [m.scenario], seeds: false, jobs: 1, env, scenarioMain, node: options.node,
  });
  nodeVersion = node;
  const r: RunResult = results[0]!;
  const evidence = [r.failure ?? '', ...r.findings.map((f) => `${f.what}\n${f.stack}`)].join('\n');
  const caught = m.verdicts.includes(r.verdict) && r.scenario === m.scenario && m.evidence.test(evidence);
  process.stdout.write(`mutant ${m.id}: ${caught ? 'caught' : 'MISSED'} (verdict ${r.verdict}; evidence ${m.evidence} ${m.evidence.test(evidence) ? 'found' : 'not found'})\n`);
  if (!caught) missed++;
}
const total = only.length || mutants.length;
process.stdout.write(`\nself-test: ${total - missed} passed, ${missed} failed (node ${nodeVersion})\n`);
process.exitCode = missed ? 1 : 0;

