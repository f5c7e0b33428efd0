/**
 * The model behind test/model.test.ts (issue 9, "The proof"): a plain model of one backend's ledger and of every
 * value a user can hold, the commands fast-check draws at random, and the check that runs after each of them.
 *
 * The model is the part that knows the answer without native code: what `toString()` and `view()` must give, what
 * `free()` and `cancel()` must return, how many callbacks `send` and `post` must run, and where every counter of
 * `backend.stats()` must stand. The real side holds the objects themselves (wrappers, views, callbacks' logs).
 *
 * What the fallback makes uncertain is pinned down, never guessed: a dropped string or subscription is released
 * whenever V8 gets to it, so before every check the model asks the raw addon, by handle, whether it has been released
 * yet (a synchronous check: no FinalizationRegistry callback can run in between). Views let go of can be collected at
 * any time; until a gc step has waited for them, the counters they affect are checked as a range.
 */
import fc from 'fast-check';
import type { Backend, NativeString, Producer, Stats, Subscription } from '../../src/index.js';
import { gcUntil } from './gc.js';

/**
 * THE SWITCH: which view contract the build implements. Co-owned views (the new contract): a view taken before free()
 * or before the wrapper was collected keeps reading the same bytes, and `stats().strings` reports `viewHeld` /
 * `viewHeldBytes` (released strings whose bytes views still hold) until those views are collected. Without `viewHeld`
 * (the old build), releasing a string detaches its views (byteLength 0). Everything that differs reads this one flag.
 */
export function hasCoOwnedViews(backend: Backend): boolean {
  return 'viewHeld' in backend.stats().strings;
}

interface ViewHeldLedger {
  viewHeld: number;
  viewHeldBytes: number;
}

/** Until the new fields are in StringLedger's type. */
function viewHeldOf(stats: Stats): ViewHeldLedger {
  return stats.strings as unknown as ViewHeldLedger;
}

const encoder = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF, as the addons do (TextDecoder's default strips it: a model bug found by a seed).
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** A JS string as native code receives it: UTF-8, a lone surrogate becoming U+FFFD (what Node-API does, too). */
const utf8 = (text: string): Uint8Array => encoder.encode(text);
const viaUtf8 = (text: string): string => decoder.decode(encoder.encode(text));

/** Short, escaped (JSON.stringify escapes lone surrogates), and readable in a shrunk counterexample. */
function show(value: unknown): string {
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > 60 ? `${quoted.slice(0, 40)}…" (${value.length} UTF-16 units)` : quoted;
  }
  if (value instanceof Uint8Array) return `Uint8Array(${value.byteLength})`;
  return String(value);
}

// ---------------------------------------------------------------------------------------------------------------------
// Checks: plain throws (vitest's expect costs microseconds each, and a long run makes millions of checks).

