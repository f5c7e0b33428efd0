import { defineConfig } from 'vitest/config';

// `npm run test:gc-stress` (seed 004's GC.stress = true): a 1 MiB young generation, scavenges and marking forced at
// random points, and compaction on every full collection (node's release V8 ignores --gc-interval), so finalizers,
// references and moved objects are exercised all the time.
const gcStress = process.env.NAPI_OWNERSHIP_GC_STRESS === '1' ? ['--stress-compaction', '--stress-marking=100', '--stress-scavenge=100', '--max-semi-space-size=1'] : [];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['./test/support/build-dist.ts'],
    // Every error the addons throw is checked against the one error table (src/error-table.ts).
    setupFiles: ['./test/support/error-audit.ts'],
    // Each test file in its own child process with gc() exposed: GC-dependent tests call it in bounded loops.
    pool: 'forks',
    execArgv: ['--expose-gc', ...gcStress],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/support/closing-line-reporter.ts'],
  },
});
