/**
 * NAPI_OWNERSHIP_TRACE=1 prints seed 003's address journey to stderr. Read in a child process, it also proves two
 * ownership facts: a Uint8Array reaches the core in place (same address), and JS receives exactly what the core
 * returned.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { scriptArgs } from './support/runtime.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function journey(backend: 'cpp' | 'rust', input: string): { stdout: string; steps: [string, bigint][] } {
  const dir = mkdtempSync(join(tmpdir(), 'napi-ownership-trace-'));
  const file = join(dir, 'journey.mts');
  const index = JSON.stringify(join(root, 'src', 'index.ts'));
  writeFileSync(file, `import { ${backend} } from ${index};\n${backend}.printAndReturn(${input}).free();\n`);
  const child = spawnSync(process.execPath, scriptArgs(file), {
    cwd: root,
    env: { ...process.env, NAPI_OWNERSHIP_TRACE: '1' },
    encoding: 'utf8',
  });
  rmSync(dir, { recursive: true, force: true });
  expect(child.status, child.stderr).toBe(0);
  const steps: [string, bigint][] = [];
  for (const line of child.stderr.split('\n')) {
    const m = /^\[napi-ownership (\w+)\] (.+?) address: (0x[0-9a-f]+)/i.exec(line);
    if (m && m[1] === backend) steps.push([m[2]!, BigInt(m[3]!)]);
  }
  return { stdout: child.stdout, steps };
}

describe.each(['cpp', 'rust'] as const)('%s: trace (seed 003 address journey)', (backend) => {
  const lang = backend === 'cpp' ? 'C++' : 'Rust';

  test('four addresses in order on stderr; JS receives what the core returned', () => {
    const { stdout, steps } = journey(backend, "'Hello from TS'");
    expect(stdout).toBe('');
    expect(steps.map(([what]) => what)).toEqual(['JS input', `${lang} received`, `${lang} returning`, 'JS received']);
    const at = new Map(steps);
    expect(at.get('JS received')).toBe(at.get(`${lang} returning`));
    expect(at.get(`${lang} returning`)).not.toBe(at.get(`${lang} received`));
  });

  test('a Uint8Array reaches the core in place: input address = received address', () => {
    const at = new Map(journey(backend, "new TextEncoder().encode('Hello from TS')").steps);
    expect(at.get(`${lang} received`)).toBe(at.get('JS input'));
  });
});
