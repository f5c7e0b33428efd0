//! `native-cpp/core/include/napi_ownership/dispatcher.h`, declared by hand (the header is small and fixed; the C++
//! core is compiled into this crate by `build.rs`). Every function is `noexcept` on the C++ side, so no C++ exception
//! can unwind into Rust: plain `extern "C"`.
//!
//! Under Miri (which cannot run C++) the same functions come from `fake_ffi.rs`, a small Rust model of the header, so
//! `cargo +nightly miri test -p napi-ownership-dispatch` checks the Rust side's box handling for undefined behaviour.

use std::ffi::{c_char, c_void};
#[cfg(not(miri))]
use std::marker::{PhantomData, PhantomPinned};

/// `DispatcherCallback`: called once per message delivered; `dest` and `msg` are borrowed for the call.
pub type DispatcherCallback =
    unsafe extern "C" fn(self_rust_side: *mut c_void, dest: *const c_char, msg: *const c_char);

/// Seed 000's FFIWrapper: `{ callback, self_rust_side }`. Owned by the caller; borrowed by the dispatcher while
/// registered.
#[repr(C)]
pub struct FFIWrapper {
    pub callback: DispatcherCallback,
    pub self_rust_side: *mut c_void,
}

/// The opaque C++ `Dispatcher`.
#[cfg(not(miri))]
#[repr(C)]
pub struct Dispatcher {
    _opaque: [u8; 0],
    _not_send_sync_unpin: PhantomData<(*mut u8, PhantomPinned)>,
}

/// A registration's id ("ctx" in seed 000). Never reused within a dispatcher; 0 is never a valid ctx.
pub type DispatcherCtx = u64;

/// `DispatcherDelivered`: told once per posted message, `delivered` = callbacks that ran, or -1 if a shutdown
/// discarded it. Called on the worker thread (or, for -1, on the thread that shut down).
pub type DispatcherDelivered = unsafe extern "C" fn(ctx: *mut c_void, delivered: i32);

/// `DispatcherProducerFinished`: called once, on the producer's thread, when it has posted everything or was stopped.
pub type DispatcherProducerFinished = unsafe extern "C" fn(finished_ctx: *mut c_void, posted: u32);

/// The opaque C++ `DispatcherProducer`.
#[cfg(not(miri))]
#[repr(C)]
pub struct DispatcherProducer {
    _opaque: [u8; 0],
    _not_send_sync_unpin: PhantomData<(*mut u8, PhantomPinned)>,
}

#[cfg(not(miri))]
unsafe extern "C" {
    /// A new, empty dispatcher, or NULL if allocation failed. Freed by `dispatcher_free`.
    pub safe fn dispatcher_new() -> *mut Dispatcher;
    /// Shuts down and frees the instance. NULL is a no-op.
    pub fn dispatcher_free(d: *mut Dispatcher);
    /// Registers `w` under `dest` (copied); its ctx, or 0 if nothing was registered.
    pub fn dispatcher_handler(d: *mut Dispatcher, dest: *const c_char, w: *mut FFIWrapper) -> DispatcherCtx;
    /// 0: cancelled, and the dispatcher is done with the FFIWrapper. -1: no such registration under `dest` (it stays
    /// registered if it is registered elsewhere). -2: a NULL argument.
    pub fn dispatcher_cancel(d: *mut Dispatcher, dest: *const c_char, ctx: DispatcherCtx) -> i32;
    /// Delivers `msg` to every handler of `dest`; how many ran, or -2 for a NULL argument.
    pub fn dispatcher_send(d: *mut Dispatcher, dest: *const c_char, msg: *const c_char) -> i32;
    /// Drops every registration; how many. The instance stays usable.
    pub fn dispatcher_shutdown(d: *mut Dispatcher) -> i32;
    /// Registrations currently held.
    pub fn dispatcher_live(d: *const Dispatcher) -> u32;

    /// Queues copies of `dest` and `msg` for the worker thread. 0: queued, and `on_delivered(ctx, ..)` will be
    /// called exactly once (delivered, or -1 if discarded by a shutdown). -2: a NULL argument. -3: allocation or
    /// thread start failed; nothing was queued and `on_delivered` will not be called.
    pub fn dispatcher_post(
        d: *mut Dispatcher,
        dest: *const c_char,
        msg: *const c_char,
        on_delivered: Option<DispatcherDelivered>,
        ctx: *mut c_void,
    ) -> i32;
    /// Messages posted and not yet delivered or discarded.
    pub fn dispatcher_queued(d: *const Dispatcher) -> u32;

    /// Starts a thread posting `count` messages ("0", "1", ...) to `dest`, each with `on_delivered`/`ctx`, then
    /// calling `on_finished(finished_ctx, posted)`. NULL if nothing was started. The dispatcher must outlive it.
    pub fn producer_start(
        d: *mut Dispatcher,
        dest: *const c_char,
        count: u32,
        interval_ms: u32,
        on_delivered: Option<DispatcherDelivered>,
        ctx: *mut c_void,
        on_finished: Option<DispatcherProducerFinished>,
        finished_ctx: *mut c_void,
    ) -> *mut DispatcherProducer;
    /// Stops and joins the producer's thread (on_finished has run when it returns). 1: this call stopped it early;
    /// 0: it had already finished. Idempotent. Not from the producer's own callbacks.
    pub fn producer_stop(p: *mut DispatcherProducer) -> i32;
    /// Stops (as producer_stop) and frees the producer. NULL is a no-op.
    pub fn producer_free(p: *mut DispatcherProducer);
}

#[cfg(miri)]
#[path = "fake_ffi.rs"]
mod fake;
#[cfg(miri)]
pub use fake::*;
