//! The thin layer between Node-API callbacks and our exports: argument fetching, errors with a
//! `code`, and panics turned into JS errors.
//!
//! Why not `#[napi] fn`: napi-derive 3.7's generated wrapper for a function with arguments opens a
//! native-borrow scope per call (an `Arc<Mutex<..>>` allocation plus thread-local bookkeeping).
//! Measured on this machine that is ~110 ns for a one-argument call against ~18 ns for a plain
//! Node-API callback, which alone would blow the contract's budget for the raw round trip
//! (print_and_return + free_string <= 15x a no-op call). So every export here is a plain
//! `napi_callback` defined on `exports` by the module init (`napi_define_properties`, with the
//! environment's state as callback data), and this file gives them the guarantees the macro would:
//! no panic crosses the boundary, every error is thrown once, with the contract's class, code and
//! message.

use std::ffi::{CStr, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use crate::error_codes::*;
use napi::sys;

use crate::state::EnvCell;

/// The JS error class of a thrown error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Error,
    TypeError,
    RangeError,
}

/// Why a call did not return a value.
#[derive(Debug)]
pub enum Throw {
    /// Throw a new error of this class with this `code` and message.
    New { class: ErrorClass, code: &'static str, message: String },
    /// A JS exception is already pending (a Node-API call failed because of it): let it propagate.
    Pending,
}


impl From<Throw> for napi::Error {
    /// For the module init, which reports through napi-rs.
    fn from(thrown: Throw) -> Self {
        match thrown {
            Throw::New { message, .. } => napi::Error::from_reason(message),
            Throw::Pending => napi::Error::from_status(napi::Status::PendingException),
        }
    }
}

impl Throw {
    pub fn type_error(code: &'static str, message: String) -> Self {
        Throw::New { class: ErrorClass::TypeError, code, message }
    }

    pub fn range_error(code: &'static str, message: String) -> Self {
        Throw::New { class: ErrorClass::RangeError, code, message }
    }

    pub fn error(code: &'static str, message: String) -> Self {
        Throw::New { class: ErrorClass::Error, code, message }
    }

    pub fn internal(what: &str) -> Self {
        Throw::error(ERR_NATIVE_INTERNAL, format!("internal error in the rust backend: {what}"))
    }

    /// Throws into `env`: a new error of the class with its message, then `code` *defined* on it
    /// (`napi_define_properties`). Not napi-rs's `throw_*_error(msg, Some(code))`, nor a code given to
    /// `napi_create_*_error`: both assign `code` with [[Set]], so a setter named `code` on
    /// `Object.prototype` or `Error.prototype` would run JS here (and could swallow the code).
    fn throw_into(self, env: sys::napi_env) {
        let Throw::New { class, code, message } = self else { return };
        let _ = (|| -> Option<()> {
            let ok = |status: sys::napi_status| (status == sys::Status::napi_ok).then_some(());
            let (mut text, mut code_value, mut error) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            // SAFETY: `env` is the live environment of the failing call; the out-params are locals and
            // `message`/`code` are valid for their lengths.
            unsafe {
                ok(sys::napi_create_string_utf8(env, message.as_ptr().cast(), message.len() as isize, &mut text))?;
                ok(sys::napi_create_string_utf8(env, code.as_ptr().cast(), code.len() as isize, &mut code_value))?;
                ok(match class {
                    ErrorClass::Error => sys::napi_create_error(env, ptr::null_mut(), text, &mut error),
                    ErrorClass::TypeError => sys::napi_create_type_error(env, ptr::null_mut(), text, &mut error),
                    ErrorClass::RangeError => sys::napi_create_range_error(env, ptr::null_mut(), text, &mut error),
                })?;
            }
            let property = sys::napi_property_descriptor {
                utf8name: c"code".as_ptr(),
                name: ptr::null_mut(),
                method: None,
                getter: None,
                setter: None,
                value: code_value,
                attributes: sys::PropertyAttributes::writable
                    | sys::PropertyAttributes::enumerable
                    | sys::PropertyAttributes::configurable,
                data: ptr::null_mut(),
            };
            // SAFETY: `error` was just created; the descriptor's name is static and its value live.
            unsafe {
                ok(sys::napi_define_properties(env, error, 1, &property))?;
                ok(sys::napi_throw(env, error))
            }
        })();
        // A failure here only happens while the environment is going away: nothing left to tell.
    }
}

pub type CallResult = Result<sys::napi_value, Throw>;

/// Checks a Node-API status: `napi_ok` passes; a failure caused by a pending JS exception
/// propagates it; anything else becomes an internal error naming the call.
#[inline]
pub fn check(env: sys::napi_env, status: sys::napi_status, what: &str) -> Result<(), Throw> {
    if status == sys::Status::napi_ok { Ok(()) } else { Err(failed(env, status, what)) }
}

/// The slow half of [`check`], kept out of line so the hot paths stay small.
#[cold]
#[inline(never)]
fn failed(env: sys::napi_env, status: sys::napi_status, what: &str) -> Throw {
    let mut pending = false;
    // SAFETY: `env` is the live environment of the current callback; `pending` is a local.
    let asked = unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if asked == sys::Status::napi_ok && pending {
        Throw::Pending
    } else {
        Throw::internal(&format!("{what} failed with Node-API status {status}"))
    }
}

/// One call of an export: the environment, its per-environment state and up to `N` arguments
/// (missing ones read as `undefined`).
pub struct Call<'a, const N: usize> {
    pub env: sys::napi_env,
    pub state: &'a EnvCell,
    pub args: [sys::napi_value; N],
}

