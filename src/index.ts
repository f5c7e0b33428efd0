/**
 * napi-ownership: two native backends with one API, and a rule for every byte that crosses.
 *
 *   import { rust, cpp } from 'napi-ownership';
 *   using s = rust.printAndReturn('Hello from TS');   // owned by Rust until the block ends
 *   console.log(s.toString(), s.address, s.byteLength);
 */
import { Backend } from './backend.js';
import { loadCppAddon } from './native/cpp.js';
import { loadRustAddon } from './native/rust.js';

export { Backend, type BackendName, type HandlerOptions, type ProduceOptions, type Stats } from './backend.js';
export { NativeString } from './native-string.js';
export { Producer } from './producer.js';
export { Subscription } from './subscription.js';
export type { CodedError, ErrorCode } from './errors.js';
export type { Handle, HandlerLedger, MemoryLedger, PostLedger, ProducerLedger, RawAddon, RawStats, StringLedger } from './native/raw.js';

/** The C++ backend: node-addon-api over the C++ core (`new[]`/`delete[]`). */
export const cpp: Backend = new Backend('cpp', loadCppAddon);
/** The Rust backend: napi-rs over the Rust core (`CString::into_raw`/`from_raw`). */
export const rust: Backend = new Backend('rust', loadRustAddon);
/** Both backends, for code (and tests) that should hold for each. */
export const backends: readonly [Backend, Backend] = [cpp, rust];
