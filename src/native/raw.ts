/**
 * The raw addon contract (docs/raw-contract.md), implemented identically by the C++ and the Rust addon.
 * A handle is a plain number naming a slot in the addon's per-environment table: it owns nothing by itself.
 */
export type Handle = number;

export interface StringLedger {
  /** Strings allocated by the core and not yet released. */
  live: number;
  /** Every successful print_and_return. */
  allocated: number;
  /** Released by an explicit free (free(), using, freeString). */
  freed: number;
  /** Released by the FinalizationRegistry fallback after the wrapper was collected. */
  finalized: number;
  /** UTF-8 bytes held by live strings (without NUL terminators). */
  liveBytes: number;
}

export interface RawStats {
  strings: StringLedger;
}

export interface RawAddon {
  /** Copies `input` into a string owned by the addon's core; returns its handle. */
  print_and_return(input: string | Uint8Array): Handle;
  /** Releases now: true, or false if it was already released. Detaches the view first. */
  free_string(handle: Handle): boolean;
  /** As free_string, counted as `finalized`: the FinalizationRegistry's path. */
  finalize_string(handle: Handle): boolean;
  string_text(handle: Handle): string;
  string_view(handle: Handle): Uint8Array;
  string_info(handle: Handle): { address: bigint; byteLength: number };
  stats(): RawStats;
  noop(): undefined;
}
