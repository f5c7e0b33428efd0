//! Reading a JS string's UTF-8 into a buffer the caller owns (args.rs's `Utf8Arg`: a stack buffer for `dest` and
//! `message` of `send`/`post`/`register`, an exactly sized heap buffer for longer ones).
//!
//! Why raw: napi-rs 3.16.1's `String` / `JsString::into_utf8` always allocate a heap buffer (`utf8_len` then a
//! `Vec`); `send`/`post` read their `dest` and `message` without allocating when short (a design choice for the hot
//! paths, not separately measured: fast.rs's table has `send` as a whole).

use std::mem::MaybeUninit;

use napi::sys;

/// Copies `value` (a string) into `buffer` as UTF-8 with a NUL, truncated at a character boundary to fit; the bytes
/// written, without the NUL. `Err(napi_string_expected)` if `value` is not a string.
pub(crate) fn read_utf8(
    env: sys::napi_env,
    value: sys::napi_value,
    buffer: &mut [MaybeUninit<u8>],
) -> Result<usize, sys::napi_status> {
    let mut written = 0usize;
    // SAFETY: `buffer` is writable for `buffer.len()` bytes, NUL included; `value` is of the current scope.
    let status = unsafe {
        sys::napi_get_value_string_utf8(env, value, buffer.as_mut_ptr().cast(), buffer.len(), &mut written)
    };
    if status == sys::Status::napi_ok { Ok(written) } else { Err(status) }
}

/// The UTF-8 length of the string `value`, without a NUL.
pub(crate) fn utf8_len(env: sys::napi_env, value: sys::napi_value) -> Result<usize, sys::napi_status> {
    let mut len = 0usize;
    // SAFETY: a NULL buffer asks only for the length; `len` is a local.
    let status = unsafe { sys::napi_get_value_string_utf8(env, value, std::ptr::null_mut(), 0, &mut len) };
    if status == sys::Status::napi_ok { Ok(len) } else { Err(status) }
}
