/**
 * Vitest global setup: compile src/ to dist/ once before the run. Tests that start worker threads load dist/ (worker
 * threads do not get tsx's loader on Node 20), and the consumer test packs it: neither may see a stale build.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
