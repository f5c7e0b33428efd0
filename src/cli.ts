#!/usr/bin/env node
/**
 * napi-ownership's command line. `napi-ownership leak-test [options]`: the valgrind leak-test suite.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { leakTest, nodeVersion, scenarioNode, valgrindVersion } from './leak-test/run.js';

const usage = `usage: napi-ownership leak-test [--backend cpp|rust|all] [--scenario NAME]... [--json FILE] [--no-seeds] [--jobs N]

Runs every ownership scenario of both addons in its own node process under valgrind memcheck and reports, per
scenario and backend, what leaked or went wrong in napi-ownership's own code (node's own noise is not ours).
--node PATH runs every scenario process under that node binary (default: $NAPI_OWNERSHIP_LEAK_NODE, else the node
running this command); its version is in the report and the --json output, and valgrind/node-<major>.supp (node's own
noise on that release line) is passed if there is one.
Exit code 0 only if every run is clean.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'leak-test') {
    process.stderr.write(`${usage}\n`);
    return command === undefined || command === '--help' || command === '-h' ? 0 : 64;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      backend: { type: 'string', default: 'all' },
      scenario: { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
      'no-seeds': { type: 'boolean', default: false },
      jobs: { type: 'string', default: String(availableParallelism()) },
      node: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (!['cpp', 'rust', 'all'].includes(values.backend)) {
    process.stderr.write(`--backend must be cpp, rust or all, not ${values.backend}\n`);
    return 64;
  }
  if (!valgrindVersion()) {
    process.stderr.write(
      'napi-ownership leak-test needs valgrind, which was not found on PATH.\n' +
        'Install it: `apt-get install valgrind` (Debian/Ubuntu), `dnf install valgrind` (Fedora), then run again.\n',
    );
    return 69;
  }
  try {
    nodeVersion(scenarioNode(values.node));
  } catch (error) {
    process.stderr.write(`--node: ${(error as Error).message}\n`);
    return 64;
  }
  const backends = values.backend === 'all' ? (['cpp', 'rust'] as const) : ([values.backend] as ['cpp' | 'rust']);
  const seedsWanted = !values['no-seeds'] && (values.scenario.length === 0 || values.scenario.some((s) => s.startsWith('seed')));
  const { ok } = await leakTest({
    backends: [...backends],
    scenarios: values.scenario.filter((s) => !s.startsWith('seed')),
    json: values.json,
    seeds: seedsWanted,
    jobs: Math.max(1, Number(values.jobs) || 1),
    node: values.node,
  });
  return ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
