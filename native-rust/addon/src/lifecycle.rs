//! An environment's state from load to teardown: created in instance data by the module init, the cleanup hook
//! that stops every thread and releases the threadsafe function, and the instance-data finalizer that frees the
//! rest.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use napi::sys;
use napi_ownership_dispatch::Dispatcher;

use crate::error_codes::*;
use crate::js::{Throw, check};
use crate::posts::Posts;
use crate::raw_tsfn;
use crate::state::EnvCell;

/// Returns this environment's state, creating it (with a fresh env id) the first time the addon is
/// loaded into the environment. The state is owned by instance data and freed by
/// [`finalize_instance_data`] at environment teardown.
///
/// Raw `napi_set_instance_data` / `napi_get_instance_data` rather than napi-rs's
/// `Env::{set,get}_instance_data`: the latter hands out `&'static mut` and checks a process-wide
/// mutex-guarded registry on each get; we hand each export a shared `&EnvCell` instead.
pub fn env_state(env: sys::napi_env) -> Result<*const EnvCell, Throw> {
    let mut existing: *mut c_void = ptr::null_mut();
    // SAFETY: `env` is the environment being initialised; `existing` is a local.
    let status = unsafe { sys::napi_get_instance_data(env, &mut existing) };
    check(env, status, "napi_get_instance_data")?;
    if !existing.is_null() {
        // This binary is the only one that sets this environment's instance data (napi-rs leaves
        // the slot to the addon), so a non-NULL pointer is our `EnvCell` from an earlier load.
        return Ok(existing.cast_const().cast());
    }
    let dispatcher = Dispatcher::new().ok_or_else(|| {
        Throw::range_error(
            ERR_NATIVE_ALLOC,
            "could not allocate the dispatcher of this environment".to_owned(),
        )
    })?;
    let cell = EnvCell::new(dispatcher);
    // Ownership moves to Node-API instance data: freed by `finalize_instance_data` at teardown.
    let state = Box::into_raw(Box::new(cell));
    // The threadsafe function's context is the cell, which outlives it (instance data is finalized after it).
    let tsfn = match raw_tsfn::create_tsfn(env, state) {
        Ok(tsfn) => tsfn,
        Err(thrown) => {
            // SAFETY: nothing else has seen `state`: still ours, freed once.
            drop(unsafe { Box::from_raw(state) });
            return Err(thrown);
        }
    };
    // SAFETY: `state` is alive and only this thread knows it yet.
    raw_tsfn::set_tsfn(unsafe { &(*state).marshal }, tsfn);
    // SAFETY: `state` is a valid, uniquely owned allocation; the finalizer below takes it back.
    let status = unsafe {
        sys::napi_set_instance_data(env, state.cast(), Some(finalize_instance_data), ptr::null_mut())
    };
    if let Err(thrown) = check(env, status, "napi_set_instance_data") {
        // Nothing was queued on the threadsafe function (no other thread knows it), so releasing it never calls
        // call_js with the cell we free next.
        // SAFETY: as above: `state` is still ours alone; `marshal` is alive until the drop below.
        unsafe { (*state).marshal.release() };
        // SAFETY: Node did not take `state`; we still own it and free it here, once.
        drop(unsafe { Box::from_raw(state) });
        return Err(thrown);
    }
    // After the threadsafe function, so that it runs before the threadsafe function's own cleanup hook (hooks run
    // in reverse order of registration): it stops the threads and releases the threadsafe function.
    // SAFETY: the hook gets the cell, which instance data frees only after every cleanup hook has run.
    let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(env_cleanup), state.cast()) };
    check(env, status, "napi_add_env_cleanup_hook")?;
    Ok(state.cast_const())
}

