/**
 * Vitest setup file: every function of both raw addons is wrapped, for the whole run of each test file, so that any
 * error it throws with an `ERR_…` code is checked against the one error table (src/error-table.ts): the code must be
 * in it, be a code the addons throw, and come with the code's class. A violation fails the file in `afterAll`, whatever
 * test provoked it and whether or not that test looked at the code.
 *
 * The wrapper must not be re-entered by the tests' own hostility (patched builtins, setters on Object.prototype,
 * Proxies): it uses only functions captured here, before any test runs, and reads a thrown value only through
 * `Reflect.getOwnPropertyDescriptor` on a non-Proxy object (which runs no JS). Promises are passed through untouched:
 * adding a reaction would handle rejections the tests expect to be unhandled.
 */
import { afterAll, expect } from 'vitest';
import { types } from 'node:util';
import { backends } from '../../src/index.js';
import { errorRow } from '../../src/error-table.js';

const apply = Reflect.apply;
const ownDescriptor = Reflect.getOwnPropertyDescriptor;
const getPrototypeOf = Reflect.getPrototypeOf;
const isProxy = types.isProxy;
const push = Array.prototype.push;
const classes = new Map<object, string>([
  [Error.prototype, 'Error'],
  [TypeError.prototype, 'TypeError'],
  [RangeError.prototype, 'RangeError'],
  [AggregateError.prototype, 'AggregateError'],
]);

/** What the audit found: one line per violation. */
export const violations: string[] = [];

/** Checks one thrown value; `where` names the call. Exported for the test that proves the audit can fail. */
export function auditThrown(thrown: unknown, where: string): void {
  if ((typeof thrown !== 'object' && typeof thrown !== 'function') || thrown === null || isProxy(thrown)) return;
  const code = ownDescriptor(thrown, 'code');
  if (code === undefined || !('value' in code) || typeof code.value !== 'string' || !code.value.startsWith('ERR_')) return;
  const row = errorRow(code.value);
  const proto = getPrototypeOf(thrown);
  const kind = proto === null ? 'null-prototype object' : (classes.get(proto) ?? 'an unlisted class');
  if (row === undefined) {
    apply(push, violations, [`${where} threw ${code.value}, which is not in src/error-table.ts`]);
  } else if (row.thrownBy !== 'native') {
    apply(push, violations, [`${where} threw ${code.value}, which the table says only TypeScript throws`]);
  } else if (kind !== row.class) {
    apply(push, violations, [`${where} threw ${code.value} as ${kind}; the table says ${row.class}`]);
  }
}

for (const backend of backends) {
  let raw: Record<string, unknown>;
  try {
    raw = backend.raw as unknown as Record<string, unknown>;
  } catch {
    continue; // not built: the loader's own tests say so; nothing to audit
  }
  for (const name of Object.keys(raw)) {
    const fn = raw[name];
    if (typeof fn !== 'function') continue;
    const where = `${backend.name}.raw.${name}`;
    raw[name] = function audited(this: unknown, ...args: unknown[]): unknown {
      try {
        return apply(fn, this, args);
      } catch (error) {
        auditThrown(error, where);
        throw error;
      }
    };
  }
}

afterAll(() => {
  expect(violations, 'errors thrown by the addons that the one error table does not describe').toEqual([]);
});
