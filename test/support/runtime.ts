/**
 * Which runtime runs this test file (the suites run under Node, Bun and Deno: `npm run test:runtimes`), and how to run
 * a script in a child process of that same runtime, so a child test proves what it proves on the runtime under test.
 */
export type RuntimeName = 'node' | 'bun' | 'deno';

export const runtime: RuntimeName = 'Deno' in globalThis ? 'deno' : 'Bun' in globalThis ? 'bun' : 'node';

/**
 * Arguments (after `process.execPath`) that run `file`, TypeScript or JavaScript, with `gc()` exposed where asked:
 * Node through tsx's loader; Bun runs TypeScript itself (and collects with `Bun.gc`); Deno with `run -A`, resolving
 * the sources' `.js` specifiers to their `.ts` files (`--sloppy-imports`), as tsc and tsx do.
 */
export function scriptArgs(file: string, { gc = false }: { gc?: boolean } = {}): string[] {
  const ts = /\.[mc]?ts$/.test(file);
  switch (runtime) {
    case 'node':
      return [...(gc ? ['--expose-gc'] : []), ...(ts ? ['--import', 'tsx'] : []), file];
    case 'bun':
      return [file];
    case 'deno':
      return ['run', '-A', '--sloppy-imports', ...(gc ? ['--v8-flags=--expose-gc'] : []), file];
  }
}
