//! The fenced raw fast path: `print_and_return`, `free_string` and `noop` as plain Node-API callbacks
//! (`napi::sys`), defined on `exports` by the module init with the environment's state as callback data. Every
//! other export is a `#[napi]` function; these three have idiomatic twins (`*_idiomatic` in exports/strings.rs) with
//! the same contract, table and errors, so `npm run bench` shows what napi-rs's wrapper costs.
//!
//! Why raw: since napi 3.12.1 / napi-derive 3.6.3 the wrapper napi-derive generates for a function with arguments
//! opens a native-borrow scope per call (a heap allocation plus thread-local bookkeeping), and `Either<String,
//! Uint8Array>` adds a `String` allocation or a reference to the Uint8Array. Measured on this machine (2 cores,
//! Node 20.20.2, napi 3.16.1 / napi-derive 3.7.0, release build, best of 5 runs of 2M calls, ns per call):
//!
//! | call                                         | raw (this file) | `#[napi]` twin |
//! | -------------------------------------------- | --------------- | -------------- |
//! | `noop()`                                     |            12.8 |           25.3 |
//! | `free_string(h)` (released handle: `false`)  |            30.4 |          128.4 |
//! | `print_and_return(string)` + `free_string`   |           130.3 |          444.2 |
//! | `print_and_return(Uint8Array)` + `free_string` |         182.2 |          742.3 |
//!
//! (`noop_idiomatic` has no arguments, so its wrapper opens no borrow scope; each argument adds one, and
//! `Either<String, Uint8Array>` adds a `String` allocation or a strong reference to the Uint8Array.)
//!
//! What the other exports pay for being `#[napi]` (the same calls on this branch's parent, c813cd7, where every
//! export was a raw callback; same machine and Node, 1M calls, the better of two runs, ns per call):
//!
//! | call                               | raw (c813cd7) | `#[napi]` now |
//! | ---------------------------------- | ------------- | ------------- |
//! | `subscription_active(h)`           |            32 |           115 |
//! | `string_view(h)` (the cached view) |            36 |           120 |
//! | `string_text(h)`, 16 B             |            54 |           159 |
//! | `send(dest, msg)` to 1 handler     |           187 |           320 |
//! | `string_text(h)`, 1 MiB            |       913 000 |       909 000 |
//! | `post(dest, msg)`, 256 in flight   |   1 500–2 300 |   2 200–2 500 |
//!
//! The contract's budget for the raw round trip (print_and_return + free_string <= 15x a no-op call) needs the raw
//! path; the idiomatic one is shown beside it, not hidden.

use std::ffi::{CStr, c_void};
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use napi::sys;
use napi_ownership_core::{CoreString, FillError};

use crate::args::{STACK_BUFFER_LEN, STACK_STRING_MAX, decode_handle};
use crate::bind::panic_message;
use crate::exports::strings::{release_handle, store};
use crate::handles::Kind;
use crate::js::{CallResult, Throw, check, create_double, get_boolean, invalid_arg_type};
use crate::ledger::Release;
use crate::state::{EnvCell, EnvState};
use crate::strings::{copy_error, copy_in_core, trace_input};

/// `noop()`: nothing, the benchmark floor. It goes through the same trampoline as the other fast exports, so
/// it measures the fixed cost of a raw call into this addon.
pub struct Noop;

impl Export<0> for Noop {
    const NAME: &'static CStr = c"noop";

    fn call(_call: &Call<'_, 0>) -> CallResult {
        // A NULL result is `undefined` in JS.
        Ok(ptr::null_mut())
    }
}

/// Reads a JS string as UTF-8 and copies it in the core: through a stack buffer when it fits in
/// `STACK_STRING_MAX` bytes, else through an exactly sized heap buffer. `None` if not a string.
pub(crate) fn copy_js_string(
    env: sys::napi_env,
    value: sys::napi_value,
) -> Result<Option<CoreString>, Throw> {
    let mut stack = [MaybeUninit::<u8>::uninit(); STACK_BUFFER_LEN];
    let mut written = 0usize;
    // SAFETY: `stack` has room for STACK_BUFFER_LEN bytes including the NUL Node-API writes.
    let status = unsafe {
        sys::napi_get_value_string_utf8(env, value, stack.as_mut_ptr().cast(), STACK_BUFFER_LEN, &mut written)
    };
    if status == sys::Status::napi_string_expected {
        return Ok(None);
    }
    check(env, status, "napi_get_value_string_utf8")?;
    if written <= STACK_STRING_MAX {
        // Node-API initialised the first `written` bytes of `stack`.
        let data = stack.as_ptr().cast::<u8>();
        trace_input(data, written, "UTF-8 copy of a JS string");
        return copy_in_core(data, written).map(Some);
    }

    let mut len = 0usize;
    // SAFETY: a NULL buffer asks only for the UTF-8 length.
    let status = unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len) };
    check(env, status, "napi_get_value_string_utf8")?;
    // Converted straight into the core's memory (no staging buffer, no second copy of a long string); the core
    // checks what was written and owns it from here (freed by the core when the CoreString drops).
    let filled = CoreString::fill(len, |room| {
        let mut written = 0usize;
        // SAFETY: `room` is `len + 1` writable bytes (string and NUL); no JS runs between the two calls, so the
        // string is the one just measured.
        let status = unsafe {
            sys::napi_get_value_string_utf8(env, value, room.as_mut_ptr().cast(), room.len(), &mut written)
        };
        check(env, status, "napi_get_value_string_utf8").map(|()| written)
    });
    match filled {
        Ok(string) => {
            trace_input(string.as_ptr().cast(), string.len(), "UTF-8 written straight into the core's copy");
            Ok(Some(string))
        }
        Err(FillError::Fill(thrown)) => Err(thrown),
        Err(FillError::Copy(error)) => Err(copy_error(error, len)),
    }
}

