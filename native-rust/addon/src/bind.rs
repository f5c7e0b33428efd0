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

use std::ffi::CStr;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use napi::bindgen_prelude::{Either, FromNapiValue, Function, ToNapiValue, Uint8Array};
use napi::{Env, Status, sys};

use crate::args::{Utf8Arg, decode_handle, read_dest, read_message};
use crate::error_codes::*;
use crate::handles::{Handle, Kind};
use crate::js::{Throw, invalid_arg_type, number_to_string, type_name};
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

/// A handle argument of kind `K`, decoded in the contract's order up to (not including) the table lookup: a number,
/// an integer in `[0, 2^53)`, this backend's, kind `K`, this environment's. Keeps the
/// JS value for the errors of the lookup (`String(n)`).
pub struct HandleArg<K: HandleKind> {
    pub handle: Handle,
    pub value: sys::napi_value,
    _kind: PhantomData<K>,
}

impl<K: HandleKind> FromNapiValue for HandleArg<K> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // `decode_handle` reads the number (`napi_get_value_double`, as napi-rs's `f64` conversion does) and throws
        // the contract's TypeError for anything else.
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

pub struct SubscriptionKind;
impl HandleKind for SubscriptionKind {
    const KIND: Kind = Kind::Subscription;
}

pub struct ProducerKind;
impl HandleKind for ProducerKind {
    const KIND: Kind = Kind::Producer;
}

/// A value this call already made in its handle scope (a result object with defined properties, a view, a
/// promise), returned as is.
pub struct Js(pub sys::napi_value);

impl ToNapiValue for Js {
    unsafe fn to_napi_value(_env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        Ok(value.0)
    }
}

/// The name and the bound of an integer argument, as a type.
pub trait IntegerName {
    const NAME: &'static str;
    const MAX: u32;
}

/// An integer argument in `[0, N::MAX]`: napi-rs's `f64` conversion, then the contract's range check.
/// `ERR_INVALID_ARG_TYPE` if not a number, `ERR_OUT_OF_RANGE` otherwise.
pub struct Integer<N: IntegerName>(pub u32, PhantomData<N>);

impl<N: IntegerName> FromNapiValue for Integer<N> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        read_integer(env, value, N::NAME, N::MAX)
            .map(|n| Integer(n, PhantomData))
            .map_err(|thrown| raise(env, thrown))
    }
}

/// An integer argument in `[0, max]`: `ERR_INVALID_ARG_TYPE` if not a number, `ERR_OUT_OF_RANGE` otherwise.
pub fn read_integer(env: sys::napi_env, value: sys::napi_value, name: &str, max: u32) -> Result<u32, Throw> {
    // SAFETY: `value` is an argument of the current call.
    let Ok(number) = (unsafe { f64::from_napi_value(env, value) }) else {
        return Err(invalid_arg_type(env, "a number", name, value));
    };
    // NaN fails both comparisons; -0 is the integer 0, as for Number.isInteger.
    if number >= 0.0 && number <= f64::from(max) && number.fract() == 0.0 {
        return Ok(number as u32);
    }
    Err(Throw::range_error(
        ERR_OUT_OF_RANGE,
        format!(
            "The value of \"{name}\" is out of range. It must be an integer from 0 to {max}. Received {}",
            number_to_string(env, value)?
        ),
    ))
}

/// A `dest` argument: a string, non-empty, without NUL (the contract's checks, in that order), read into a stack
/// buffer when short.
pub struct Dest(Utf8Arg);

impl Dest {
    pub fn c_str(&self) -> &CStr {
        self.0.c_str().expect("checked when the argument was read")
    }

    pub fn as_str(&self) -> Result<&str, Throw> {
        self.0.as_str()
    }
}

impl FromNapiValue for Dest {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut dest = Utf8Arg::new();
        read_dest(env, value, &mut dest).map_err(|thrown| raise(env, thrown))?;
        Ok(Dest(dest))
    }
}

/// `cancel`'s optional `dest`: `undefined` is none; anything else must be a [`Dest`] (so `null` is a TypeError).
pub struct OptionalDest(pub Option<Dest>);

impl FromNapiValue for OptionalDest {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let undefined = type_name(env, value).map_err(|thrown| raise(env, thrown))? == "undefined";
        if undefined {
            return Ok(OptionalDest(None));
        }
        // SAFETY: as for Dest.
        unsafe { Dest::from_napi_value(env, value) }.map(|dest| OptionalDest(Some(dest)))
    }
}

/// A `message` argument: a string without NUL, and the JS string itself (what `send` hands every callback).
pub struct Message {
    text: Utf8Arg,
    pub value: sys::napi_value,
}

impl Message {
    pub fn c_str(&self) -> &CStr {
        self.text.c_str().expect("checked when the argument was read")
    }
}

impl FromNapiValue for Message {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut text = Utf8Arg::new();
        read_message(env, value, &mut text).map_err(|thrown| raise(env, thrown))?;
        Ok(Message { text, value })
    }
}

/// A `callback` argument: napi-rs's `Function`, after the contract's check that it is one (napi-rs's own
/// `Function` conversion accepts any value).
pub struct Callback<'env>(pub Function<'env, (), ()>);

impl FromNapiValue for Callback<'_> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let is_function = type_name(env, value).map_err(|thrown| raise(env, thrown))? == "function";
        if !is_function {
            return Err(raise(env, invalid_arg_type(env, "a function", "callback", value)));
        }
        // SAFETY: `value` is a function argument of this call.
        unsafe { Function::from_napi_value(env, value) }.map(Callback)
    }
}