function same<T>(actual: T, expected: T, what: string): void {
  if (!Object.is(actual, expected)) throw new Error(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

function within(actual: number, lo: number, hi: number, what: string): void {
  if (!(actual >= lo && actual <= hi)) throw new Error(`${what}: expected ${lo === hi ? lo : `${lo}..${hi}`}, got ${actual}`);
}

function sameList(actual: readonly string[], expected: readonly string[], what: string): void {
  if (actual.length !== expected.length || actual.some((x, i) => x !== expected[i])) {
    throw new Error(`${what}: expected [${expected.map(show).join(', ')}], got [${actual.map(show).join(', ')}]`);
  }
}

function sameBytes(view: Uint8Array, bytes: Uint8Array, what: string): void {
  same(view.byteLength, bytes.byteLength, `${what}: byteLength`);
  if (Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(bytes)) return;
  const i = view.findIndex((x, j) => x !== bytes[j]);
  if (i !== -1) throw new Error(`${what}: byte ${i} is ${view[i]}, expected ${bytes[i]}`);
}

function throwsCode(fn: () => unknown, kind: ErrorConstructor, code: string, what: string): Error & { code?: string } {
  try {
    fn();
  } catch (error) {
    const e = error as Error & { code?: string };
    if (!(e instanceof kind) || e.code !== code) {
      throw new Error(`${what}: expected ${kind.name} ${code}, got ${e?.constructor?.name} ${e?.code}: ${e?.message}`);
    }
    return e;
  }
  throw new Error(`${what}: expected ${kind.name} ${code}, but it returned`);
}

const throwsReleased = (fn: () => unknown, what: string): void => void throwsCode(fn, Error, 'ERR_NATIVE_RELEASED', what);

// ---------------------------------------------------------------------------------------------------------------------
// The model (plain data) and the real side (the objects), index for index.

type StringState = 'live' | 'freed' | 'dropped' | 'finalized';
/** A view we hold (`held`), let go of but perhaps not yet collected (`loose`), or none. */
type ViewState = 'none' | 'held' | 'loose';

interface StringModel {
  bytes: Uint8Array;
  text: string;
  /** `dropped`: the wrapper was forgotten while live; the fallback releases it after gc (then `finalized`). */
  state: StringState;
  wrapper: boolean;
  views: ViewState;
}

type SubState = 'active' | 'cancelled' | 'dropped' | 'finalized' | 'inactive';

interface SubModel {
  dest: string;
  /** `inactive`: made with an already-aborted signal, never registered. `dropped`: forgotten while active. */
  state: SubState;
  wrapper: boolean;
  /** It has an AbortController that was not aborted yet (aborting after a cancel or shutdown must change nothing). */
  signal: boolean;
  /** The send/post messages it must have received, in order (as UTF-8 made them). */
  expected: string[];
  /** Bounds on how many producer messages ("0", "1", …) it may have received. */
  minProduced: number;
  maxProduced: number;
}

interface ProducerModel {
  dest: string;
  count: number;
  state: 'running' | 'stopped' | 'settled';
  /** What our stop() returned, if we stopped it before `done` settled. */
  stopResult: boolean | undefined;
  /** Subscriptions active when it started: still active when `done` settles, each received every message. */
  witnesses: number[];
  /** Subscriptions that may receive its messages (their maxProduced counts all `count`). */
  reached: number[];
}

export class Model {
  strings: StringModel[] = [];
  subs: SubModel[] = [];
  producers: ProducerModel[] = [];
  // The ledger, as deltas from the stats() read when the sequence began.
  allocated = 0;
  freed = 0;
  stringsFinalized = 0;
  registered = 0;
  cancelled = 0;
  subsFinalized = 0;
  /** Messages posted by post(), and by producers whose `done` settled. */
  posted = 0;
  started = 0;
  nextMessage = 0;
}

interface StringReal {
  s: NativeString | undefined;
  /** The handle number, kept to ask the raw addon whether a dropped string was released, without holding it. */
  handle: number;
  view: Uint8Array | undefined;
}

interface SubReal {
  sub: Subscription | undefined;
  handle: number;
  controller: AbortController | undefined;
  /** What the callback received. The callback closes over this array, never over the Subscription. */
  got: string[];
  /** Length of `got` when the subscription was released: it must never grow again. */
  frozenAt: number | undefined;
}

interface Deliveries {
  inSend: boolean;
  /** Callbacks run outside send(): on the JS thread for posted messages, so `posts.delivered` must equal it. */
  posted: number;
  /** Subscription ids in the order their callbacks ran during the current send(). */
  sendOrder: number[];
}

export class Real {
  strings: StringReal[] = [];
  subs: SubReal[] = [];
  producers: { producer: Producer; done: Promise<number> }[] = [];
  deliveries: Deliveries = { inSend: false, posted: 0, sendOrder: [] };
  constructor(
    readonly backend: Backend,
    readonly base: Stats,
    readonly coOwnedViews: boolean,
  ) {}
}

/**
 * What the sequences did, for `NAPI_OWNERSHIP_MODEL_STATS=1` (test/model.test.ts prints it): how often each command
 * ran and each interesting outcome happened, so a run shows it covered what it claims.
 */
export const tally = new Map<string, number>();
function note(what: string): void {
  tally.set(what, (tally.get(what) ?? 0) + 1);
}

const isProducerMessage = (m: string): boolean => /^\d+$/.test(m);

function stringReleased(backend: Backend, handle: number): boolean {
  try {
    backend.raw.string_info(handle);
    return false;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_NATIVE_RELEASED') return true;
    throw error;
  }
}

/**
 * Brings the model up to date with the fallback: every dropped string or subscription the registry has released by
 * now is `finalized`. Returns how many dropped ones are still waiting.
 */
function settle(m: Model, r: Real): number {
  let waiting = 0;
  m.strings.forEach((s, i) => {
    if (s.state !== 'dropped') return;
    if (stringReleased(r.backend, r.strings[i]!.handle)) {
      s.state = 'finalized';
      m.stringsFinalized++;
      note(r.strings[i]!.view ? 'string finalized while we hold its view' : 'string finalized');
    } else waiting++;
  });
  m.subs.forEach((s, i) => {
    if (s.state !== 'dropped') return;
    const real = r.subs[i]!;
    if (!r.backend.raw.subscription_active(real.handle)) {
      s.state = 'finalized';
      m.subsFinalized++;
      real.frozenAt = real.got.length;
      note('subscription finalized');
    } else waiting++;
  });
  return waiting;
}

/** Views that may still be alive, of released strings: what `viewHeld` counts, exactly (`held`) or perhaps (`loose`). */
function viewHeldBounds(m: Model): { held: number; heldBytes: number; loose: number; looseBytes: number } {
  const out = { held: 0, heldBytes: 0, loose: 0, looseBytes: 0 };
  for (const s of m.strings) {
    if (s.state !== 'freed' && s.state !== 'finalized') continue;
    if (s.views === 'held') {
      out.held++;
      out.heldBytes += s.bytes.byteLength;
    } else if (s.views === 'loose') {
      out.loose++;
      out.looseBytes += s.bytes.byteLength;
    }
  }
  return out;
}

const registered = (s: SubModel): boolean => s.state === 'active' || s.state === 'dropped';

/** The check after every step: the whole ledger, every view we hold, every callback's log. */
export function verify(m: Model, r: Real): void {
  settle(m, r);
  const now = r.backend.stats();
  const b = r.base;

  // Strings.
  let live = 0;
  let liveBytes = 0;
  for (const s of m.strings) {
    if (s.state === 'live' || s.state === 'dropped') {
      live++;
      liveBytes += s.bytes.byteLength;
    }
  }
  same(now.strings.allocated - b.strings.allocated, m.allocated, 'strings.allocated');
  same(now.strings.freed - b.strings.freed, m.freed, 'strings.freed');
  same(now.strings.finalized - b.strings.finalized, m.stringsFinalized, 'strings.finalized');
  same(now.strings.live - b.strings.live, live, 'strings.live');
  same(now.strings.liveBytes - b.strings.liveBytes, liveBytes, 'strings.liveBytes');
  if (r.coOwnedViews) {
    const v = viewHeldBounds(m);
    const vNow = viewHeldOf(now);
    const vBase = viewHeldOf(b);
    within(vNow.viewHeld - vBase.viewHeld, v.held, v.held + v.loose, 'strings.viewHeld');
    within(vNow.viewHeldBytes - vBase.viewHeldBytes, v.heldBytes, v.heldBytes + v.looseBytes, 'strings.viewHeldBytes');
  }
  m.strings.forEach((s, i) => {
    const real = r.strings[i]!;
    if (real.s) same(real.s.freed, s.state !== 'live', `s${i}.freed`);
    if (!real.view) return;
    const handleLive = s.state === 'live' || s.state === 'dropped';
    if (!handleLive) note(`checked a view of a ${s.state} string`);
    if (handleLive || r.coOwnedViews) sameBytes(real.view, s.bytes, `view of s${i} (${s.state})`);
    else same(real.view.byteLength, 0, `view of s${i} (${s.state}, detached): byteLength`);
  });

  // Subscriptions.
  same(now.handlers.registered - b.handlers.registered, m.registered, 'handlers.registered');
  same(now.handlers.cancelled - b.handlers.cancelled, m.cancelled, 'handlers.cancelled');
  same(now.handlers.finalized - b.handlers.finalized, m.subsFinalized, 'handlers.finalized');
  same(now.handlers.live - b.handlers.live, m.subs.filter(registered).length, 'handlers.live');
  m.subs.forEach((s, i) => {
    const real = r.subs[i]!;
    if (real.sub) same(real.sub.active, s.state === 'active', `h${i}.active`);
    if (real.frozenAt !== undefined) same(real.got.length, real.frozenAt, `h${i} (${s.state}) was called after its release`);
    sameList(real.got.filter((x) => !isProducerMessage(x)), s.expected, `h${i}: messages received`);
    const produced = real.got.filter(isProducerMessage).length;
    within(produced, s.minProduced, s.maxProduced, `h${i}: producer messages received`);
  });

  // Posts and producers.
  const unsettled = m.producers.filter((p) => p.state !== 'settled');
  const inFlight = unsettled.reduce((n, p) => n + p.count, 0);
  within(now.posts.posted - b.posts.posted, m.posted, m.posted + inFlight, 'posts.posted');
  same(now.posts.delivered - b.posts.delivered, r.deliveries.posted, 'posts.delivered (callbacks run for posted messages)');
  if (unsettled.length === 0) same(now.posts.pending - b.posts.pending, 0, 'posts.pending');
  same(now.producers.started - b.producers.started, m.started, 'producers.started');
  same(now.producers.finalized - b.producers.finalized, 0, 'producers.finalized');
  const running = m.producers.filter((p) => p.state === 'running').length;
  within(now.producers.live - b.producers.live, 0, running, 'producers.live');
  const { live: pLive, started, stopped, finalized } = now.producers;
  same(pLive, started - stopped - finalized, 'producers.live = started - stopped - finalized');
}

// ---------------------------------------------------------------------------------------------------------------------
// Inputs.

/** One UTF-16 unit or code point, of every UTF-8 length; never U+0000. Two lone surrogates in a row may pair up. */
const char = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x01, max: 0x1f }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0x7ff }).map((c) => String.fromCharCode(c)) },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 0x800, max: 0xffff - 0x800 }).map((c) => String.fromCharCode(c < 0xd800 ? c : c + 0x800)),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
);