/// Reads a Uint8Array in place (no copy on the way in). `None` if not a Uint8Array.
pub(crate) fn copy_uint8array(
    env: sys::napi_env,
    value: sys::napi_value,
) -> Result<Option<CoreString>, Throw> {
    let mut is_typed_array = false;
    // SAFETY: `value` is an argument of the current call.
    let status = unsafe { sys::napi_is_typedarray(env, value, &mut is_typed_array) };
    check(env, status, "napi_is_typedarray")?;
    if !is_typed_array {
        return Ok(None);
    }
    let mut kind = sys::TypedarrayType::int8_array;
    let mut len = 0usize;
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: `value` is a TypedArray; out-params are locals, unused ones NULL.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env,
            value,
            &mut kind,
            &mut len,
            &mut data,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    check(env, status, "napi_get_typedarray_info")?;
    if kind != sys::TypedarrayType::uint8_array {
        return Ok(None);
    }
    // Node-API reports `data` (already offset by byteOffset) valid for `len` bytes; the array is an
    // argument, so it stays alive for this call and no JS on this thread runs meanwhile.
    trace_input(data.cast_const().cast(), len, "Uint8Array read in place");
    copy_in_core(data.cast_const().cast(), len).map(Some)
}

pub struct PrintAndReturn;

impl Export<1> for PrintAndReturn {
    const NAME: &'static CStr = c"print_and_return";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let (env, input) = (call.env, call.args[0]);
        let copy = match copy_js_string(env, input)? {
            Some(copy) => copy,
            None => copy_uint8array(env, input)?
                .ok_or_else(|| invalid_arg_type(env, "a string or Uint8Array", "input", input))?,
        };
        create_double(env, store(call.state, env, copy)?)
    }
}

pub struct FreeString;

impl Export<1> for FreeString {
    const NAME: &'static CStr = c"free_string";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let env = call.env;
        let env_id = borrow_state(call)?.env_id;
        let handle = decode_handle(env, env_id, call.args[0], Kind::String)?;
        get_boolean(env, release_handle(call.state, env, handle, call.args[0], Release::Freed)?)
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// The trampoline: what napi-derive's wrapper does, without the per-call borrow scope

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
            Throw::internal(&format!("{} panicked: {}", E::NAME.to_string_lossy(), panic_message(&*panic)))
        }
    };
    // Throwing allocates and formats; keep even that from unwinding into Node.
    let _ = catch_unwind(AssertUnwindSafe(|| thrown.throw_into(env)));
    ptr::null_mut()
}

/// The environment's state for one step of an export (never held across a call into JS).
pub fn borrow_state<'a, const N: usize>(
    call: &'a Call<'_, N>,
) -> Result<std::cell::RefMut<'a, EnvState>, Throw> {
    call.state.try_borrow_mut().map_err(|_| Throw::internal("reentrant call into the rust backend"))
}

/// A property descriptor for export `E` under its contract name, whose callback gets `state` as its
/// data.
pub(crate) fn method<const N: usize, E: Export<N>>(state: *const EnvCell) -> sys::napi_property_descriptor {
    sys::napi_property_descriptor {
        utf8name: E::NAME.as_ptr(),
        name: ptr::null_mut(),
        method: Some(trampoline::<N, E>),
        getter: None,
        setter: None,
        value: ptr::null_mut(),
        attributes: sys::PropertyAttributes::writable
            | sys::PropertyAttributes::enumerable
            | sys::PropertyAttributes::configurable,
        data: state.cast_mut().cast::<c_void>(),
    }
}

/// Defines every export of the contract on `exports`, each a `napi_callback` whose data is the environment's state.
pub fn define_all(env: sys::napi_env, exports: sys::napi_value, state: *const EnvCell) -> Result<(), Throw> {
    let properties =
        [method::<1, PrintAndReturn>(state), method::<1, FreeString>(state), method::<0, Noop>(state)];
    // SAFETY: `exports` is the module's exports object; every descriptor's name is a static C
    // string and its data the environment state, which outlives the functions
    // (instance data is finalized only at teardown, when no JS runs).
    let status = unsafe { sys::napi_define_properties(env, exports, properties.len(), properties.as_ptr()) };
    check(env, status, "napi_define_properties")
}
