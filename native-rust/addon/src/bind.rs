//! How a `#[napi]` export talks to napi-rs while keeping the contract's errors.
//!
//! - **Bodies return `Result<T, Throw>`**; [`run`] ends the export: `Ok` goes back to napi-rs's generated wrapper
//!   as the value; `Err(Throw)` is thrown *here* (the contract's class, a `code` *defined* on the error with
//!   `napi_define_properties`, and its message: see `Throw::throw_into`), and napi-rs gets
//!   `Error::from_status(Status::PendingException)`. napi 3.16.1's `JsError::throw_into` checks
//!   `napi_is_exception_pending` and, for a `PendingException` error with an exception pending, throws nothing
//!   more. Not `napi::Error::new(status, msg)`: napi-rs creates it with `napi_create_error(code, msg)`, which assigns
//!   `code` with [[Set]], so a setter named `code` on `Object.prototype` would run JS in the middle of our throw.
//! - **Panics never cross the boundary**: napi-derive 3.7 catches them only with `#[napi(catch_unwind)]`, and then
//!   as a plain `Error` without our code; [`run`] catches them itself and throws `ERR_NATIVE_INTERNAL`.
//! - **Typed arguments with the contract's errors**: a typed argument of napi-rs (`f64`, `Either<String,
//!   Uint8Array>`, `Function`) that does not convert makes napi-rs throw its own error (class `Error`, a status as
//!   code, its own wording). The types here implement napi-rs's `FromNapiValue` by delegating to those same
//!   conversions and, when they fail, throwing the contract's `TypeError` (`Expected <what> for <name> but received
//!   <typeof>`) and returning `PendingException`. napi-derive converts arguments in order, so the first bad
//!   argument wins, as in the contract.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use napi::bindgen_prelude::{Either, FromNapiValue, Uint8Array};
use napi::{Env, Status, sys};

use crate::args::decode_handle;
use crate::handles::{Handle, Kind};
use crate::js::{Throw, invalid_arg_type};
use crate::lifecycle;
use crate::state::EnvCell;

/// Runs the body of a `#[napi]` export with this environment's state: see the module comment.
#[inline]
pub fn run<T>(env: &Env, body: impl FnOnce(&EnvCell) -> Result<T, Throw>) -> napi::Result<T> {
    let outcome = catch_unwind(AssertUnwindSafe(|| body(lifecycle::env_cell(env.raw())?)));
    let thrown = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(thrown)) => thrown,
        Err(panic) => Throw::internal(&format!("a #[napi] export panicked: {}", panic_message(&*panic))),
    };
    Err(raise(env.raw(), thrown))
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// Throws `thrown` into `env` (unless it is already pending) and returns the error that tells napi-rs so.
#[cold]
pub fn raise(env: sys::napi_env, thrown: Throw) -> napi::Error {
    // Throwing allocates and formats; keep even that from unwinding into Node.
    let _ = catch_unwind(AssertUnwindSafe(|| thrown.throw_into(env)));
    napi::Error::from_status(Status::PendingException)
}

/// The kind a handle argument must name, as a type (napi-derive gives a `FromNapiValue` no other parameter).
pub trait HandleKind {
    const KIND: Kind;
}

pub struct StringKind;
impl HandleKind for StringKind {
    const KIND: Kind = Kind::String;
}

/// A handle argument of kind `K`, decoded in the contract's order up to (not including) the table lookup: a number
/// (napi-rs's `f64` conversion), an integer in `[0, 2^53)`, this backend's, kind `K`, this environment's. Keeps the
/// JS value for the errors of the lookup (`String(n)`).
pub struct HandleArg<K: HandleKind> {
    pub handle: Handle,
    pub value: sys::napi_value,
    _kind: PhantomData<K>,
}

impl<K: HandleKind> FromNapiValue for HandleArg<K> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: napi-derive passes this call's env and argument.
        if unsafe { f64::from_napi_value(env, value) }.is_err() {
            return Err(raise(env, invalid_arg_type(env, "a number", "handle", value)));
        }
        let decoded = lifecycle::env_cell(env)
            .and_then(|cell| {
                let env_id = cell.try_borrow().map_err(|_| Throw::internal("reentrant call"))?.env_id;
                decode_handle(env, env_id, value, K::KIND)
            })
            .map_err(|thrown| raise(env, thrown))?;
        Ok(HandleArg { handle: decoded, value, _kind: PhantomData })
    }
}

/// `print_and_return`'s input: napi-rs's `Either<String, Uint8Array>` (a string converted to UTF-8 by Node-API, or a
/// Uint8Array, a Buffer included), with the contract's TypeError for anything else.
pub struct Input(pub Either<String, Uint8Array>);

impl FromNapiValue for Input {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: napi-derive passes this call's env and argument.
        match unsafe { Either::<String, Uint8Array>::from_napi_value(env, value) } {
            Ok(input) => Ok(Input(input)),
            Err(_) => Err(raise(env, invalid_arg_type(env, "a string or Uint8Array", "input", value))),
        }
    }
}
