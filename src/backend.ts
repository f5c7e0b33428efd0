import { foreignHandleError, invalidArgType } from './errors.js';
import { Fallback } from './fallback.js';
import { NativeString } from './native-string.js';
import type { RawAddon, StringLedger } from './native/raw.js';

export type BackendName = 'cpp' | 'rust';

export interface Stats {
  strings: StringLedger;
}

const trace = process.env.NAPI_OWNERSHIP_TRACE === '1';

/**
 * One native backend: the C++ addon (node-addon-api) or the Rust addon (napi-rs), behind the same API.
 * The addon is loaded on first use, so a missing binary of one backend does not break the other.
 */
export class Backend {
  readonly name: BackendName;
  readonly #load: () => RawAddon;
  #raw: RawAddon | undefined;
  #fallback: Fallback | undefined;

  /** Use the exported `cpp` and `rust`; `load` returns the raw addon (see ./native/). */
  constructor(name: BackendName, load: () => RawAddon) {
    this.name = name;
    this.#load = load;
  }

  /** The raw addon (docs/raw-contract.md): handles are plain numbers and nothing is released for you. */
  get raw(): RawAddon {
    return (this.#raw ??= this.#load());
  }

  /** @internal The FinalizationRegistry fallback for this backend's objects. */
  get _fallback(): Fallback {
    return (this.#fallback ??= new Fallback((handle) => this.raw.finalize_string(handle)));
  }

  /**
   * Seed 003's `print_and_return`: the backend's core copies `input` (UTF-8) into memory it owns and hands it back.
   * A Uint8Array is read in place; it must hold valid UTF-8 without NUL bytes.
   * Ownership: freed by `free()` / `using` / `freeString`, or by the fallback if the result is collected while live.
   */
  printAndReturn(input: string | Uint8Array): NativeString {
    if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
      throw invalidArgType('a string or Uint8Array', 'input', input);
    }
    const raw = this.raw;
    const s = NativeString._create(this, raw.print_and_return(input));
    this._fallback.adopt(s);
    if (trace) {
      process.stderr.write(`[napi-ownership ${this.name}] JS received address: 0x${s.address.toString(16)}\n`);
    }
    return s;
  }

  /** Seed 003's `free_string`, as a function of the backend: the same as `s.free()`, refusing another backend's string. */
  freeString(s: NativeString): boolean {
    if (!(s instanceof NativeString)) throw invalidArgType('a NativeString', 's', s);
    if (s._backend !== this) throw foreignHandleError(s._backend.name, this.name);
    return s.free();
  }

  /** This environment's ledger of native allocations, read from the addon. */
  stats(): Stats {
    return this.raw.stats();
  }

  /** Arms the fallback for everything made so far in this job (normally done at the end of the job). For tests. */
  flushFallback(): void {
    this.#fallback?.armPending();
  }
}