/** Text of every kind, the empty string included. */
export const text = fc.string({ unit: char, maxLength: 24 });

/** Large-ish: over the 64 KiB external-memory batch in one string, multi-byte, or with lone surrogates. */
const largeText = fc
  .record({ unit: fc.constantFrom('x', 'é', '€', '😀', 'a\uD800'), repeat: fc.constantFrom(4096, 16_384, 65_536) })
  .map(({ unit, repeat }) => ({ text: unit.repeat(repeat), label: `${JSON.stringify(unit)}.repeat(${repeat})` }));

export interface Input {
  text: string;
  /** Passed as the string itself, or as its UTF-8 bytes in a Uint8Array at `offset` of a larger buffer. */
  as: 'string' | 'bytes';
  offset: number;
  label: string;
}

const input: fc.Arbitrary<Input> = fc
  .record({
    t: fc.oneof(
      { weight: 8, arbitrary: text.map((t) => ({ text: t, label: JSON.stringify(t) })) },
      { weight: 1, arbitrary: largeText },
    ),
    as: fc.constantFrom<'string' | 'bytes'>('string', 'bytes'),
    offset: fc.integer({ min: 0, max: 7 }),
  })
  .map(({ t, as, offset }) => ({
    text: t.text,
    as,
    offset,
    label: as === 'string' ? t.label : `utf8(${t.label}) at offset ${offset}`,
  }));

/** The bytes inside a buffer of 0xFF (never valid UTF-8): reading a byte beyond the view would show. */
function bytesInPlace(bytes: Uint8Array, offset: number): Uint8Array {
  const backing = new Uint8Array(offset + bytes.byteLength + 4).fill(0xff);
  backing.set(bytes, offset);
  return backing.subarray(offset, offset + bytes.byteLength);
}

interface BadInput {
  kind: 'NUL in a string' | 'NUL byte' | 'invalid UTF-8';
  prefix: string;
  suffix: string;
  /** For invalid UTF-8: the bad sequence. */
  bad: number[];
}

const badInput: fc.Arbitrary<BadInput> = fc.record({
  kind: fc.constantFrom<BadInput['kind']>('NUL in a string', 'NUL byte', 'invalid UTF-8'),
  prefix: text,
  suffix: text,
  // a stray continuation byte, a truncated 2-byte sequence, an overlong NUL, a UTF-8-encoded surrogate, 0xFF
  bad: fc.constantFrom([0x80], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff]),
});

// ---------------------------------------------------------------------------------------------------------------------
// Commands.

type Cmd = fc.AsyncCommand<Model, Real>;

const DESTS = ['a', '€'] as const;
const dest = fc.constantFrom(...DESTS);

