/**
 * One leak-test scenario in this process: `node --expose-gc scenario-main.js <scenario> <cpp|rust>`.
 * Prints one JSON line (the ledger before and after) and exits 0, or exits 2 with the reason if the scenario failed or
 * its ledger did not return to baseline. Collects garbage before exit, so node's own objects are not reported.
 */
import { cpp, rust } from '../index.js';
import { gcUntil, liveOf, scenarios } from './scenarios.js';

const [name, backendName] = process.argv.slice(2);
const scenario = scenarios.find((s) => s.name === name);
const backend = backendName === 'cpp' ? cpp : backendName === 'rust' ? rust : undefined;
if (!scenario || !backend) {
  process.stderr.write(`usage: scenario-main <${scenarios.map((s) => s.name).join('|')}> <cpp|rust>\n`);
  process.exit(64);
}

const before = liveOf(backend.stats());
let failure: string | undefined;
try {
  await scenario.run(backend);
  if (scenario.balanced !== false) {
    // Whatever the scenario dropped is the fallback's to release: give it a bounded chance, then compare.
    const balanced = () => JSON.stringify(liveOf(backend.stats())) === JSON.stringify(before);
    await gcUntil('the ledger to return to baseline', balanced, 20).catch(() => {});
    const after = liveOf(backend.stats());
    if (JSON.stringify(after) !== JSON.stringify(before)) {
      failure = `ledger not back to baseline: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`;
    }
  }
} catch (error) {
  failure = `scenario failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`;
}
for (let i = 0; i < 3; i++) await gcUntil('a collection', () => true);
process.stdout.write(`${JSON.stringify({ scenario: scenario.name, backend: backend.name, before, after: liveOf(backend.stats()), failure })}\n`);
process.exitCode = failure ? 2 : 0;
