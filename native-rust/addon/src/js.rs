//! Node-API helpers every other module uses: the error an export throws ([`Throw`], with the contract's class, a
//! *defined* `code` and message), status checks, value constructors, result objects with defined properties, and
//! what callbacks threw gathered into one error. No per-environment state.

use std::ffi::CStr;

use napi::bindgen_prelude::{JsObjectValue, Object, ToNapiValue, Unknown};
use napi::{Env, JsValue, ValueType, sys};

use crate::error_codes::*;
pub(crate) use crate::raw::calls::take_exception;
pub use crate::raw::values::ErrorClass;
pub(crate) use crate::raw::values::data_property;
use crate::raw::values::{ALL, NOT_ENUMERABLE};
use crate::raw::{calls, values};

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
    /// (`raw::values::throw_coded`). Not napi-rs's `throw_*_error(msg, Some(code))`, nor a code given to
    /// `napi_create_*_error`: both assign `code` with [[Set]], so a setter named `code` on
    /// `Object.prototype` or `Error.prototype` would run JS here (and could swallow the code).
    pub(crate) fn throw_into(self, env: sys::napi_env) {
        let Throw::New { class, code, message } = self else { return };
        // A failure here only happens while the environment is going away: nothing left to tell.
        let _ = values::throw_coded(env, class, code, &message);
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
pub(crate) fn failed(env: sys::napi_env, status: sys::napi_status, what: &str) -> Throw {
    if calls::exception_pending(env) {
        Throw::Pending
    } else {
        Throw::internal(&format!("{what} failed with Node-API status {status}"))
    }
}

/// For a failed napi-rs call: a JS exception it left pending propagates; anything else becomes an internal error
/// naming the call.
#[cold]
#[inline(never)]
pub(crate) fn napi_failed(env: sys::napi_env, what: &str, error: napi::Error) -> Throw {
    if calls::exception_pending(env) {
        Throw::Pending
    } else {
        Throw::internal(&format!("{what} failed: {} ({})", error.reason, error.status))
    }
}

/// `typeof value` as the contract's messages spell it (`null` for null).
pub fn type_name(env: sys::napi_env, value: sys::napi_value) -> Result<&'static str, Throw> {
    // SAFETY: `value` is a live handle of the current callback scope of `env`.
    let value = unsafe { Unknown::from_raw_unchecked(env, value) };
    let kind = value.get_type().map_err(|error| napi_failed(env, "napi_typeof", error))?;
    Ok(match kind {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::String => "string",
        ValueType::Symbol => "symbol",
        ValueType::Function => "function",
        // At feature `napi3` napi-rs has no `ValueType::BigInt` (it is `napi6`) and reports `napi_bigint` as
        // `Unknown`: the one Node-API value type (of the ten, `napi_undefined`..`napi_bigint`) not matched above
        // or below.
        ValueType::Unknown => "bigint",
        // Object and External: both are `typeof "object"` in JS.
        ValueType::Object | ValueType::External => "object",
    })
}

/// `Expected <what> for <name> but received <typeof>` (sharp's wording, the contract's form).
pub fn invalid_arg_type(env: sys::napi_env, what: &str, name: &str, value: sys::napi_value) -> Throw {
    match type_name(env, value) {
        Ok(got) => {
            Throw::type_error(ERR_INVALID_ARG_TYPE, format!("Expected {what} for {name} but received {got}"))
        }
        Err(thrown) => thrown,
    }
}

/// `String(value)` for a JS number, as JS prints it (`1.5`, `NaN`, `-1`, `1e+21`).
pub fn number_to_string(env: sys::napi_env, value: sys::napi_value) -> Result<String, Throw> {
    // SAFETY: `value` is a live number of the current scope; converting a number never runs JS.
    let value = unsafe { Unknown::from_raw_unchecked(env, value) };
    let string =
        value.coerce_to_string().map_err(|error| napi_failed(env, "napi_coerce_to_string", error))?;
    let text = string.into_utf8().map_err(|error| napi_failed(env, "napi_get_value_string_utf8", error))?;
    Ok(String::from_utf8_lossy(text.as_slice()).into_owned())
}

// Small value constructors used by the exports: napi-rs's conversions, each a single Node-API call that allocates
// nothing on success.

pub fn create_double(env: sys::napi_env, value: f64) -> CallResult {
    // SAFETY: `env` is the current callback's environment.
    unsafe { f64::to_napi_value(env, value) }.map_err(|error| napi_failed(env, "napi_create_double", error))
}

pub fn get_boolean(env: sys::napi_env, value: bool) -> CallResult {
    // SAFETY: `env` is the current callback's environment.
    unsafe { bool::to_napi_value(env, value) }.map_err(|error| napi_failed(env, "napi_get_boolean", error))
}

/// A BigInt (raw: napi-rs's `BigInt` needs `napi6`; see raw/values.rs).
pub fn create_bigint_u64(env: sys::napi_env, value: u64) -> CallResult {
    values::create_bigint_u64(env, value).map_err(|status| failed(env, status, "napi_create_bigint_uint64"))
}

/// `undefined`.
pub(crate) fn undefined(env: sys::napi_env) -> CallResult {
    // SAFETY: `env` is the current callback's environment.
    unsafe { <()>::to_napi_value(env, ()) }.map_err(|error| napi_failed(env, "napi_get_undefined", error))
}

