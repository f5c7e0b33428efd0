//! The ledgers of docs/raw-contract.md (`stats()`), and the part of the string ledger that views' finalizers
//! update from any thread ([`SharedLedger`]: atomics only).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use napi::{Env, sys};

use crate::js::{Throw, napi_failed};

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
    pub(crate) unreported: AtomicI64,
    /// The net sum given to `napi_adjust_external_memory` so far (`stats().memory.reported`).
    pub(crate) reported: AtomicI64,
    /// The JS thread, as `pthread_self` names it. Not `std::thread::current()`: that allocates the calling thread's
    /// `Thread` handle, which the main thread never frees (valgrind: 48 B possibly lost at exit).
    pub(crate) js_thread: libc::pthread_t,
}

impl SharedLedger {
    pub(crate) fn new() -> Self {
        Self {
            view_held: AtomicU64::new(0),
            view_held_bytes: AtomicU64::new(0),
            view_finalized_off_thread: AtomicU64::new(0),
            unreported: AtomicI64::new(0),
            reported: AtomicI64::new(0),
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
        if cfg!(feature = "seed-bug-no-external-memory") {
            // Seeded bug 9 (leak-test self-test builds only): V8 is never told. Nothing leaks (the fallback frees
            // everything it is given), but nothing prompts the collections that let it: the bounded-memory test fails.
            return Ok(());
        }
        // napi-rs's `Env::adjust_external_memory` (one `napi_adjust_external_memory`). This only tells V8's heap
        // accounting; it may start a GC, which runs none of our code synchronously on Node (finalizers are deferred)
        // and, elsewhere, only view finalizers, which touch atomics.
        match Env::from_raw(env).adjust_external_memory(batch) {
            Ok(_) => {
                self.reported.fetch_add(batch, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                self.unreported.fetch_add(batch, Ordering::Relaxed); // still owed
                Err(napi_failed(env, "napi_adjust_external_memory", error))
            }
        }
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

/// The post ledger of docs/raw-contract.md (`pending` is read from the queues).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PostLedger {
    pub posted: u64,
    pub delivered: u64,
    pub skipped: u64,
}

/// The producer ledger of docs/raw-contract.md (`live` is the table's).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProducerLedger {
    pub started: u64,
    pub stopped: u64,
    pub finalized: u64,
}
