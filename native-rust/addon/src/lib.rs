//! napi-ownership-rust: the napi-rs addon implementing docs/raw-contract.md over the Rust core
//! (`napi-ownership-core`).
//!
//! Who owns what:
//! - the **core** allocates every string copy and is the only code that frees one;
//! - a **slot** of this environment's handle table owns the core's pointer between
//!   `print_and_return` and `free_string` / `finalize_string` / environment teardown;
//! - **JS** owns a handle number, and a view's external ArrayBuffer co-owns the bytes
//!   (`strings::SharedBytes`): they are freed when the handle and every view have let go;
//! - a **subscription slot** owns seed 000's `UserSpaceWrapper`, and through it the boxed JS callback
//!   (a strong reference to the function) and the FFIWrapper the environment's dispatcher borrows
//!   while registered;
//! - a **producer slot** owns a native producer (its thread and record); a **posted closure** is the
//!   dispatcher's until its `on_delivered`; an **item** on the threadsafe function is the queue's
//!   until `call_js` takes it back (and frees it, with or without an env);
//! - **instance data** owns the per-environment state; the exported functions borrow it.
//!
//! napi-rs's own types carry what they can: every export but three is a `#[napi]` function with typed
//! arguments (`bind.rs`), callbacks and promise settlers are `FunctionRef`s, views are
//! `Uint8ArraySlice::from_external` with a finalize closure. Raw `napi::sys` is left where napi-rs 3.16.1 (at
//! feature `napi3`, see raw_tsfn.rs) has no type for the job or its type would break the contract:
//! - `fast.rs`: the measured fast path (`noop`, `print_and_return`, `free_string`);
//! - `raw_tsfn.rs`: the threadsafe function (napi-rs's needs `napi4`, which leaks one per environment);
//! - `lifecycle.rs`: instance data (`Env::{set,get}_instance_data` need `napi6`) and the cleanup hook;
//! - `js.rs`: a coded error with `code` *defined* (napi-rs's `Error` assigns it with [[Set]]), result objects
//!   with defined properties in one `napi_define_properties` (static names, no allocation per name),
//!   `AggregateError`;
//! - `strings.rs`: weak references to a view's buffer and array (napi-rs has weak references only to `#[napi]`
//!   class instances); `args.rs`: strings read into a stack buffer (`send`/`post`: napi-rs's `String` allocates);
//! - `callbacks.rs`, `delivery.rs`, `promises.rs`: calling a function with a value and taking back what it threw
//!   as a value (napi-rs's `Function::call` turns it into an `Error`); the Promise executor is a raw
//!   callback (`Env::create_function_from_closure` needs `napi5`); thrown values of any kind (napi-rs's `UnknownRef` does
//!   not delete itself in Drop).

// napi-derive registers `#[napi]` items only outside `cfg(test)`, so a unit-test build sees them as unused.
#![cfg_attr(test, allow(dead_code))]

// Module layers (each uses only those above it; no module imports one below it):
//   error_codes, handles, js            — codes, handle bits and tables, Node-API helpers and `Throw`
//   ledger, args                        — the contract's counters; decoding arguments
//   strings, promises, raw_tsfn         — string bytes and views; promises and thrown values; the threadsafe function
//   callbacks, posts                    — boxed JS callbacks; who waits for delivery items
//   state                               — the per-environment state that owns all of the above
//   delivery, lifecycle                 — items processed on the JS thread; load and teardown
//   bind, exports, fast                 — #[napi] glue; every export of the contract; the raw fast path
mod error_codes;
mod handles;
mod js;

mod args;
mod ledger;

mod promises;
mod raw_tsfn;
mod strings;

mod callbacks;
mod posts;

mod state;

mod delivery;
mod lifecycle;

mod bind;
mod exports;
mod fast;

use napi::bindgen_prelude::Object;
use napi::{Env, JsValue};
use napi_derive::napi;

/// Runs once per environment that loads the addon: creates (or finds) the environment's state in
/// instance data and defines every export of the raw contract on `exports`.
#[napi(module_exports)]
pub fn init(exports: Object<'_>, env: Env) -> napi::Result<()> {
    let raw_env = env.raw();
    let state = lifecycle::env_state(raw_env)?;
    fast::define_all(raw_env, exports.raw(), state).map_err(napi::Error::from)
}
