/**
 * `npm run demo`: seed 003's address journey for both backends, then the ownership rules in action.
 * Tracing is switched on before the package loads, so every print_and_return prints where its bytes live.
 */
process.env.NAPI_OWNERSHIP_TRACE = '1';
const { backends } = await import('../src/index.js');

const say = (line: string) => process.stderr.write(`${line}\n`);

for (const backend of backends) {
  say(`\n== ${backend.name}: a JS string in, a ${backend.name === 'cpp' ? 'C++' : 'Rust'}-owned copy out`);
  const s = backend.printAndReturn('Hello from TS');
  say(`   text: ${JSON.stringify(s.toString())}, ${s.byteLength} bytes at 0x${s.address.toString(16)}`);
  say(`   free(): ${s.free()}, again: ${s.free()} (the second call finds it already released)`);

  say(`\n== ${backend.name}: a Uint8Array is read in place (JS input address = native received address)`);
  {
    using t = backend.printAndReturn(new TextEncoder().encode('bytes, not copied on the way in'));
    const view = t.view();
    say(`   view(): ${view.byteLength} bytes over native memory; freed at the end of this block by \`using\``);
  }
  say(`   ledger: ${JSON.stringify(backend.stats().strings)}`);
}
