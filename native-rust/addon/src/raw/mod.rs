//! The fence: the only code of this addon that calls raw Node-API (`napi::sys::napi_*`). Everything else uses
//! napi-rs's types and the safe functions below (taking `sys::napi_env` / `sys::napi_value` handles, napi-rs's own
//! idiom for values it has no type for); `test/fence.test.ts` fails on a `sys::napi_*(` call outside this directory.
//!
//! Checked against napi-rs 3.16.1 (the locked version; `napi = "3"` at `features = ["napi3"]` only) and napi-sys
//! 3.x at `napi9`. Each submodule is here because napi-rs, at that version and feature level, has no type for the job
//! or its type breaks the contract (docs/raw-contract.md) or the measured budget; re-check when napi-rs moves:
//! - [`fast`]: the measured fast path, `noop`, `print_and_return`, `free_string`, defined as plain Node-API
//!   callbacks with the environment's state as their data pointer. napi-derive's wrapper opens a native-borrow scope
//!   per call with arguments and `Either<String, Uint8Array>` allocates; fast.rs's header has the numbers against
//!   the `#[napi]` twins (`noop` 12.8 vs 25.3 ns, `print_and_return` + `free_string` 130 vs 444 ns, Node 20, napi
//!   3.16.1), and the contract's budget (round trip <= 15x a no-op) needs the raw path. `bench/run.ts` measures these
//!   three names.
//! - [`tsfn`]: the environment's threadsafe function. napi-rs's `ThreadsafeFunction` needs feature `napi4`, with
//!   which napi-rs's module registration creates a "custom GC" threadsafe function in every environment and never
//!   releases it (392 B lost per environment on Node 24.14+/25.4+/26; test/environments.test.ts), and it drops
//!   items Node drains with a NULL env (`seed-bug-tsfn-item-leaked`).
//! - [`instance`]: instance data (`Env::{set,get}_instance_data` need `napi6`, hence `napi4`, as above).
//! - [`values`]: errors with `code` *defined* and result objects / property lists defined in one
//!   `napi_define_properties` with static names (napi-rs assigns with [[Set]], which a setter on `Object.prototype`
//!   intercepts, or allocates a `CString` per name); BigInt (napi-rs's needs `napi6`).
//! - [`calls`]: calling a function or constructor and taking back what it threw *as a value*, and the
//!   pending-exception queries (napi-rs turns a thrown value into an `Error` and has no public query); the arguments
//!   of the raw Promise executor (napi-rs makes a function from a closure only with `napi5`).
//! - [`refs`]: weak references to a view's ArrayBuffer and Uint8Array (napi-rs has weak references only to `#[napi]`
//!   class instances) and strong references to thrown values of any kind (napi-rs's `UnknownRef` does not delete
//!   itself in Drop).
//! - [`utf8`]: a JS string read into a buffer the caller owns (`dest`/`message` arguments of `send`, `post`, ...
//!   on the stack up to 256 bytes; napi-rs's `String` and `JsString::into_utf8` always allocate). A design choice for
//!   the hot `send`/`post` paths, not separately measured.
//!
//! Layers (see lib.rs): `values`, `calls`, `refs`, `utf8`, `instance` use nothing of this crate (std and napi only)
//! and sit below `js`; `tsfn` sits with `strings`/`promises`; `fast` sits at the top with the exports.

pub(crate) mod calls;
pub(crate) mod fast;
pub(crate) mod instance;
pub(crate) mod refs;
pub(crate) mod tsfn;
pub(crate) mod utf8;
pub(crate) mod values;
