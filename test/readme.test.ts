/** The README's example is code a user will paste: it must run and print what its comments say. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { scriptArgs } from './support/runtime.js';

const root = fileURLToPath(new URL('..', import.meta.url));

test('the README example runs and prints what it says', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const example = readme.split('## Example')[1]!.split('```ts')[1]!.split('```')[0]!;
  expect(example.split('\n').filter((l) => l.trim()).length).toBeLessThanOrEqual(12);
  const dir = mkdtempSync(join(tmpdir(), 'napi-ownership-readme-'));
  const file = join(dir, 'example.ts'); // a file, so tsx lowers `using` as it would for a user's project
  writeFileSync(file, example.replace("from 'napi-ownership'", `from ${JSON.stringify(join(root, 'src', 'index.ts'))}`));
  const child = spawnSync(process.execPath, scriptArgs(file), { cwd: root, encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  expect(child.stderr).toBe('');
  expect(child.stdout).toBe('Hello from TS 13 true\n13\ngot hello\n');
  expect(child.status).toBe(0);
});