/** A command acting on an existing object: `pick` chooses among the candidates when it runs (shrinks to the first). */
abstract class OnOne implements Cmd {
  protected target = -1;
  constructor(readonly pick: number) {}
  abstract readonly candidates: (m: Readonly<Model>) => number[];
  check(m: Readonly<Model>): boolean {
    const c = this.candidates(m);
    if (c.length === 0) return false;
    this.target = c[this.pick % c.length]!;
    return true;
  }
  abstract run(m: Model, r: Real): Promise<void>;
  abstract toString(): string;
}

const withWrapper = (m: Readonly<Model>): number[] => m.strings.flatMap((s, i) => (s.wrapper ? [i] : []));
const subsWithWrapper = (m: Readonly<Model>): number[] => m.subs.flatMap((s, i) => (s.wrapper ? [i] : []));

class Print implements Cmd {
  private id = -1;
  constructor(readonly input: Input) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const bytes = utf8(this.input.text);
    const arg = this.input.as === 'string' ? this.input.text : bytesInPlace(bytes, this.input.offset);
    const s = r.backend.printAndReturn(arg);
    if (arg instanceof Uint8Array) arg.fill(0x21); // the native copy must not alias the input
    this.id = m.strings.length;
    m.strings.push({ bytes, text: decoder.decode(bytes), state: 'live', wrapper: true, views: 'none' });
    r.strings.push({ s, handle: s._handle, view: undefined });
    m.allocated++;
    same(s.backend, r.backend.name, 'backend');
    same(s.byteLength, bytes.byteLength, `s${this.id}.byteLength`);
    verify(m, r);
  }
  toString(): string {
    return `s${this.id} = print(${this.input.label})`;
  }
}

class PrintBad implements Cmd {
  constructor(readonly bad: BadInput) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const { kind, prefix, suffix, bad } = this.bad;
    const at = utf8(prefix).byteLength;
    const b = r.backend;
    if (kind === 'NUL in a string') {
      const e = throwsCode(() => b.printAndReturn(`${prefix}\0${suffix}`), RangeError, 'ERR_INTERIOR_NUL', 'NUL in a string');
      same(e.message, `input contains a NUL byte at offset ${at}; a NUL-terminated C string cannot carry it`, 'message');
    } else if (kind === 'NUL byte') {
      const arg = bytesInPlace(new Uint8Array([...utf8(prefix), 0, ...utf8(suffix)]), 1);
      const e = throwsCode(() => b.printAndReturn(arg), RangeError, 'ERR_INTERIOR_NUL', 'NUL byte');
      same(e.message, `input contains a NUL byte at offset ${at}; a NUL-terminated C string cannot carry it`, 'message');
    } else {
      const arg = bytesInPlace(new Uint8Array([...utf8(prefix), ...bad, ...utf8(suffix)]), 1);
      const e = throwsCode(() => b.printAndReturn(arg), RangeError, 'ERR_INVALID_UTF8', 'invalid UTF-8');
      same(e.message, `input is not valid UTF-8 (first bad byte at offset ${at})`, 'message');
    }
    verify(m, r); // nothing allocated
  }
  toString(): string {
    const { kind, prefix, suffix, bad } = this.bad;
    const middle = kind === 'NUL in a string' ? '\\0' : kind === 'NUL byte' ? '0x00' : bad.map((x) => `0x${x.toString(16)}`).join(' ');
    return `print(${kind}: ${JSON.stringify(prefix)} ${middle} ${JSON.stringify(suffix)}) throws`;
  }
}

class Text extends OnOne {
  candidates = withWrapper;
  async run(m: Model, r: Real): Promise<void> {
    const s = m.strings[this.target]!;
    const w = r.strings[this.target]!.s!;
    if (s.state === 'live') {
      same(w.toString(), s.text, `s${this.target}.toString()`);
      same(w.byteLength, s.bytes.byteLength, `s${this.target}.byteLength`);
    } else {
      throwsReleased(() => w.toString(), `s${this.target}.toString() after release`);
      note('toString() after release throws');
      throwsReleased(() => w.byteLength, `s${this.target}.byteLength after release`);
    }
    verify(m, r);
  }
  toString(): string {
    return `s${this.target}.toString()`;
  }
}

class View extends OnOne {
  candidates = withWrapper;
  async run(m: Model, r: Real): Promise<void> {
    const s = m.strings[this.target]!;
    const real = r.strings[this.target]!;
    const w = real.s!;
    if (s.state === 'live') {
      const v = w.view();
      // The same Uint8Array while it is alive (and we hold it).
      if (real.view) {
        same(v, real.view, `s${this.target}.view() again: the same Uint8Array`);
        note('view() again: the same Uint8Array');
      }
      sameBytes(v, s.bytes, `s${this.target}.view()`);
      real.view = v;
      s.views = 'held';
    } else {
      throwsReleased(() => w.view(), `s${this.target}.view() after release`);
      note('view() after release throws');
    }
    verify(m, r);
  }
  toString(): string {
    return `v${this.target} = s${this.target}.view()`;
  }
}

class DropView extends OnOne {
  candidates = (m: Readonly<Model>): number[] => m.strings.flatMap((s, i) => (s.views === 'held' ? [i] : []));
  async run(m: Model, r: Real): Promise<void> {
    r.strings[this.target]!.view = undefined;
    m.strings[this.target]!.views = 'loose';
    verify(m, r);
  }
  toString(): string {
    return `forget v${this.target}`;
  }
}

type FreeWay = 'free()' | 'freeString' | 'dispose';

