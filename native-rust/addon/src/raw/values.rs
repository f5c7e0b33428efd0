//! Values whose properties are *defined*, never assigned, and the one value napi-rs has no type for at `napi3`:
//! - a coded error ([`throw_coded`]): the error of its class with `code` defined. napi-rs 3.16.1's
//!   `Env::throw_*_error(msg, Some(code))` and `Error` (via `napi_create_*_error` with a code) assign `code` with
//!   [[Set]], so a setter named `code` on `Object.prototype` or `Error.prototype` would run JS there (and could
//!   swallow the code);
//! - result objects and property lists ([`create_object`], [`define`]): napi-rs's `Object::set*` use
//!   `napi_set_named_property` / `napi_set_property` ([[Set]]: a setter on `Object.prototype` would intercept a
//!   `stats()` field or an `AggregateError`'s `code`), and its `Object::define_properties` takes `Property`s that own
//!   a `CString` name each (an allocation per name; ours are static);
//! - a BigInt ([`create_bigint_u64`], `stats().strings.addresses`): napi-rs's `BigInt` needs feature `napi6`,
//!   which turns on `napi4` (see tsfn.rs).

use std::ffi::CStr;
use std::ptr;

use napi::sys;

/// The JS error class of a thrown error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Error,
    TypeError,
    RangeError,
}

/// Writable, enumerable and configurable: what an assignment would have made.
pub(crate) const ALL: sys::napi_property_attributes = sys::PropertyAttributes::writable
    | sys::PropertyAttributes::enumerable
    | sys::PropertyAttributes::configurable;
/// Writable and configurable, not enumerable (as an `AggregateError`'s own `errors`).
pub(crate) const NOT_ENUMERABLE: sys::napi_property_attributes =
    sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable;

fn ok(status: sys::napi_status) -> Result<(), sys::napi_status> {
    if status == sys::Status::napi_ok { Ok(()) } else { Err(status) }
}

/// Throws into `env` a new error of `class` with `message`, then `code` *defined* on it (`napi_define_properties`).
pub(crate) fn throw_coded(
    env: sys::napi_env,
    class: ErrorClass,
    code: &str,
    message: &str,
) -> Result<(), sys::napi_status> {
    let (mut text, mut code_value, mut error) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: `env` is the live environment of the failing call; the out-params are locals and `message`/`code`
    // are valid for their lengths.
    unsafe {
        ok(sys::napi_create_string_utf8(env, message.as_ptr().cast(), message.len() as isize, &mut text))?;
        ok(sys::napi_create_string_utf8(env, code.as_ptr().cast(), code.len() as isize, &mut code_value))?;
        ok(match class {
            ErrorClass::Error => sys::napi_create_error(env, ptr::null_mut(), text, &mut error),
            ErrorClass::TypeError => sys::napi_create_type_error(env, ptr::null_mut(), text, &mut error),
            ErrorClass::RangeError => sys::napi_create_range_error(env, ptr::null_mut(), text, &mut error),
        })?;
    }
    let property = named_property(c"code", code_value, ALL);
    // SAFETY: `error` was just created; the descriptor's name is static and its value live.
    unsafe {
        ok(sys::napi_define_properties(env, error, 1, &property))?;
        ok(sys::napi_throw(env, error))
    }
}

fn named_property(
    name: &'static CStr,
    value: sys::napi_value,
    attributes: sys::napi_property_attributes,
) -> sys::napi_property_descriptor {
    sys::napi_property_descriptor {
        utf8name: name.as_ptr(),
        name: ptr::null_mut(),
        ..data_property(ptr::null_mut(), value, attributes)
    }
}

/// `object` as a plain object with the given own data properties, in order. Defined, never assigned: a setter of
/// the same name on `Object.prototype` does not run, so building a result can never re-enter JS. Names are static C
/// strings, so no allocation per name. At most 10 properties (on the stack); more is refused with
/// `napi_invalid_arg` (an internal error for the caller), never truncated.
pub(crate) fn define_named(
    env: sys::napi_env,
    object: sys::napi_value,
    properties: &[(&'static CStr, sys::napi_value)],
) -> Result<(), sys::napi_status> {
    const MAX: usize = 10;
    if properties.len() > MAX {
        return Err(sys::Status::napi_invalid_arg);
    }
    let mut descriptors = [named_property(c"", ptr::null_mut(), ALL); MAX];
    for (slot, (name, value)) in descriptors.iter_mut().zip(properties) {
        *slot = named_property(name, *value, ALL);
    }
    // SAFETY: `object` is a value of the current scope; each descriptor's name is NUL-terminated and static, its
    // value live.
    ok(unsafe { sys::napi_define_properties(env, object, properties.len(), descriptors.as_ptr()) })
}

/// An own data property named by a JS value, for [`define`]: defined, never assigned, so a setter of the same name
/// on a prototype (`Object.prototype.code`, `Array.prototype[0]`) neither runs nor swallows the value.
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

/// Defines `properties` (from [`data_property`]) on `object`.
pub(crate) fn define(
    env: sys::napi_env,
    object: sys::napi_value,
    properties: &[sys::napi_property_descriptor],
) -> Result<(), sys::napi_status> {
    if properties.is_empty() {
        return Ok(());
    }
    // SAFETY: `object` and every descriptor's name and value are values of the current scope.
    ok(unsafe { sys::napi_define_properties(env, object, properties.len(), properties.as_ptr()) })
}

/// A BigInt holding `value`.
pub(crate) fn create_bigint_u64(env: sys::napi_env, value: u64) -> Result<sys::napi_value, sys::napi_status> {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the current callback's environment; `out` is a local.
    ok(unsafe { sys::napi_create_bigint_uint64(env, value, &mut out) })?;
    Ok(out)
}

/// The ArrayBuffer under a typed array (`napi_get_typedarray_info`). Raw: napi-rs 3.16.1's
/// `TypedArray::from_napi_value` builds its `arraybuffer` field over the *typed array's* handle (only its byte slice
/// is the buffer's), so `.arraybuffer.raw()` is the view, not its ArrayBuffer; a view's weak reference must name the
/// real buffer, which `string_view` hands out again (views.contract: "a view whose Uint8Array was dropped but whose
/// buffer JS kept still shares the bytes").
pub(crate) fn array_buffer_of(
    env: sys::napi_env,
    array: sys::napi_value,
) -> Result<sys::napi_value, sys::napi_status> {
    let (mut kind, mut len, mut data, mut buffer, mut offset) =
        (sys::TypedarrayType::uint8_array, 0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
    // SAFETY: `array` is a typed array of the current scope; the out-params are locals.
    ok(unsafe {
        sys::napi_get_typedarray_info(env, array, &mut kind, &mut len, &mut data, &mut buffer, &mut offset)
    })?;
    Ok(buffer)
}
