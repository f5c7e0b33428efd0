//! Node-API helpers every other module uses: the error an export throws ([`Throw`], with the contract's class, a
//! *defined* `code` and message), status checks, value constructors, result objects with defined properties, and
//! what callbacks threw gathered into one error. No per-environment state.

use std::ffi::CStr;
use std::ptr;

use napi::sys;

use crate::error_codes::*;

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
    pub(crate) fn throw_into(self, env: sys::napi_env) {
        let Throw::New { class, code, message } = self else { return };
        let _ = (|| -> Option<()> {
            let ok = |status: sys::napi_status| (status == sys::Status::napi_ok).then_some(());
            let (mut text, mut code_value, mut error) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            // SAFETY: `env` is the live environment of the failing call; the out-params are locals and
            // `message`/`code` are valid for their lengths.
            unsafe {
                ok(sys::napi_create_string_utf8(
                    env,
                    message.as_ptr().cast(),
                    message.len() as isize,
                    &mut text,
                ))?;
                ok(sys::napi_create_string_utf8(
                    env,
                    code.as_ptr().cast(),
                    code.len() as isize,
                    &mut code_value,
                ))?;
                ok(match class {
                    ErrorClass::Error => sys::napi_create_error(env, ptr::null_mut(), text, &mut error),
                    ErrorClass::TypeError => {
                        sys::napi_create_type_error(env, ptr::null_mut(), text, &mut error)
                    }
                    ErrorClass::RangeError => {
                        sys::napi_create_range_error(env, ptr::null_mut(), text, &mut error)
                    }
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
pub(crate) fn failed(env: sys::napi_env, status: sys::napi_status, what: &str) -> Throw {
    let mut pending = false;
    // SAFETY: `env` is the live environment of the current callback; `pending` is a local.
    let asked = unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if asked == sys::Status::napi_ok && pending {
        Throw::Pending
    } else {
        Throw::internal(&format!("{what} failed with Node-API status {status}"))
    }
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
        Ok(got) => {
            Throw::type_error(ERR_INVALID_ARG_TYPE, format!("Expected {what} for {name} but received {got}"))
        }
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

/// An own data property, defined (`napi_define_properties`), never assigned: a setter of the same name on a prototype
/// (`Object.prototype.code`, `Array.prototype[0]`) neither runs nor swallows the value.
pub(crate) fn data_property(
    name: sys::napi_value,
    value: sys::napi_value,
    attributes: sys::napi_property_attributes,
) -> sys::napi_property_descriptor {
    sys::napi_property_descriptor {
        utf8name: ptr::null(),
        name,
        method: None,
        getter: None,
        setter: None,
        value,
        attributes,
        data: ptr::null_mut(),
    }
}

pub(crate) fn create_string(env: sys::napi_env, text: &str) -> Result<sys::napi_value, Throw> {
    let mut value = ptr::null_mut();
    // SAFETY: `text` outlives the call that copies it; `value` is a local.
    let status =
        unsafe { sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut value) };
    check(env, status, "napi_create_string_utf8")?;
    Ok(value)
}

pub(crate) fn define(
    env: sys::napi_env,
    object: sys::napi_value,
    properties: &[sys::napi_property_descriptor],
) -> Result<(), Throw> {
    if properties.is_empty() {
        return Ok(());
    }
    // SAFETY: `object` and every descriptor's name and value are values of the current scope.
    let status = unsafe { sys::napi_define_properties(env, object, properties.len(), properties.as_ptr()) };
    check(env, status, "napi_define_properties")
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
    let all = sys::PropertyAttributes::writable
        | sys::PropertyAttributes::enumerable
        | sys::PropertyAttributes::configurable;
    // 1. No JS runs in this part.
    let mut array = ptr::null_mut();
    // SAFETY: `array` is a local.
    check(env, unsafe { sys::napi_create_array_with_length(env, 0, &mut array) }, "napi_create_array")?;
    let mut elements = Vec::new();
    if elements.try_reserve_exact(errors.len()).is_err() {
        return Err(Throw::range_error(
            ERR_NATIVE_ALLOC,
            "could not allocate the list of thrown values".to_owned(),
        ));
    }
    for (index, error) in errors.iter().enumerate() {
        elements.push(data_property(create_string(env, &index.to_string())?, *error, all));
    }
    define(env, array, &elements)?;
    let message = create_string(env, &format!("{count} callbacks threw while delivering to \"{dest}\""))?;
    let code = create_string(env, ERR_CALLBACKS_THREW)?;
    let (code_name, errors_name) = (create_string(env, "code")?, create_string(env, "errors")?);

    // 2. JS may run from here (a getter, a patched constructor or iterator), and may call any export: nothing below
    // reads `errors` or `dest`.
    let mut global = ptr::null_mut();
    let mut constructor = ptr::null_mut();
    let mut aggregate = ptr::null_mut();
    // SAFETY: plain Node-API calls on this environment with locals as out-parameters.
    unsafe {
        check(env, sys::napi_get_global(env, &mut global), "napi_get_global")?;
        check(
            env,
            sys::napi_get_named_property(env, global, c"AggregateError".as_ptr(), &mut constructor),
            "napi_get_named_property",
        )?;
        let args = [array, message];
        check(
            env,
            sys::napi_new_instance(env, constructor, 2, args.as_ptr(), &mut aggregate),
            "napi_new_instance",
        )?;
    }
    // 3. Defined, as AggregateError's own `errors` is (not enumerable) and as Node's own errors carry `code`.
    let not_enumerable = sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable;
    define(
        env,
        aggregate,
        &[data_property(code_name, code, all), data_property(errors_name, array, not_enumerable)],
    )?;
    Ok(aggregate)
}

/// The pending exception, cleared; `None` if there is none.
pub(crate) fn take_exception(env: sys::napi_env) -> Option<sys::napi_value> {
    let mut pending = false;
    let mut error = ptr::null_mut();
    // SAFETY: plain queries of this environment with locals as out-parameters.
    unsafe {
        if sys::napi_is_exception_pending(env, &mut pending) != sys::Status::napi_ok || !pending {
            return None;
        }
        (sys::napi_get_and_clear_last_exception(env, &mut error) == sys::Status::napi_ok).then_some(error)
    }
}

/// `process.emitWarning(error)`.
pub(crate) fn emit_warning(env: sys::napi_env, error: sys::napi_value) {
    let (mut global, mut process, mut emit, mut result) =
        (ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: plain Node-API calls on this environment with locals as out-parameters; a failure leaves at most a
    // pending exception, which call_js clears.
    unsafe {
        if sys::napi_get_global(env, &mut global) != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"process".as_ptr(), &mut process)
                != sys::Status::napi_ok
            || sys::napi_get_named_property(env, process, c"emitWarning".as_ptr(), &mut emit)
                != sys::Status::napi_ok
        {
            return;
        }
        let _ = sys::napi_call_function(env, process, emit, 1, &error, &mut result);
        // Whatever emitWarning threw must not stay pending: settling `done` after it would fail, and Node would report
        // the leftover exception as a second warning.
        let mut pending = false;
        if sys::napi_is_exception_pending(env, &mut pending) == sys::Status::napi_ok && pending {
            let mut ignored = ptr::null_mut();
            let _ = sys::napi_get_and_clear_last_exception(env, &mut ignored);
        }
    }
}

/// `value instanceof Error`, as Node-API sees it.
pub(crate) fn is_error(env: sys::napi_env, value: sys::napi_value) -> bool {
    let mut result = false;
    // SAFETY: a plain Node-API query on a value of this environment's current scope.
    unsafe { sys::napi_is_error(env, value, &mut result) == sys::Status::napi_ok && result }
}