class Free extends OnOne {
  constructor(
    pick: number,
    readonly way: FreeWay,
  ) {
    super(pick);
  }
  candidates = withWrapper;
  async run(m: Model, r: Real): Promise<void> {
    const s = m.strings[this.target]!;
    const w = r.strings[this.target]!.s!;
    const first = s.state === 'live';
    if (this.way === 'dispose') w[Symbol.dispose]();
    else same(this.way === 'free()' ? w.free() : r.backend.freeString(w), first, `${this}`);
    same(w.freed, true, `s${this.target}.freed after ${this.way}`);
    if (first) {
      s.state = 'freed';
      m.freed++;
    }
    note(first ? 'free: first (true)' : 'free: again (false)');
    verify(m, r);
  }
  toString(): string {
    const s = `s${this.target}`;
    return this.way === 'free()' ? `${s}.free()` : this.way === 'freeString' ? `freeString(${s})` : `${s}[Symbol.dispose]()`;
  }
}

class Drop extends OnOne {
  candidates = withWrapper;
  async run(m: Model, r: Real): Promise<void> {
    const s = m.strings[this.target]!;
    r.strings[this.target]!.s = undefined; // the only reference: the fallback must release it after gc
    s.wrapper = false;
    if (s.state === 'live') s.state = 'dropped';
    verify(m, r);
  }
  toString(): string {
    return `forget s${this.target} (no free)`;
  }
}

/**
 * A bounded gc-and-yield loop until every dropped wrapper was released by the fallback and, with co-owned views,
 * every view let go of was collected (viewHeld back to what the views we hold account for).
 */
async function collectGarbage(m: Model, r: Real, what: string): Promise<void> {
  let unsettled = 0;
  await gcUntil(what, () => {
    unsettled = settle(m, r);
    if (unsettled !== 0) return false;
    if (!r.coOwnedViews) return true;
    return viewHeldOf(r.backend.stats()).viewHeld - viewHeldOf(r.base).viewHeld === viewHeldBounds(m).held;
  }).catch((error: unknown) => {
    // Say what was still awaited: dropped objects the fallback had not released, or views not yet collected.
    const held = r.coOwnedViews ? viewHeldOf(r.backend.stats()).viewHeld - viewHeldOf(r.base).viewHeld : 0;
    throw new Error(
      `${String(error)}: ${unsettled} dropped objects not yet released; viewHeld ${held} above the sequence's start, ` +
        `the model expects ${r.coOwnedViews ? viewHeldBounds(m).held : 0}`,
      { cause: error },
    );
  });
  // The wait proves only what viewHeld can see: views of *released* strings. A let-go view of a string whose handle is
  // still live is invisible to it (and may outlive this step), so it stays loose: counted as a range when released.
  for (const s of m.strings) if (s.views === 'loose' && (s.state === 'freed' || s.state === 'finalized')) s.views = 'none';
}

class Gc implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    if (m.strings.some((s) => s.state === 'dropped') || m.subs.some((s) => s.state === 'dropped')) note('gc step with drops waiting');
    await collectGarbage(m, r, 'gc step: the fallback and collected views');
    verify(m, r);
  }
  toString(): string {
    return 'gc';
  }
}

type SignalKind = 'none' | 'signal' | 'aborted';

class Handler implements Cmd {
  private id = -1;
  constructor(
    readonly dest: string,
    readonly signal: SignalKind,
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const id = m.subs.length;
    this.id = id;
    const got: string[] = [];
    const deliveries = r.deliveries;
    // Closes over `got` and the counters only: a callback that held its Subscription would keep it alive.
    const callback = (message: string): void => {
      got.push(message);
      if (deliveries.inSend) deliveries.sendOrder.push(id);
      else deliveries.posted++;
    };
    const controller = this.signal === 'none' ? undefined : new AbortController();
    if (this.signal === 'aborted') controller!.abort();
    const sub = r.backend.handler(this.dest, callback, controller ? { signal: controller.signal } : undefined);
    const active = this.signal !== 'aborted';
    const model: SubModel = {
      dest: this.dest,
      state: active ? 'active' : 'inactive',
      wrapper: true,
      signal: this.signal === 'signal',
      expected: [],
      minProduced: 0,
      maxProduced: 0,
    };
    m.subs.push(model);
    r.subs.push({
      sub,
      handle: sub._handle,
      controller: this.signal === 'signal' ? controller : undefined,
      got,
      frozenAt: active ? undefined : 0,
    });
    same(sub.dest, this.dest, 'sub.dest');
    if (active) {
      m.registered++;
      // Messages a producer has posted but the worker has not dispatched yet may still reach it.
      for (const p of m.producers) {
        if (p.state !== 'settled' && p.dest === this.dest) {
          model.maxProduced += p.count;
          p.reached.push(id);
        }
      }
    }
    verify(m, r);
  }
  toString(): string {
    const options = this.signal === 'none' ? '' : this.signal === 'signal' ? ', { signal }' : ', { signal: aborted }';
    return `h${this.id} = handler(${JSON.stringify(this.dest)}${options})`;
  }
}

/** Mostly the dest of a registered subscription (so messages reach someone), else a fixed one. */
interface DestChoice {
  listened: boolean;
  pick: number;
  dest: string;
}

const destChoice: fc.Arbitrary<DestChoice> = fc.record({
  listened: fc.constantFrom(true, true, true, false),
  pick: fc.nat({ max: 1000 }),
  dest,
});

function chooseDest(m: Readonly<Model>, to: DestChoice): string {
  if (!to.listened) return to.dest;
  const listened = m.subs.filter(registered).map((s) => s.dest);
  return listened.length === 0 ? to.dest : listened[to.pick % listened.length]!;
}

