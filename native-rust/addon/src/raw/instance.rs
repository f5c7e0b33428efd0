//! Per-environment state in Node-API instance data.
//!
//! Why raw: napi-rs 3.16.1's `Env::{set,get}_instance_data` exist only with feature `napi6`, which turns on `napi4`
//! and with it the per-environment threadsafe function napi-rs never releases (see tsfn.rs); they also hand out
//! `&'static mut` (we hand each export a shared borrow). (The environment cleanup hook is napi-rs's own
//! `Env::add_env_cleanup_hook`, which exists at `napi3`: lifecycle.rs.)

use std::ffi::c_void;
use std::ptr;

use napi::sys;

/// What an environment keeps in instance data. The addon stores one type there (`state::EnvCell`): [`get`] trusts
/// that whatever this binary set is a `T`.
pub(crate) trait InstanceData: Sized + 'static {
    /// The instance-data finalizer: the environment is going away and ownership comes back.
    fn finalize(self: Box<Self>, env: sys::napi_env);
}

/// This environment's instance data, if [`install`] set it. Borrowed for as long as `env` is: instance data is freed
/// only at teardown, when no export runs.
pub(crate) fn get<'a, T: InstanceData>(env: sys::napi_env) -> Result<Option<&'a T>, sys::napi_status> {
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: `env` is the environment of the current call; `data` is a local.
    let status = unsafe { sys::napi_get_instance_data(env, &mut data) };
    if status != sys::Status::napi_ok {
        return Err(status);
    }
    // SAFETY: only `install` sets this environment's instance data (napi-rs never does at napi3), to a live `T`
    // that instance data owns until teardown.
    Ok(unsafe { data.cast_const().cast::<T>().as_ref() })
}

/// Hands `data` to instance data (freed by [`InstanceData::finalize`]); the pointer, valid until teardown. If
/// instance data refused it, `data` comes back with the status.
pub(crate) fn install<T: InstanceData>(
    env: sys::napi_env,
    data: Box<T>,
) -> Result<*const T, (Box<T>, sys::napi_status)> {
    // Ownership moves to Node-API instance data: taken back by `finalize::<T>` at teardown.
    let pointer = Box::into_raw(data);
    // SAFETY: `pointer` is a valid, uniquely owned allocation; the finalizer takes it back once.
    let status =
        unsafe { sys::napi_set_instance_data(env, pointer.cast(), Some(finalize::<T>), ptr::null_mut()) };
    if status != sys::Status::napi_ok {
        // SAFETY: Node did not take `pointer`; it is still ours alone, rebuilt once.
        return Err((unsafe { Box::from_raw(pointer) }, status));
    }
    Ok(pointer.cast_const())
}

/// # Safety
/// Called by Node once, at environment teardown, with the pointer `install` gave `napi_set_instance_data`.
unsafe extern "C" fn finalize<T: InstanceData>(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Box<T>` leaked in `install`; Node gives it back exactly once, and the exports that
    // borrowed it can no longer be called.
    T::finalize(unsafe { Box::from_raw(data.cast::<T>()) }, env);
}