/// A plain object with the given own data properties, in order: napi-rs's `Object::new`, then the properties
/// defined, never assigned (`raw::values::define_named`): a setter of the same name on `Object.prototype` does not
/// run, so building a result can never re-enter JS. Names are static C strings, so no allocation per name.
pub fn create_object(env: sys::napi_env, properties: &[(&'static CStr, sys::napi_value)]) -> CallResult {
    let object = Object::new(&Env::from_raw(env))
        .map_err(|error| napi_failed(env, "napi_create_object", error))?
        .raw();
    values::define_named(env, object, properties)
        .map_err(|status| failed(env, status, "napi_define_properties"))?;
    Ok(object)
}

pub(crate) fn create_string(env: sys::napi_env, text: &str) -> Result<sys::napi_value, Throw> {
    // SAFETY: `text` outlives the call that copies it.
    unsafe { <&str>::to_napi_value(env, text) }
        .map_err(|error| napi_failed(env, "napi_create_string_utf8", error))
}

/// Defines own data properties (`raw::values::data_property`) on `object`: never assigned, so no setter runs.
pub(crate) fn define(
    env: sys::napi_env,
    object: sys::napi_value,
    properties: &[sys::napi_property_descriptor],
) -> Result<(), Throw> {
    values::define(env, object, properties).map_err(|status| failed(env, status, "napi_define_properties"))
}

/// What callbacks threw while delivering to `dest`, as one value: the thrown value itself if exactly one threw,
/// else an `AggregateError` with code `ERR_CALLBACKS_THREW` and message `<count> callbacks threw while delivering to
/// "<dest>"`, whose `errors` are the recorded values in delivery order (`count` may exceed them: values that could
/// not be recorded are still counted).
///
/// `errors` and `dest` are read before the first call that can run JS (the `AggregateError` lookup and
/// construction); the list's elements, `code` and `errors` are defined, so no setter runs, and `errors` is the list
/// even if a patched Array iterator made the constructor's own copy come out different.
pub fn collected_error(
    env: sys::napi_env,
    errors: &[sys::napi_value],
    count: usize,
    dest: &str,
    unwrap_single: bool,
) -> Result<sys::napi_value, Throw> {
    if unwrap_single && count == 1 && errors.len() == 1 {
        return Ok(errors[0]);
    }
    let napi_env = Env::from_raw(env);
    // 1. No JS runs in this part.
    let array = napi_env.create_array(0).map_err(|error| napi_failed(env, "napi_create_array", error))?.raw();
    let mut elements = Vec::new();
    if elements.try_reserve_exact(errors.len()).is_err() {
        return Err(Throw::range_error(
            ERR_NATIVE_ALLOC,
            "could not allocate the list of thrown values".to_owned(),
        ));
    }
    for (index, error) in errors.iter().enumerate() {
        elements.push(data_property(create_string(env, &index.to_string())?, *error, ALL));
    }
    define(env, array, &elements)?;
    let message = create_string(env, &format!("{count} callbacks threw while delivering to \"{dest}\""))?;
    let code = create_string(env, ERR_CALLBACKS_THREW)?;
    let (code_name, errors_name) = (create_string(env, "code")?, create_string(env, "errors")?);

    // 2. JS may run from here (a getter, a patched constructor or iterator), and may call any export: nothing below
    // reads `errors` or `dest`.
    // napi-rs's property read leaves what a getter threw pending (`napi_failed` propagates it); the construction is
    // raw (`raw::calls::new_instance`), as napi-rs's `Function::new_instance` would clear what it threw.
    let global = napi_env.get_global().map_err(|error| napi_failed(env, "napi_get_global", error))?;
    let constructor = global
        .get_named_property_unchecked::<Unknown>("AggregateError")
        .map_err(|error| napi_failed(env, "napi_get_named_property", error))?;
    let aggregate = calls::new_instance(env, constructor.raw(), &[array, message])
        .map_err(|status| failed(env, status, "napi_new_instance"))?;
    // 3. Defined, as AggregateError's own `errors` is (not enumerable) and as Node's own errors carry `code`.
    define(
        env,
        aggregate,
        &[data_property(code_name, code, ALL), data_property(errors_name, array, NOT_ENUMERABLE)],
    )?;
    Ok(aggregate)
}

/// `process.emitWarning(error)`. Whatever it throws is cleared: settling `done` after it would fail, and Node would
/// report the leftover exception as a second warning.
pub(crate) fn emit_warning(env: sys::napi_env, error: sys::napi_value) {
    let napi_env = Env::from_raw(env);
    let emit = || -> napi::Result<()> {
        let process = napi_env.get_global()?.get_named_property_unchecked::<Object>("process")?;
        let emit = process.get_named_property_unchecked::<Unknown>("emitWarning")?;
        let _ = calls::call_catching(env, process.raw(), emit.raw(), &[error]);
        Ok(())
    };
    if emit().is_err() {
        // A getter threw (or `process` is gone): nothing may stay pending for call_js either.
        let _ = take_exception(env);
    }
}

/// `value instanceof Error`, as Node-API sees it.
pub(crate) fn is_error(env: sys::napi_env, value: sys::napi_value) -> bool {
    // SAFETY: a value of this environment's current scope.
    unsafe { Unknown::from_raw_unchecked(env, value) }.is_error().unwrap_or(false)
}