/** A command aimed at a destination chosen when fast-check checks it (one with listeners, if asked). */
abstract class ToDest implements Cmd {
  protected dest: string;
  constructor(readonly to: DestChoice) {
    this.dest = to.dest;
  }
  check(m: Readonly<Model>): boolean {
    this.dest = chooseDest(m, this.to);
    return true;
  }
  abstract run(m: Model, r: Real): Promise<void>;
}

class Send extends ToDest {
  constructor(
    to: DestChoice,
    readonly text: string,
  ) {
    super(to);
  }
  async run(m: Model, r: Real): Promise<void> {
    const message = `s${m.nextMessage++}:${this.text}`;
    settle(m, r); // synchronous from here: no fallback can release anything before send returns
    const receivers = m.subs.flatMap((s, i) => (s.dest === this.dest && registered(s) ? [i] : []));
    r.deliveries.inSend = true;
    r.deliveries.sendOrder = [];
    let ran: number;
    try {
      ran = r.backend.send(this.dest, message);
    } finally {
      r.deliveries.inSend = false;
    }
    same(ran, receivers.length, `${this}: callbacks run`);
    same(r.deliveries.sendOrder.join(), receivers.join(), `${this}: the order callbacks ran in (registration order)`);
    // send() hands every callback its own argument, the JS value itself (docs/raw-contract.md: "with (message)"), so a
    // lone surrogate arrives as it was sent; a posted message crosses threads as UTF-8 and arrives as U+FFFD.
    for (const i of receivers) m.subs[i]!.expected.push(message);
    note(`send: ${Math.min(ran, 2)}${ran >= 2 ? '+' : ''} callbacks`);
    verify(m, r);
  }
  override toString(): string {
    return `send(${JSON.stringify(this.dest)}, ${show(this.text)})`;
  }
}

class Post extends ToDest {
  constructor(
    to: DestChoice,
    readonly text: string,
  ) {
    super(to);
  }
  async run(m: Model, r: Real): Promise<void> {
    const message = `p${m.nextMessage++}:${this.text}`;
    const received = viaUtf8(message);
    settle(m, r);
    const known = m.subs.flatMap((s, i) => (s.dest === this.dest && s.state === 'active' ? [i] : []));
    // A dropped one may be released by the fallback while the post is in flight: it runs, or it is released.
    const maybe = m.subs.flatMap((s, i) => (s.dest === this.dest && s.state === 'dropped' ? [i] : []));
    m.posted++;
    const ran = await r.backend.post(this.dest, message);
    let alsoRan = 0;
    for (const i of known) m.subs[i]!.expected.push(received);
    for (const i of maybe) {
      const real = r.subs[i]!;
      if (real.got.includes(received)) {
        alsoRan++;
        m.subs[i]!.expected.push(received);
      } else if (r.backend.raw.subscription_active(real.handle)) {
        throw new Error(`${this}: h${i} is still registered but missed the post`);
      }
    }
    same(ran, known.length + alsoRan, `${this}: resolved with`);
    note(`post: ${Math.min(ran, 2)}${ran >= 2 ? '+' : ''} callbacks`);
    if (maybe.length > 0) note(alsoRan > 0 ? 'post: a dropped subscription still ran' : 'post: a dropped subscription was released');
    verify(m, r);
  }
  override toString(): string {
    return `await post(${JSON.stringify(this.dest)}, ${show(this.text)})`;
  }
}

type CancelWay = 'cancel()' | 'dispose' | 'backend.cancel' | 'wrong dest';

class Cancel extends OnOne {
  constructor(
    pick: number,
    readonly way: CancelWay,
  ) {
    super(pick);
  }
  candidates = subsWithWrapper;
  async run(m: Model, r: Real): Promise<void> {
    const s = m.subs[this.target]!;
    const real = r.subs[this.target]!;
    const sub = real.sub!;
    const active = s.state === 'active';
    if (this.way === 'dispose') sub[Symbol.dispose]();
    else if (this.way === 'cancel()') same(sub.cancel(), active, `${this}`);
    else if (this.way === 'backend.cancel') same(r.backend.cancel(s.dest, sub), active, `${this}`);
    else same(r.backend.cancel(DESTS.find((d) => d !== s.dest)!, sub), false, `${this}`);
    note(`${this.way}: ${active ? 'active' : s.state}`);
    if (active && this.way !== 'wrong dest') {
      s.state = 'cancelled';
      m.cancelled++;
      real.frozenAt = real.got.length;
    }
    verify(m, r);
  }
  toString(): string {
    const h = `h${this.target}`;
    switch (this.way) {
      case 'cancel()':
        return `${h}.cancel()`;
      case 'dispose':
        return `${h}[Symbol.dispose]()`;
      case 'backend.cancel':
        return `cancel(its dest, ${h})`;
      case 'wrong dest':
        return `cancel(another dest, ${h}) is false`;
    }
  }
}

class Abort extends OnOne {
  candidates = (m: Readonly<Model>): number[] => m.subs.flatMap((s, i) => (s.wrapper && s.signal ? [i] : []));
  async run(m: Model, r: Real): Promise<void> {
    const s = m.subs[this.target]!;
    const real = r.subs[this.target]!;
    real.controller!.abort(); // the 'abort' event is dispatched synchronously: cancelled when abort() returns
    real.controller = undefined;
    s.signal = false;
    note(s.state === 'active' ? 'abort: cancelled it' : `abort: already ${s.state}`);
    if (s.state === 'active') {
      s.state = 'cancelled';
      m.cancelled++;
      real.frozenAt = real.got.length;
    }
    verify(m, r);
  }
  toString(): string {
    return `abort h${this.target}'s signal`;
  }
}

