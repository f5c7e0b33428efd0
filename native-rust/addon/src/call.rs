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

use napi::sys;

use crate::js::{CallResult, Throw, check};
use crate::state::{EnvCell, EnvState};

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

/// The environment's state for one step of an export (never held across a call into JS).
pub fn borrow_state<'a, const N: usize>(
    call: &'a Call<'_, N>,
) -> Result<std::cell::RefMut<'a, EnvState>, Throw> {
    call.state.try_borrow_mut().map_err(|_| Throw::internal("reentrant call into the rust backend"))
}
