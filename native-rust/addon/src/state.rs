//! Per-environment state, kept in Node-API instance data (never a mutable global: each worker
//! thread that loads the addon gets its own). The only process-wide state is the environment id
//! counter, an atomic. Created and freed in `lifecycle.rs`.

use std::cell::{Ref, RefCell, RefMut};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use napi::sys;
use napi_ownership_dispatch::{Dispatcher, UserSpaceWrapper};

use crate::callbacks::JsCallback;
use crate::handles::HandleTable;
use crate::js::Throw;
use crate::ledger::{HandlerLedger, ProducerLedger, SharedLedger, StringLedger};
use crate::posts::{Posts, ProducerSlot};
use crate::raw::tsfn::Marshal;
use crate::strings::NativeString;

/// Everything one environment owns. Instance data owns the cell; every export borrows it through its callback data.
///
/// Fields drop in order: the state (its tables), then the dispatcher (dispatcher_free: anything it still discards
/// is told to closures that enqueue on the marshal), then the marshal.
pub struct EnvCell {
    /// Behind a `RefCell`: an export borrows it for one step at a time and never across a call into JS, so a
    /// reentrant borrow would fail loudly instead of aliasing.
    pub(crate) state: RefCell<EnvState>,
    /// This environment's dispatcher (seed 000's "libdummy", the C++ core). Outside the `RefCell`: `send` runs JS
    /// callbacks that call back into `handler`, `cancel`, `send`, `shutdown`, so no borrow is held across
    /// `dispatcher_send`. Its worker thread calls the handlers for posted messages (JsCallback is Sync for that).
    /// Freed at teardown, after every registration was cancelled.
    pub dispatcher: Dispatcher<JsCallback>,
    /// The part other threads use: the threadsafe function that carries their deliveries to the JS thread.
    pub marshal: Marshal,
}

impl EnvCell {
    /// A fresh environment's state (a new env id), owning `dispatcher`.
    pub fn new(dispatcher: Dispatcher<JsCallback>) -> Self {
        EnvCell { state: RefCell::new(EnvState::new(next_env_id())), dispatcher, marshal: Marshal::new() }
    }

    pub fn try_borrow(&self) -> Result<Ref<'_, EnvState>, std::cell::BorrowError> {
        self.state.try_borrow()
    }

    pub fn try_borrow_mut(&self) -> Result<RefMut<'_, EnvState>, std::cell::BorrowMutError> {
        self.state.try_borrow_mut()
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
    pub(crate) fn new(env_id: u8) -> Self {
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
pub(crate) fn next_env_id() -> u8 {
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
pub(crate) fn pin_module(anchor: &AtomicU8) {
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
            let _ = unsafe {
                libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE)
            };
        }
    });
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
