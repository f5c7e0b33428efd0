//! Per-environment state, kept in Node-API instance data (never a mutable global: each worker
//! thread that loads the addon gets its own). The only process-wide state is the environment id
//! counter, an atomic.

use std::cell::{Ref, RefCell, RefMut};
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

use crate::error_codes::*;
use napi::sys;
use napi_ownership_dispatch::{Dispatcher, UserSpaceWrapper};

use crate::call::{Throw, check};
use crate::handles::HandleTable;
use crate::strings::NativeString;
use crate::subscriptions::JsCallback;
use crate::threads::{self, Marshal, Posts, ProducerLedger, ProducerSlot};

/// Everything one environment owns. Instance data owns the cell; every export borrows it through its callback data.
///
/// Fields drop in order: the state (its tables), then the dispatcher (dispatcher_free: anything it still discards
/// is told to closures that enqueue on the marshal), then the marshal.
pub struct EnvCell {
    /// Behind a `RefCell`: an export borrows it for one step at a time and never across a call into JS, so a
    /// reentrant borrow would fail loudly instead of aliasing.
    state: RefCell<EnvState>,
    /// This environment's dispatcher (seed 000's "libdummy", the C++ core). Outside the `RefCell`: `send` runs JS
    /// callbacks that call back into `handler`, `cancel`, `send`, `shutdown`, so no borrow is held across
    /// `dispatcher_send`. Its worker thread calls the handlers for posted messages (JsCallback is Sync for that).
    /// Freed at teardown, after every registration was cancelled.
    pub dispatcher: Dispatcher<JsCallback>,
    /// The part other threads use: the threadsafe function that carries their deliveries to the JS thread.
    pub marshal: Marshal,
}

impl EnvCell {
    pub fn try_borrow(&self) -> Result<Ref<'_, EnvState>, std::cell::BorrowError> {
        self.state.try_borrow()
    }

    pub fn try_borrow_mut(&self) -> Result<RefMut<'_, EnvState>, std::cell::BorrowMutError> {
        self.state.try_borrow_mut()
    }
}

/// Live bytes are reported to V8 once the unreported difference reaches this, and any single
/// string at least this large is reported at once (docs/raw-contract.md).
pub const EXTERNAL_MEMORY_BATCH: i64 = 64 * 1024;

/// The string ledger of docs/raw-contract.md. `live = allocated - freed - finalized`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StringLedger {
    pub allocated: u64,
    pub freed: u64,
    pub finalized: u64,
    pub live_bytes: u64,
    /// `string_view` calls that returned a copy (no external buffers allowed, or a copy-views build).
    pub view_copies: u64,
}

/// What the finalizers of external ArrayBuffers (views) update: released strings whose bytes views still hold, and
/// the live-byte change not yet reported to V8. Outside the state's `RefCell`, because a runtime may run a finalizer
/// while an export holds that borrow, and shared by `Arc`, because a buffer may be finalized after the environment's
/// state is gone (each view's bytes hold a clone). Atomic, because a runtime may run a view's finalizer on another
/// thread: Deno 2.9 calls it from V8's backing-store deleter, which can run on a V8 background thread (Node defers
/// it to the JS thread). A finalizer never calls Node-API: what it owes V8 waits in `unreported` for the JS thread.
#[derive(Debug)]
pub struct SharedLedger {
    pub view_held: AtomicU64,
    pub view_held_bytes: AtomicU64,
    /// View finalizers that ran on a thread other than this environment's JS thread.
    pub view_finalized_off_thread: AtomicU64,
    /// Live-byte change not yet given to `napi_adjust_external_memory`.
    unreported: AtomicI64,
    /// The JS thread, as `pthread_self` names it. Not `std::thread::current()`: that allocates the calling thread's
    /// `Thread` handle, which the main thread never frees (valgrind: 48 B possibly lost at exit).
    js_thread: libc::pthread_t,
}