/// An export of the raw contract with `N` parameters.
pub trait Export<const N: usize> {
    /// The JS name, exactly as the contract spells it.
    const NAME: &'static CStr;
    fn call(call: &Call<'_, N>) -> CallResult;
}

/// The `napi_callback` registered for export `E`. `data` is the environment's `EnvCell`, given to
/// `napi_define_properties` by the module init (so no `napi_get_instance_data` per call).
///
/// # Safety
/// Only Node calls this, on the environment's JS thread, with the `info` of a call to a function
/// defined by [`crate::init`] (whose data pointer is that environment's live `EnvCell`).
pub unsafe extern "C" fn trampoline<const N: usize, E: Export<N>>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut argc = N;
        let mut args = [ptr::null_mut(); N];
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: `env`/`info` come from Node for this call; `args` has room for `argc` values and
        // Node fills missing arguments with `undefined`.
        let status = unsafe {
            sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), &mut data)
        };
        check(env, status, "napi_get_cb_info")?;
        if data.is_null() {
            return Err(Throw::internal("function called without its environment state"));
        }
        // SAFETY: `data` is the `EnvCell` the module init created for this environment and gave to
        // `napi_define_properties`; instance data owns it until the environment is torn down, after
        // which no JS (so no call of this function) runs. We only borrow it for this call.
        let state = unsafe { &*data.cast::<EnvCell>() };
        E::call(&Call { env, state, args })
    }));
    let thrown = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(thrown)) => thrown,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            Throw::internal(&format!("{} panicked: {what}", E::NAME.to_string_lossy()))
        }
    };
    // Throwing allocates and formats; keep even that from unwinding into Node.
    let _ = catch_unwind(AssertUnwindSafe(|| thrown.throw_into(env)));
    ptr::null_mut()
}

/// `typeof value` as the contract's messages spell it (`null` for null).
pub fn type_name(env: sys::napi_env, value: sys::napi_value) -> Result<&'static str, Throw> {
    let mut kind = sys::ValueType::napi_undefined;
    // SAFETY: `value` is a live handle of the current callback scope; `kind` is a local.
    let status = unsafe { sys::napi_typeof(env, value, &mut kind) };
    check(env, status, "napi_typeof")?;
    Ok(match kind {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "boolean",
        sys::ValueType::napi_number => "number",
        sys::ValueType::napi_string => "string",
        sys::ValueType::napi_symbol => "symbol",
        sys::ValueType::napi_function => "function",
        sys::ValueType::napi_bigint => "bigint",
        // napi_object and napi_external: both are `typeof "object"` in JS.
        _ => "object",
    })
}