class DropSub extends OnOne {
  candidates = subsWithWrapper;
  async run(m: Model, r: Real): Promise<void> {
    const s = m.subs[this.target]!;
    const real = r.subs[this.target]!;
    real.sub = undefined;
    real.controller = undefined;
    s.wrapper = false;
    s.signal = false;
    if (s.state === 'active') s.state = 'dropped';
    verify(m, r);
  }
  toString(): string {
    return `forget h${this.target} (no cancel)`;
  }
}

class Produce extends ToDest {
  private id = -1;
  constructor(
    to: DestChoice,
    readonly count: number,
  ) {
    super(to);
  }
  override async run(m: Model, r: Real): Promise<void> {
    settle(m, r);
    this.id = m.producers.length;
    const producer = r.backend.produce(this.dest, { count: this.count, intervalMs: 0 });
    const witnesses = m.subs.flatMap((s, i) => (s.dest === this.dest && s.state === 'active' ? [i] : []));
    const reached = m.subs.flatMap((s, i) => (s.dest === this.dest && registered(s) ? [i] : []));
    for (const i of reached) m.subs[i]!.maxProduced += this.count;
    m.producers.push({ dest: this.dest, count: this.count, state: 'running', stopResult: undefined, witnesses, reached });
    const done = producer.done;
    done.catch(() => {}); // awaited by a later step or the teardown; never left as an unhandled rejection
    r.producers.push({ producer, done });
    m.started++;
    same(producer.dest, this.dest, 'producer.dest');
    verify(m, r);
  }
  override toString(): string {
    return `p${this.id} = produce(${JSON.stringify(this.dest)}, { count: ${this.count}, intervalMs: 0 })`;
  }
}

function stopProducer(m: Model, r: Real, i: number): void {
  const p = m.producers[i]!;
  const stopped = r.producers[i]!.producer.stop();
  if (p.state === 'running') {
    note(`stop() while running: ${stopped}`);
    p.stopResult = stopped;
    p.state = 'stopped';
  } else {
    same(stopped, false, `p${i}.stop() again (${p.state})`);
  }
  same(r.producers[i]!.producer.active, false, `p${i}.active after stop()`);
}

async function awaitProducer(m: Model, r: Real, i: number): Promise<void> {
  const p = m.producers[i]!;
  const posted = await r.producers[i]!.done;
  if (p.stopResult === true) within(posted, 0, p.count - 1, `p${i}: posted, stopped early`);
  else same(posted, p.count, `p${i}: posted${p.stopResult === false ? ', stop() came after it finished' : ''}`);
  p.state = 'settled';
  m.posted += posted;
  // Every message is delivered (or skipped) before done settles: a subscription active all along got all of them.
  for (const w of p.witnesses) {
    if (m.subs[w]!.state !== 'active') continue;
    m.subs[w]!.minProduced += posted;
    if (posted > 0) note('producer: a subscription got every message');
  }
  for (const s of p.reached) m.subs[s]!.maxProduced -= p.count - posted;
}

class Stop extends OnOne {
  candidates = (m: Readonly<Model>): number[] => m.producers.map((_, i) => i);
  async run(m: Model, r: Real): Promise<void> {
    stopProducer(m, r, this.target);
    verify(m, r);
  }
  toString(): string {
    return `p${this.target}.stop()`;
  }
}

class AwaitDone extends OnOne {
  candidates = (m: Readonly<Model>): number[] => m.producers.flatMap((p, i) => (p.state !== 'settled' ? [i] : []));
  async run(m: Model, r: Real): Promise<void> {
    await awaitProducer(m, r, this.target);
    verify(m, r);
  }
  toString(): string {
    return `await p${this.target}.done`;
  }
}

class Shutdown implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    settle(m, r);
    const all = m.subs.flatMap((s, i) => (registered(s) ? [i] : []));
    same(r.backend.shutdown(), all.length, 'shutdown(): registrations cancelled');
    for (const i of all) {
      m.subs[i]!.state = 'cancelled';
      r.subs[i]!.frozenAt = r.subs[i]!.got.length;
    }
    m.cancelled += all.length;
    note(`shutdown: ${Math.min(all.length, 2)}${all.length >= 2 ? '+' : ''} cancelled`);
    verify(m, r);
  }
  toString(): string {
    return 'shutdown()';
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The sequence: setup, the commands, and a teardown that leaves the ledger where it found it.

/** Counts the commands that ran (fast-check skips those whose check() fails); prints as the command itself. */
class Counted implements Cmd {
  constructor(readonly inner: Cmd) {}
  check(m: Readonly<Model>): boolean {
    return this.inner.check(m);
  }
  async run(m: Model, r: Real): Promise<void> {
    note(`command: ${this.inner.constructor.name}`);
    await this.inner.run(m, r);
  }
  toString(): string {
    return this.inner.toString();
  }
}

export interface ModelOptions {
  /** Weight of the gc step among ~50 for the others (each gc step costs a few full collections). */
  gcWeight: number;
  maxCommands: number;
  /** fast-check's replayPath for commands (printed in the counterexample): replaying needs it with seed and path. */
  replayPath?: string | undefined;
}

export function commands(options: ModelOptions): fc.Arbitrary<Iterable<Cmd>> {
  const pick = fc.nat({ max: 1000 });
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    { weight: 8, arbitrary: input.map((i): Cmd => new Print(i)) },
    { weight: 1, arbitrary: badInput.map((b): Cmd => new PrintBad(b)) },
    { weight: 3, arbitrary: pick.map((p): Cmd => new Text(p)) },
    { weight: 4, arbitrary: pick.map((p): Cmd => new View(p)) },
    { weight: 2, arbitrary: pick.map((p): Cmd => new DropView(p)) },
    {
      weight: 5,
      arbitrary: fc.tuple(pick, fc.constantFrom<FreeWay>('free()', 'freeString', 'dispose')).map(([p, w]): Cmd => new Free(p, w)),
    },
    { weight: 2, arbitrary: pick.map((p): Cmd => new Drop(p)) },
    { weight: options.gcWeight, arbitrary: fc.constant(null).map((): Cmd => new Gc()) },
    {
      weight: 5,
      arbitrary: fc
        .tuple(dest, fc.constantFrom<SignalKind>('none', 'none', 'signal', 'aborted'))
        .map(([d, s]): Cmd => new Handler(d, s)),
    },
    { weight: 5, arbitrary: fc.tuple(destChoice, text).map(([d, t]): Cmd => new Send(d, t)) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(pick, fc.constantFrom<CancelWay>('cancel()', 'dispose', 'backend.cancel', 'wrong dest'))
        .map(([p, w]): Cmd => new Cancel(p, w)),
    },
    { weight: 2, arbitrary: pick.map((p): Cmd => new Abort(p)) },
    { weight: 1, arbitrary: pick.map((p): Cmd => new DropSub(p)) },
    { weight: 3, arbitrary: fc.tuple(destChoice, text).map(([d, t]): Cmd => new Post(d, t)) },
    {
      weight: 2,
      arbitrary: fc
        // Mostly a few messages; sometimes 500, so that stop() can catch one still posting.
        .tuple(destChoice, fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.constant(500) }))
        .map(([d, n]): Cmd => new Produce(d, n)),
    },
    { weight: 2, arbitrary: pick.map((p): Cmd => new Stop(p)) },
    { weight: 2, arbitrary: pick.map((p): Cmd => new AwaitDone(p)) },
    { weight: 1, arbitrary: fc.constant(null).map((): Cmd => new Shutdown()) },
  );
  return fc.commands([cmd.map((c): Cmd => new Counted(c))], {
    maxCommands: options.maxCommands,
    size: 'max',
    ...(options.replayPath === undefined ? {} : { replayPath: options.replayPath }),
  });
}

