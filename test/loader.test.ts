/** The loader's one actionable error when a binary is missing or broken. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { loadAddon } from '../src/native/load.js';

test('a missing or broken binary → one ERR_NATIVE_ADDON_LOAD naming the backend, paths, the fix and the cause', () => {
  const dir = mkdtempSync(join(tmpdir(), 'napi-ownership-loader-'));
  const missing = join(dir, 'missing.node');
  const broken = join(dir, 'broken.node');
  writeFileSync(broken, 'not a shared object');
  let caught: (Error & { code?: string }) | undefined;
  try {
    loadAddon({ backend: 'rust', candidates: [missing, broken], howToBuild: '`npm run build:rust`' });
  } catch (error) {
    caught = error as Error & { code?: string };
  }
  expect(caught).toBeInstanceOf(Error);
  expect(caught!.code).toBe('ERR_NATIVE_ADDON_LOAD');
  expect(caught!.message).toContain('could not load the rust addon');
  expect(caught!.message).toContain(`${missing}: no such file`);
  expect(caught!.message).toContain(broken);
  expect(caught!.message).toContain('npm run build:rust');
  expect(caught!.message).toContain('npm run build');
  // The cause is the real dlopen failure of the file that existed, not the missing one.
  expect(caught!.cause).toBeInstanceOf(Error);
  expect(String((caught!.cause as Error).message)).toMatch(/invalid ELF header|file too short|not a valid/i);
});