/// `Expected <what> for <name> but received <typeof>` (sharp's wording, the contract's form).
pub fn invalid_arg_type(env: sys::napi_env, what: &str, name: &str, value: sys::napi_value) -> Throw {
    match type_name(env, value) {
        Ok(got) => Throw::type_error(
            ERR_INVALID_ARG_TYPE,
            format!("Expected {what} for {name} but received {got}"),
        ),
        Err(thrown) => thrown,
    }
}

/// `String(value)` for a JS number, as JS prints it (`1.5`, `NaN`, `-1`, `1e+21`).
pub fn number_to_string(env: sys::napi_env, value: sys::napi_value) -> Result<String, Throw> {
    let mut string = ptr::null_mut();
    // SAFETY: `value` is a live number of the current scope; converting a number never runs JS.
    let status = unsafe { sys::napi_coerce_to_string(env, value, &mut string) };
    check(env, status, "napi_coerce_to_string")?;
    // A number prints as ASCII in well under 32 bytes.
    let mut buffer = [0u8; 32];
    let mut written = 0usize;
    // SAFETY: `buffer` has room for `buffer.len()` bytes including the NUL Node-API writes.
    let status = unsafe {
        sys::napi_get_value_string_utf8(env, string, buffer.as_mut_ptr().cast(), buffer.len(), &mut written)
    };
    check(env, status, "napi_get_value_string_utf8")?;
    Ok(String::from_utf8_lossy(&buffer[..written]).into_owned())
}

// Small value constructors used by the exports. Each is a single Node-API call.

pub fn create_double(env: sys::napi_env, value: f64) -> CallResult {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the current callback's environment; `out` is a local.
    let status = unsafe { sys::napi_create_double(env, value, &mut out) };
    check(env, status, "napi_create_double")?;
    Ok(out)
}

pub fn get_boolean(env: sys::napi_env, value: bool) -> CallResult {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the current callback's environment; `out` is a local.
    let status = unsafe { sys::napi_get_boolean(env, value, &mut out) };
    check(env, status, "napi_get_boolean")?;
    Ok(out)
}

pub fn create_bigint_u64(env: sys::napi_env, value: u64) -> CallResult {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the current callback's environment; `out` is a local.
    let status = unsafe { sys::napi_create_bigint_uint64(env, value, &mut out) };
    check(env, status, "napi_create_bigint_uint64")?;
    Ok(out)
}

/// A plain object with the given own data properties, in order. Defined (`napi_define_properties`), never assigned:
/// a setter of the same name on `Object.prototype` does not run, so building a result can never re-enter JS. Names
/// are static C strings, so no allocation per name on our side.
pub fn create_object(env: sys::napi_env, properties: &[(&CStr, sys::napi_value)]) -> CallResult {
    const MAX: usize = 10;
    debug_assert!(properties.len() <= MAX);
    let mut object = ptr::null_mut();
    // SAFETY: `env` is the current callback's environment; `object` is a local.
    let status = unsafe { sys::napi_create_object(env, &mut object) };
    check(env, status, "napi_create_object")?;
    let descriptor = |(name, value): &(&CStr, sys::napi_value)| sys::napi_property_descriptor {
        utf8name: name.as_ptr(),
        name: ptr::null_mut(),
        method: None,
        getter: None,
        setter: None,
        value: *value,
        attributes: sys::PropertyAttributes::writable
            | sys::PropertyAttributes::enumerable
            | sys::PropertyAttributes::configurable,
        data: ptr::null_mut(),
    };
    let mut descriptors = [descriptor(&(c"", ptr::null_mut())); MAX];
    let count = properties.len().min(MAX);
    for (slot, property) in descriptors.iter_mut().zip(&properties[..count]) {
        *slot = descriptor(property);
    }
    // SAFETY: `object` was just created; each descriptor's name is NUL-terminated and static, its value live.
    let status = unsafe { sys::napi_define_properties(env, object, count, descriptors.as_ptr()) };
    check(env, status, "napi_define_properties")?;
    Ok(object)
}
