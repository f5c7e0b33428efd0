/** What the contract suites share: catching what a call throws, and the other backend of a pair. */
import { backends, type Backend } from '../../src/index.js';

export type Thrown = Error & { code?: string; errors?: unknown[] };

/** The value `fn` throws; fails the test if it returns. */
export function thrown(fn: () => unknown): Thrown {
  try {
    fn();
  } catch (error) {
    return error as Thrown;
  }
  throw new Error('expected a throw');
}

/** Class name, code and message of what `fn` throws: one value to compare across backends. */
export function codeOf(fn: () => unknown): { kind: string; code: string | undefined; message: string } {
  const e = thrown(fn);
  return { kind: e.constructor.name, code: e.code, message: e.message };
}

export const other = (b: Backend): Backend => backends.find((x) => x !== b)!;
