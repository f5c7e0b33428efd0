//! An environment's state from load to teardown: created in instance data by the module init, the cleanup hook
//! that stops every thread and releases the threadsafe function, and the instance-data finalizer that frees the
//! rest.

use std::panic::{AssertUnwindSafe, catch_unwind};

use napi::{Env, sys};
use napi_ownership_dispatch::Dispatcher;

use crate::error_codes::*;
use crate::js::{Throw, failed};
use crate::posts::Posts;
use crate::raw;
use crate::raw::instance::{self, InstanceData};
use crate::state::EnvCell;

/// Returns this environment's state, creating it (with a fresh env id) the first time the addon is
/// loaded into the environment. The state is owned by instance data and freed by its
/// [`InstanceData::finalize`] at environment teardown (`raw::instance`: napi-rs's instance data needs `napi6`).
pub fn env_state(env: sys::napi_env) -> Result<*const EnvCell, Throw> {
    let existing =
        instance::get::<EnvCell>(env).map_err(|status| failed(env, status, "napi_get_instance_data"))?;
    if let Some(existing) = existing {
        // This binary is the only one that sets this environment's instance data (napi-rs leaves
        // the slot to the addon), so it is our `EnvCell` from an earlier load.
        return Ok(existing);
    }
    let dispatcher = Dispatcher::new().ok_or_else(|| {
        Throw::range_error(
            ERR_NATIVE_ALLOC,
            "could not allocate the dispatcher of this environment".to_owned(),
        )
    })?;
    let cell = Box::new(EnvCell::new(dispatcher));
    // The threadsafe function's context is the cell, which outlives it (instance data is finalized after it). If
    // creating it fails, the cell drops here: nothing else has seen it.
    let tsfn = raw::tsfn::create_tsfn(env, &*cell as *const EnvCell)?;
    raw::tsfn::set_tsfn(&cell.marshal, tsfn);
    // Ownership of the cell moves to instance data: freed by `InstanceData::finalize` at teardown.
    let state = match instance::install(env, cell) {
        Ok(state) => state,
        Err((cell, status)) => {
            // Nothing was queued on the threadsafe function (no other thread knows it), so releasing it never
            // calls call_js with the cell, which drops right after.
            cell.marshal.release();
            drop(cell);
            return Err(failed(env, status, "napi_set_instance_data"));
        }
    };
    // After the threadsafe function, so that it runs before the threadsafe function's own cleanup hook (hooks run
    // in reverse order of registration): it stops the threads and releases the threadsafe function. napi-rs boxes
    // the hook's data and frees the box when the hook runs.
    Env::from_raw(env)
        .add_env_cleanup_hook(CellPtr(state), |cell| {
            // SAFETY: the cell is instance data, which Node frees only after every cleanup hook has run.
            env_cleanup(unsafe { &*cell.0 })
        })
        .map_err(|error| Throw::internal(&format!("napi_add_env_cleanup_hook failed: {error}")))?;
    Ok(state)
}

/// The environment's cell, for its cleanup hook.
struct CellPtr(*const EnvCell);

/// This environment's state, for a `#[napi]` export (see `bind.rs`). Raw instance data (`raw::instance`), not
/// napi-rs's `Env::get_instance_data`: that one exists only with napi-rs feature `napi6`, which turns on `napi4` and
/// with it the per-environment threadsafe function napi-rs never releases (see raw/tsfn.rs). Borrowed for as long as
/// `env` is: instance data is freed only at teardown, when no export runs.
pub fn env_cell<'a>(env: sys::napi_env) -> Result<&'a EnvCell, Throw> {
    instance::get::<EnvCell>(env)
        .map_err(|status| failed(env, status, "napi_get_instance_data"))?
        .ok_or_else(|| Throw::internal("the environment's state is missing"))
}

/// The environment cleanup hook, registered after the threadsafe function was created so that it runs before the
/// threadsafe function's own hook (hooks run in reverse order): stops and joins every producer, shuts the dispatcher
/// down (joining its worker; discarded posts come back as Done items, still accepted), then releases the threadsafe
/// function. Node then drains what is queued through `call_js` with a NULL env, which frees it. No JS runs any more,
/// so no export holds the state.
fn env_cleanup(cell: &EnvCell) {
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

impl InstanceData for EnvCell {
    /// Instance-data finalizer: the environment is going away. Runs after the cleanup hook (threads stopped,
    /// threadsafe function released and drained). Frees every string still live, cancels every registration still
    /// live (freeing its boxes and deleting its reference to the JS function), drops pending promises' records
    /// (unsettled: no JS runs again) and what callbacks threw, then frees the dispatcher. Nothing is reported or
    /// called back into JS.
    fn finalize(self: Box<Self>, env: sys::napi_env) {
        let cell = self;
        let _ = catch_unwind(AssertUnwindSafe(move || {
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
}
