/**
 * `npm run gen:errors`: writes what is derived from the one error table (src/error-table.ts) — the C++ and Rust code
 * constants and the README's error table. `--check` writes nothing and exits 1 if any file differs from what it would
 * write (test/error-table.test.ts runs the same comparison).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_TABLE, type ErrorRow } from '../src/error-table.js';

const root = fileURLToPath(new URL('../', import.meta.url));

export const CPP_CODES = 'native-cpp/addon/src/error_codes.hpp';
export const RUST_CODES = 'native-rust/addon/src/error_codes.rs';
export const README = 'README.md';
const BEGIN = '<!-- errors:begin (generated from src/error-table.ts by `npm run gen:errors`) -->';
const END = '<!-- errors:end -->';

const native = (): readonly ErrorRow[] => ERROR_TABLE.filter((row) => row.thrownBy === 'native');

/** `ERR_INVALID_ARG_TYPE` → `kErrInvalidArgType`. */
export function cppName(code: string): string {
  return 'k' + code.toLowerCase().split('_').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

function cppCodes(): string {
  const lines = [
    '// Generated from src/error-table.ts by `npm run gen:errors`: do not edit. The one error table defines every code,',
    '// its class and its wording; test/error-table.test.ts checks this file against it.',
    '#pragma once',
    '',
    'namespace napi_ownership::errors {',
    '',
  ];
  for (const row of native()) {
    lines.push(`// ${row.class}: ${row.message}`);
    lines.push(`inline constexpr char ${cppName(row.code)}[] = "${row.code}";`);
  }
  lines.push('', '}  // namespace napi_ownership::errors', '');
  return lines.join('\n');
}

function rustCodes(): string {
  const lines = [
    '//! Generated from src/error-table.ts by `npm run gen:errors`: do not edit. The one error table defines every',
    '//! code, its class and its wording; test/error-table.test.ts checks this file against it.',
    '',
  ];
  for (const row of native()) {
    lines.push(`/// ${row.class}: ${row.message.replaceAll('<', '`<').replaceAll('>', '>`')}`);
    lines.push(`pub const ${row.code}: &str = "${row.code}";`);
  }
  lines.push('');
  return lines.join('\n');
}

function readmeTable(): string {
  const cell = (s: string): string => s.replaceAll('|', '\\|');
  return [
    BEGIN,
    '| code | class | message | when |',
    '| --- | --- | --- | --- |',
    ...ERROR_TABLE.map((row) => `| \`${row.code}\` | ${row.class} | \`${cell(row.message)}\` | ${cell(row.when)} |`),
    END,
  ].join('\n');
}

/** Each derived file and what it should hold now. */
export function expected(): { path: string; text: string }[] {
  const readme = readFileSync(join(root, README), 'utf8');
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin === -1 || end === -1 || end < begin) throw new Error(`${README}: no ${BEGIN} … ${END} section`);
  return [
    { path: CPP_CODES, text: cppCodes() },
    { path: RUST_CODES, text: rustCodes() },
    { path: README, text: readme.slice(0, begin) + readmeTable() + readme.slice(end + END.length) },
  ];
}

/** The derived files that differ from what the table says. */
export function stale(): string[] {
  return expected()
    .filter(({ path, text }) => {
      try {
        return readFileSync(join(root, path), 'utf8') !== text;
      } catch {
        return true;
      }
    })
    .map(({ path }) => path);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--check')) {
    const differ = stale();
    for (const path of differ) console.error(`${path} differs from src/error-table.ts: run \`npm run gen:errors\``);
    process.exit(differ.length === 0 ? 0 : 1);
  }
  for (const { path, text } of expected()) writeFileSync(join(root, path), text);
  console.log(`wrote ${CPP_CODES}, ${RUST_CODES} and the README's error table`);
}
