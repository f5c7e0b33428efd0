/**
 * The rows of `npm run bench`: one per operation, measured for each backend (and, where JS has an equivalent, in
 * plain JS). bench/suite.ts measures them; bench/run.ts joins the suites' results by `key` into one table.
 */

export type Suite = 'js' | 'cpp' | 'rust' | 'mixed';

export interface RowInfo {
  key: string;
  /** What the backend column measures. */
  label: string;
  /** What the plain-JS column measures, if JS has an equivalent. */
  js?: string;
}

export const ROWS: readonly RowInfo[] = [
  { key: 'call', label: 'noop native call (the floor)', js: 'a JS function call (V8 inlines it)' },
  { key: 'call-idiom', label: 'the same no-op in the library idiom (#[napi] fn / Napi::Addon InstanceMethod)' },
  { key: 'raw-16', label: 'raw print_and_return + free_string, 16 B' },
  { key: 'raw-16-idiom', label: 'the same round trip in the library idiom (typed arguments), 16 B' },
  { key: 'raw-1k', label: 'raw print_and_return + free_string, 1 KiB' },
  { key: 'raw-1k-idiom', label: 'the same round trip in the library idiom, 1 KiB' },
  { key: 'raw-16-u8', label: 'raw print_and_return(Uint8Array) + free_string, 16 B' },
  { key: 'raw-16-u8-idiom', label: 'the same with a Uint8Array in the library idiom, 16 B' },
  { key: 'public-16', label: 'printAndReturn + free(), 16 B', js: 'Buffer.from(s), 16 B (a GC-owned copy)' },
  { key: 'public-1k', label: 'printAndReturn + free(), 1 KiB', js: 'Buffer.from(s), 1 KiB' },
  { key: 'public-1m', label: 'printAndReturn + free(), 1 MiB', js: 'Buffer.from(s), 1 MiB' },
  { key: 'raw-16-job', label: 'raw round trip 16 B, one per job (await between)', js: 'await between (the job boundary alone)' },
  { key: 'public-16-job', label: 'printAndReturn + free() 16 B, one per job' },
  { key: 'job-queue-microtask', label: 'one job + queueMicrotask(f) (how the fallback arms)', js: 'await between + queueMicrotask(f)' },
  { key: 'job-then', label: 'one job + resolved.then(f) (the cheaper way)', js: 'await between + Promise.resolve().then(f)' },
  { key: 'public-16-armed', label: 'printAndReturn 16 B, free() in a later job (registered)', js: 'FinalizationRegistry register + unregister' },
  { key: 'fallback-16', label: 'printAndReturn 16 B, never freed (fallback only)', js: 'new object + FinalizationRegistry register, never unregistered' },
  { key: 'view-first-16', label: 'first view() of a 16 B string', js: 'new Uint8Array(arrayBuffer), 16 B' },
  { key: 'view-first-1m', label: 'first view() of a 1 MiB string', js: 'new Uint8Array(arrayBuffer), 1 MiB' },
  { key: 'view-floor-16', label: 'the floor: a bare external ArrayBuffer + Uint8Array, 16 B (raw noop_view)' },
  { key: 'view-floor-1m', label: 'the floor: a bare external ArrayBuffer + Uint8Array, 1 MiB (raw noop_view)' },
  { key: 'view-16', label: 'view() again, 16 B (the cached view)' },
  { key: 'view-1m', label: 'view() again, 1 MiB (the cached view)' },
  { key: 'tostring-16', label: 'toString(), 16 B (a JS copy)', js: 'TextDecoder.decode(Uint8Array), 16 B' },
  { key: 'tostring-1m', label: 'toString(), 1 MiB (a JS copy)', js: 'TextDecoder.decode(Uint8Array), 1 MiB' },
  { key: 'send-1-raw', label: 'raw send() to 1 handler' },
  { key: 'send-1', label: 'send() to 1 handler', js: 'EventEmitter emit, 1 listener' },
  { key: 'send-10', label: 'send() to 10 handlers', js: 'EventEmitter emit, 10 listeners' },
  { key: 'churn-raw', label: 'raw handler + cancel' },
  { key: 'churn', label: 'handler() + cancel()', js: 'EventEmitter on + off' },
  { key: 'cancel-raw-10-oldest', label: 'raw cancel among 10 on one dest, oldest first (draining it)' },
  { key: 'cancel-raw-10-newest', label: 'raw cancel among 10 on one dest, newest first (draining it)' },
  { key: 'cancel-raw-1k-oldest', label: 'raw cancel among 1,000 on one dest, oldest first (draining it)' },
  { key: 'cancel-raw-1k-newest', label: 'raw cancel among 1,000 on one dest, newest first (draining it)' },
  { key: 'cancel-raw-100k-oldest', label: 'raw cancel among 100,000 on one dest, oldest first (draining it)' },
  { key: 'cancel-raw-100k-newest', label: 'raw cancel among 100,000 on one dest, newest first (draining it)' },
  { key: 'cancel-10-oldest', label: 'public cancel() among 10 on one dest, oldest first (draining it)' },
  { key: 'cancel-10-newest', label: 'public cancel() among 10 on one dest, newest first (draining it)' },
  { key: 'cancel-1k-oldest', label: 'public cancel() among 1,000 on one dest, oldest first (draining it)' },
  { key: 'cancel-1k-newest', label: 'public cancel() among 1,000 on one dest, newest first (draining it)' },
  { key: 'cancel-100k-oldest', label: 'public cancel() among 100,000 on one dest, oldest first (draining it)' },
  { key: 'cancel-100k-newest', label: 'public cancel() among 100,000 on one dest, newest first (draining it)' },
  { key: 'public-16-live-10', label: 'printAndReturn + free() 16 B with 10 other strings live' },
  { key: 'public-16-live-1k', label: 'printAndReturn + free() 16 B with 1,000 other strings live' },
  { key: 'public-16-live-100k', label: 'printAndReturn + free() 16 B with 100,000 other strings live' },
  { key: 'send-per-handler-10', label: 'send() to 10 handlers on one dest, per handler called', js: 'EventEmitter emit to 10 listeners, per listener' },
  { key: 'send-per-handler-1k', label: 'send() to 1,000 handlers on one dest, per handler called', js: 'EventEmitter emit to 1,000 listeners, per listener' },
  { key: 'send-per-handler-100k', label: 'send() to 100,000 handlers on one dest, per handler called', js: 'EventEmitter emit to 100,000 listeners, per listener' },
  { key: 'post-1', label: 'post() to 1 handler, 256 in flight (per message)' },
  { key: 'produce-1', label: 'native producer thread to 1 handler (per message)' },
  { key: 'mixed-call', label: 'noop native call, one call site for both backends' },
  { key: 'mixed-public-16', label: 'printAndReturn + free() 16 B, both backends in turn' },
];

/** One task's figures, as a suite process reports them. Times in ns per operation. */
export interface Measured {
  key: string;
  suite: Suite;
  /** Operations per tinybench sample (the task runs the operation this many times per timed call). */
  batch: number;
  /** Mean per operation over every sample: the amortized cost, garbage collection included. */
  mean: number;
  /** Median sample, per operation. */
  p50: number;
  min: number;
  p99: number;
  /** tinybench's relative margin of error of the mean (95 %), in percent. */
  rme: number;
  samples: number;
  /** What the task left behind or checked (ledger deltas), for the record. */
  note?: string;
}

export interface SuiteResult {
  suite: Suite;
  node: string;
  rows: Measured[];
  /** Rows the suite could not measure, and why (for example, `post` not there yet). */
  skipped: { key: string; why: string }[];
}
