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
//! `Uint8ArraySlice::from_external` with a finalize closure, values are made and read with napi-rs's conversions
//! (`ToNapiValue`/`FromNapiValue`, `Object::new`, `Env::create_array`, `Env::get_global`, `JsValue::coerce_to_string`,
//! `Env::adjust_external_memory`, `Env::add_env_cleanup_hook`, ...). Raw `napi::sys` *calls* sit in one module,
//! [`raw`], whose doc comment is the fence: each submodule with the reason napi-rs 3.16.1 (at feature `napi3`) has no
//! type for its job or its type would break the contract or the measured budget:
//! - `raw::fast`: the measured fast path (`noop`, `print_and_return`, `free_string`);
//! - `raw::tsfn`: the threadsafe function (napi-rs's needs `napi4`, which leaks one per environment);
//! - `raw::instance`: instance data (`Env::{set,get}_instance_data` need `napi6`);
//! - `raw::values`: errors with a *defined* `code`, result objects with defined properties (static names), BigInt
//!   (`napi6` in napi-rs), the ArrayBuffer under a typed array;
//! - `raw::calls`: calling a function and taking back what it threw as a value; pending-exception queries;
//! - `raw::refs`: weak references to a view's buffer and array, strong references to thrown values of any kind;
//! - `raw::utf8`: strings read into a buffer the caller owns (napi-rs's `String` allocates).
//!
//! Elsewhere the addon names `sys::napi_env` / `sys::napi_value` (napi-rs's own idiom for handles it has no type
//! for) but calls no `sys::napi_*` function: `test/fence.test.ts` checks that.

// napi-derive registers `#[napi]` items only outside `cfg(test)`, so a unit-test build sees them as unused.
#![cfg_attr(test, allow(dead_code))]

// Module layers (each uses only those above it; no module imports one below it). `raw`'s submodules sit in the
// layers of what they serve:
//   error_codes, handles                — codes, handle bits and tables
//   raw::{values, calls, refs, utf8, instance} — raw Node-API calls that serve everything below (std and napi only)
//   js                                  — Node-API helpers over napi-rs and `raw`, and `Throw`
//   ledger, args                        — the contract's counters; decoding arguments
//   strings, promises, raw::tsfn        — string bytes and views; promises and thrown values; the threadsafe function
//   callbacks, posts                    — boxed JS callbacks; who waits for delivery items
//   state                               — the per-environment state that owns all of the above
//   delivery, lifecycle                 — items processed on the JS thread; load and teardown
//   bind, exports, raw::fast            — #[napi] glue; every export of the contract; the raw fast path
mod error_codes;
mod handles;
mod js;
mod raw;

mod args;
mod ledger;

mod promises;
mod strings;

mod callbacks;
mod posts;

mod state;

mod delivery;
mod lifecycle;

mod bind;
mod exports;

use napi::bindgen_prelude::Object;
use napi::{Env, JsValue};
use napi_derive::napi;

/// Runs once per environment that loads the addon: creates (or finds) the environment's state in
/// instance data and defines every export of the raw contract on `exports`.
#[napi(module_exports)]
pub fn init(exports: Object<'_>, env: Env) -> napi::Result<()> {
    let raw_env = env.raw();
    let state = lifecycle::env_state(raw_env)?;
    raw::fast::define_all(raw_env, exports.raw(), state).map_err(napi::Error::from)
}