/**
 * Releases everything the sequence left: stops and awaits every producer, frees every live string, cancels every
 * active subscription, lets go of every view, and waits (bounded gc loop) for the fallback and the views. Then the
 * ledger must be back where the sequence found it. After a failed sequence it only cleans up, so the next sequence
 * (fast-check shrinking) starts balanced.
 */
async function teardown(m: Model, r: Real, checked: boolean): Promise<void> {
  const steps = m.strings.length + m.subs.length + m.producers.length;
  note(`sequence made ${steps < 5 ? '0-4' : steps < 10 ? '5-9' : steps < 20 ? '10-19' : '20+'} objects`);
  const problems: unknown[] = [];
  const step = async (fn: () => unknown): Promise<void> => {
    try {
      await fn();
    } catch (error) {
      problems.push(error);
    }
  };
  for (let i = 0; i < m.producers.length; i++) {
    if (m.producers[i]!.state === 'running') await step(() => stopProducer(m, r, i));
    if (m.producers[i]!.state !== 'settled') await step(() => awaitProducer(m, r, i));
  }
  for (let i = 0; i < m.strings.length; i++) {
    const s = m.strings[i]!;
    const w = r.strings[i]!.s;
    if (w && s.state === 'live') {
      await step(() => same(w.free(), true, `teardown: s${i}.free()`));
      s.state = 'freed';
      m.freed++;
    }
    if (r.strings[i]!.view) {
      r.strings[i]!.view = undefined;
      s.views = 'loose';
    }
  }
  for (let i = 0; i < m.subs.length; i++) {
    const s = m.subs[i]!;
    const sub = r.subs[i]!.sub;
    if (sub && s.state === 'active') {
      await step(() => same(sub.cancel(), true, `teardown: h${i}.cancel()`));
      s.state = 'cancelled';
      m.cancelled++;
      r.subs[i]!.frozenAt = r.subs[i]!.got.length;
    }
  }
  // Something to wait for: a dropped wrapper, or (co-owned) a view let go of whose bytes viewHeld may still count.
  const dropped = m.strings.some((s) => s.state === 'dropped') || m.subs.some((s) => s.state === 'dropped');
  if (dropped || (r.coOwnedViews && viewHeldBounds(m).loose > 0)) await step(() => collectGarbage(m, r, 'teardown: the fallback and collected views'));
  if (!checked) return;
  await step(() => {
    verify(m, r);
    const now = r.backend.stats();
    const b = r.base;
    same(now.strings.live, b.strings.live, 'teardown: strings.live');
    same(now.strings.liveBytes, b.strings.liveBytes, 'teardown: strings.liveBytes');
    if (r.coOwnedViews) {
      same(viewHeldOf(now).viewHeld, viewHeldOf(b).viewHeld, 'teardown: strings.viewHeld');
      same(viewHeldOf(now).viewHeldBytes, viewHeldOf(b).viewHeldBytes, 'teardown: strings.viewHeldBytes');
    }
    same(now.handlers.live, b.handlers.live, 'teardown: handlers.live');
    same(now.posts.pending, b.posts.pending, 'teardown: posts.pending');
    same(now.producers.live, b.producers.live, 'teardown: producers.live');
  });
  if (problems.length > 0) throw problems[0];
}

/** One sequence on `backend`: the property fast-check runs. */
export async function runSequence(backend: Backend, cmds: Iterable<Cmd>): Promise<void> {
  const m = new Model();
  const r = new Real(backend, backend.stats(), hasCoOwnedViews(backend));
  let ok = false;
  note('sequence');
  try {
    await fc.asyncModelRun(() => ({ model: m, real: r }), cmds);
    ok = true;
  } finally {
    await teardown(m, r, ok);
  }
}