impl SharedLedger {
    fn new() -> Self {
        Self {
            view_held: AtomicU64::new(0),
            view_held_bytes: AtomicU64::new(0),
            view_finalized_off_thread: AtomicU64::new(0),
            unreported: AtomicI64::new(0),
            // SAFETY: pthread_self has no preconditions.
            js_thread: unsafe { libc::pthread_self() },
        }
    }

    /// Records `delta` live bytes and reports to V8 when the batch is due. JS thread only.
    pub fn adjust_live_bytes(&self, env: sys::napi_env, delta: i64) -> Result<(), Throw> {
        let unreported = self.unreported.fetch_add(delta, Ordering::Relaxed) + delta;
        if delta.abs() < EXTERNAL_MEMORY_BATCH && unreported.abs() < EXTERNAL_MEMORY_BATCH {
            return Ok(());
        }
        let batch = self.unreported.swap(0, Ordering::Relaxed);
        let mut total = 0i64;
        // SAFETY: `env` is the environment of the current callback. This only tells V8's heap accounting; it may
        // start a GC, which runs none of our code synchronously on Node (finalizers are deferred) and, elsewhere,
        // only view finalizers, which touch atomics.
        let status = unsafe { sys::napi_adjust_external_memory(env, batch, &mut total) };
        if status != sys::Status::napi_ok {
            self.unreported.fetch_add(batch, Ordering::Relaxed); // still owed
        }
        check(env, status, "napi_adjust_external_memory")
    }

    /// Records `delta` live bytes from any thread, without calling Node-API: reported by the JS thread's next batch.
    pub fn defer_live_bytes(&self, delta: i64) {
        self.unreported.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn on_js_thread(&self) -> bool {
        // SAFETY: pthread_self and pthread_equal have no preconditions; both ids are of live threads or ours.
        unsafe { libc::pthread_equal(libc::pthread_self(), self.js_thread) != 0 }
    }
}

impl StringLedger {
    pub fn live(&self) -> u64 {
        self.allocated - self.freed - self.finalized
    }
}

/// How a string left the table, for the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// `free_string`: explicit release.
    Freed,
    /// `finalize_string`: the FinalizationRegistry's path.
    Finalized,
}

/// The handler ledger of docs/raw-contract.md. `live = registered - cancelled - finalized`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HandlerLedger {
    pub registered: u64,
    pub cancelled: u64,
    pub finalized: u64,
}

impl HandlerLedger {
    pub fn live(&self) -> u64 {
        self.registered - self.cancelled - self.finalized
    }
}

pub struct EnvState {
    /// This environment's id, the `env` bits of every handle it issues (1..=255).
    pub env_id: u8,
    pub strings: HandleTable<NativeString>,
    pub ledger: StringLedger,
    /// Each slot owns seed 000's UserSpaceWrapper, and through it the boxed JS callback and the FFIWrapper the
    /// dispatcher borrows: removing the slot cancels the registration and frees them.
    pub subscriptions: HandleTable<UserSpaceWrapper<JsCallback>>,
    pub handlers: HandlerLedger,
    /// Each slot owns a native producer (its thread and record): removing the slot stops, joins and frees it.
    pub producers: HandleTable<ProducerSlot>,
    pub producer_ledger: ProducerLedger,
    /// Pending posts and producers' promises, the post ledger, the event-loop hold.
    pub posts: Posts,
    /// View-held strings and the external-memory report, shared with the views' bytes.
    pub shared: Arc<SharedLedger>,
}

impl EnvState {
    fn new(env_id: u8) -> Self {
        EnvState {
            env_id,
            strings: HandleTable::default(),
            ledger: StringLedger::default(),
            subscriptions: HandleTable::default(),
            handlers: HandlerLedger::default(),
            producers: HandleTable::default(),
            producer_ledger: ProducerLedger::default(),
            posts: Posts::new(),
            shared: Arc::new(SharedLedger::new()),
        }
    }

