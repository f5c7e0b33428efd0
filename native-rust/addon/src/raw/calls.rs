//! Calling a JS function (or constructor) and taking back what it threw *as a JS value*, and the pending-exception
//! queries that needs.
//!
//! Why raw: napi-rs 3.16.1's `Function::call` / `new_instance` clear a pending exception and turn it into a
//! `napi::Error` (a reason string plus a reference to the value), so a thrown value would come back as something
//! else, or an exception our caller must see would no longer be pending; and napi-rs has no public
//! `napi_is_exception_pending` / `napi_get_and_clear_last_exception`. The contract hands every thrown value back
//! unchanged (to `send`'s caller, in an `AggregateError`, to a post's promise), so these stay Node-API calls.

use std::ptr;

use napi::sys;

/// Whether a JS exception is pending in `env`.
pub(crate) fn exception_pending(env: sys::napi_env) -> bool {
    let mut pending = false;
    // SAFETY: a plain query of the live environment of the current call; `pending` is a local.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) == sys::Status::napi_ok && pending }
}

/// The pending exception, cleared; `None` if there is none (or it could not be taken).
pub(crate) fn take_exception(env: sys::napi_env) -> Option<sys::napi_value> {
    if !exception_pending(env) {
        return None;
    }
    let mut error = ptr::null_mut();
    // SAFETY: an exception is pending in this live environment; `error` is a local.
    let status = unsafe { sys::napi_get_and_clear_last_exception(env, &mut error) };
    (status == sys::Status::napi_ok).then_some(error)
}

/// `function.call(this, ...args)`; a failure leaves what it threw pending (the caller decides).
pub(crate) fn call_function(
    env: sys::napi_env,
    this: sys::napi_value,
    function: sys::napi_value,
    args: &[sys::napi_value],
) -> Result<sys::napi_value, sys::napi_status> {
    let mut result = ptr::null_mut();
    // SAFETY: `this`, `function` and `args` are values of the current handle scope of this environment; `args`
    // is valid for `args.len()` values; `result` is a local. The call may run any JS (callers hold no borrow).
    let status =
        unsafe { sys::napi_call_function(env, this, function, args.len(), args.as_ptr(), &mut result) };
    if status == sys::Status::napi_ok { Ok(result) } else { Err(status) }
}

/// `function.call(this, ...args)`, taking back what it threw: `Err(Some(thrown))`, with the exception cleared, or
/// `Err(None)` if the call failed with nothing pending (JS can no longer run, e.g. a terminating worker).
pub(crate) fn call_catching(
    env: sys::napi_env,
    this: sys::napi_value,
    function: sys::napi_value,
    args: &[sys::napi_value],
) -> Result<sys::napi_value, Option<sys::napi_value>> {
    call_function(env, this, function, args).map_err(|_| take_exception(env))
}

/// `new constructor(...args)`; a failure leaves what it threw pending (our caller's `check` reports it).
pub(crate) fn new_instance(
    env: sys::napi_env,
    constructor: sys::napi_value,
    args: &[sys::napi_value],
) -> Result<sys::napi_value, sys::napi_status> {
    let mut instance = ptr::null_mut();
    // SAFETY: values of the current handle scope; `args` is valid for `args.len()` values; `instance` a local.
    let status =
        unsafe { sys::napi_new_instance(env, constructor, args.len(), args.as_ptr(), &mut instance) };
    if status == sys::Status::napi_ok { Ok(instance) } else { Err(status) }
}

/// The first `N` arguments of a raw `napi_callback`'s call (missing ones read as `undefined`).
///
/// For the Promise executor (promises.rs), a raw callback because napi-rs makes a function from a closure only with
/// feature `napi5`, which turns on `napi4` (see tsfn.rs).
pub(crate) fn callback_args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Option<[sys::napi_value; N]> {
    let mut argc = N;
    let mut args = [ptr::null_mut(); N];
    // SAFETY: `info` is the current callback's (the caller is that callback); `args` has room for `argc` values.
    let status = unsafe {
        sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), ptr::null_mut())
    };
    (status == sys::Status::napi_ok).then_some(args)
}