/// This environment's state, for a `#[napi]` export (see `bind.rs`). Raw `napi_get_instance_data`, not napi-rs's
/// `Env::get_instance_data`: that one exists only with napi-rs feature `napi6`, which turns on `napi4` and with it the
/// per-environment threadsafe function napi-rs never releases (see raw_tsfn.rs). Borrowed for as long as `env`
/// is: instance data is freed only at teardown, when no export runs.
pub fn env_cell<'a>(env: sys::napi_env) -> Result<&'a EnvCell, Throw> {
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: `env` is the environment of the current call; `data` is a local.
    let status = unsafe { sys::napi_get_instance_data(env, &mut data) };
    check(env, status, "napi_get_instance_data")?;
    // SAFETY: only `env_state` sets this environment's instance data (napi-rs never does with napi3), to a live
    // `EnvCell` that instance data owns until teardown.
    unsafe { data.cast_const().cast::<EnvCell>().as_ref() }
        .ok_or_else(|| Throw::internal("the environment's state is missing"))
}

/// Instance-data finalizer: the environment is going away. Runs after the cleanup hook (threads stopped,
/// threadsafe function released and drained). Frees every string still live, cancels every registration still live
/// (freeing its boxes and deleting its reference to the JS function), drops pending promises' records (unsettled: no
/// JS runs again) and what callbacks threw, then frees the dispatcher. Nothing is reported or called back into JS.
///
/// # Safety
/// Called by Node once, at environment teardown, with the pointer given to
/// `napi_set_instance_data` in [`env_state`].
pub(crate) unsafe extern "C" fn finalize_instance_data(
    env: sys::napi_env,
    data: *mut c_void,
    _hint: *mut c_void,
) {
    // SAFETY: `data` is the `Box<EnvCell>` leaked in `env_state`; Node gives it back exactly once,
    // and the exported functions that borrowed it can no longer be called.
    let cell = unsafe { Box::from_raw(data.cast::<EnvCell>()) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        {
            let mut state = cell.state.borrow_mut();
            for string in state.strings.drain() {
                // Bytes that a view's buffer still shares are left to that buffer's finalizer; the rest go now.
                string.release_at_teardown(env);
            }
            // Dropping a UserSpaceWrapper cancels its registration and frees its three boxes; the boxed
            // JsCallback deletes its reference. No callback runs: nothing sends any more.
            state.subscriptions.drain().for_each(drop);
            // Already stopped by the cleanup hook; freeing one that was not would stop and join it here.
            state.producers.drain().for_each(drop);
            // Unsettled promises and the references to thrown values.
            let posts = std::mem::replace(&mut state.posts, Posts::new());
            drop(posts);
        }
        // Node freed the threadsafe function before calling us: nothing may be enqueued on it any more.
        cell.marshal.forget();
        // Last, with the cell: dispatcher_free (the wrappers shared the dispatcher, and all are gone).
        drop(cell);
    }));
}

// ---------------------------------------------------------------------------------------------------------------------
// Teardown

/// The environment cleanup hook, registered after the threadsafe function was created so that it runs before the
/// threadsafe function's own hook (hooks run in reverse order): stops and joins every producer, shuts the dispatcher
/// down (joining its worker; discarded posts come back as Done items, still accepted), then releases the threadsafe
/// function. Node then drains what is queued through `call_js` with a NULL env, which frees it.
///
/// # Safety
/// Called by Node once, on the JS thread, at environment teardown, with the EnvCell registered in `env_state`
/// (freed later, by the instance-data finalizer).
pub unsafe extern "C" fn env_cleanup(arg: *mut c_void) {
    // SAFETY: see above; no JS runs any more, so no export holds the state.
    let cell = unsafe { &*arg.cast_const().cast::<EnvCell>() };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(mut state) = cell.try_borrow_mut() {
            // Dropping a slot frees its producer: producer_free stops and joins the thread.
            state.producers.drain().for_each(drop);
        }
        // Drops every registration (the wrappers in the subscription table free their boxes later, in the
        // instance-data finalizer) and joins the worker; discarded posts enqueue their Done items.
        cell.dispatcher.shutdown();
        // Here, not in the instance-data finalizer: since nodejs/node#55877 (Node 24.14+) Node finalizes a threadsafe
        // function at teardown under its lock and frees it only once its thread count is 0, so one never released
        // leaks, and a release from a finalizer that Node runs inside that finalization deadlocks.
        cell.marshal.release();
    }));
}