    /// Records `delta` live bytes and reports to V8 when the batch is due.
    pub fn adjust_live_bytes(&self, env: sys::napi_env, delta: i64) -> Result<(), Throw> {
        self.shared.adjust_live_bytes(env, delta)
    }
}

/// Assigns environment ids 1, 2, ..., 255, 1, ... (0 is never used), process-wide: see [`pin_module`].
fn next_env_id() -> u8 {
    static LAST_ENV_ID: AtomicU8 = AtomicU8::new(0);
    pin_module(&LAST_ENV_ID);
    let step = |last: u8| Some(last % 255 + 1);
    let last = LAST_ENV_ID.fetch_update(Ordering::Relaxed, Ordering::Relaxed, step).unwrap_or(0);
    last % 255 + 1
}

/// Keeps this `.node` loaded for the life of the process. The env-id counter is a static of this module; if Node
/// unloaded the module when the last environment using it ended, the next load would count from 1 again and give a
/// new environment a dead one's id, whose handles it would then accept. A second reference to ourselves with
/// `RTLD_NODELETE`, never closed, makes Node's `dlclose` leave the module mapped. Ids still wrap after 255
/// environments (8 bits of the handle).
fn pin_module(anchor: &AtomicU8) {
    static PINNED: std::sync::Once = std::sync::Once::new();
    PINNED.call_once(|| {
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
        // SAFETY: `anchor` is an address inside this module; `info` is a local that dladdr fills.
        let found = unsafe { libc::dladdr(ptr::from_ref(anchor).cast(), info.as_mut_ptr()) };
        // SAFETY: zero-initialised, and filled by dladdr when it returns non-zero.
        let info = unsafe { info.assume_init() };
        if found != 0 && !info.dli_fname.is_null() {
            // SAFETY: `dli_fname` is the NUL-terminated path of this already loaded module; RTLD_NOLOAD only adds
            // a reference (and the NODELETE flag) to it. The handle is deliberately never closed.
            let _ = unsafe { libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE) };
        }
    });
}

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
    let cell =
        EnvCell { state: RefCell::new(EnvState::new(next_env_id())), dispatcher, marshal: Marshal::new() };
    // Ownership moves to Node-API instance data: freed by `finalize_instance_data` at teardown.
    let state = Box::into_raw(Box::new(cell));
    // The threadsafe function's context is the cell, which outlives it (instance data is finalized after it).
    let tsfn = match threads::create_tsfn(env, state) {
        Ok(tsfn) => tsfn,
        Err(thrown) => {
            // SAFETY: nothing else has seen `state`: still ours, freed once.
            drop(unsafe { Box::from_raw(state) });
            return Err(thrown);
        }
    };
    // SAFETY: `state` is alive and only this thread knows it yet.
    threads::set_tsfn(unsafe { &(*state).marshal }, tsfn);
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
    let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(threads::env_cleanup), state.cast()) };
    check(env, status, "napi_add_env_cleanup_hook")?;
    Ok(state.cast_const())
}

/// Instance-data finalizer: the environment is going away. Runs after the cleanup hook (threads stopped,
/// threadsafe function released and drained). Frees every string still live, cancels every registration still live
/// (freeing its boxes and deleting its reference to the JS function), drops pending promises' records (unsettled: no
/// JS runs again) and what callbacks threw, then frees the dispatcher. Nothing is reported or called back into JS.
///
/// # Safety
/// Called by Node once, at environment teardown, with the pointer given to
/// `napi_set_instance_data` in [`env_state`].
unsafe extern "C" fn finalize_instance_data(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_ids_wrap_from_255_to_1() {
        let ids: Vec<u8> = (0..600).map(|_| next_env_id()).collect();
        assert!(ids.iter().all(|&id| id != 0));
        let first = usize::from(ids[0]);
        let wrap = ids.iter().position(|&id| id == 255).unwrap();
        assert_eq!(ids[wrap + 1], 1);
        assert_eq!(ids[255], ids[0], "period 255 (start {first})");
    }
}
