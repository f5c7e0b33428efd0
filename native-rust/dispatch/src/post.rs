//! Asynchronous delivery: [`Dispatcher::post`] and the native [`Producer`], over `dispatcher_post` and
//! `producer_start/stop/free` (dispatcher.h, "Asynchronous delivery" and "A native producer").
//!
//! ```text
//! post:      Box<F> --into_raw--> dispatcher_post(d, dest, msg, post_delivered::<F>, ctx)
//!            worker thread: handlers run, then post_delivered(ctx, n)   => Box::from_raw, F(Ran(n)), dropped
//!            shutdown/free: post_delivered(ctx, -1) on that thread       => Box::from_raw, F(Discarded), dropped
//! producer:  Box<ProducerCtx> --into_raw--> producer_start(.., ctx, .., finished_ctx = the same box)
//!            each of its posts:   producer_delivered(ctx, n | -1)  => D(..); balance -= 1
//!            once, its thread:    producer_finished(ctx, posted)   => F(posted); balance += posted
//!            the call that brings the balance to 0 after producer_finished is the last one: it frees the box
//! ```
//!
//! Who owns what
//! - A posted closure `F` is the dispatcher's from a successful `dispatcher_post` until its `on_delivered`, which
//!   takes it back with `Box::from_raw`, calls it and drops it: exactly once, delivered or discarded (the core
//!   promises one `on_delivered` per queued message, and `dispatcher_free` discards what is still queued). If
//!   `dispatcher_post` refuses, it never saw the box: [`post`](Dispatcher::post) takes it back and returns `F`.
//! - A producer's context box is lent to the C producer, which passes it to each of its posts and to
//!   `on_finished`. Its messages may still be queued after the producer thread ended (and after [`Producer`] was
//!   dropped), so neither the thread's end nor the [`Producer`] can free it: the last of its callbacks does. The
//!   [`Producer`] owns the C producer (`producer_free` in Drop) and an `Arc` of its status, never the box.
//!
//! Threads: the worker calls every handler of the dest on its own thread, so posting needs handlers that may be
//! shared with it (`H: Sync`); the default `Dispatcher<dyn OnSend>` cannot post:
//!
//! ```compile_fail
//! let dispatcher: napi_ownership_dispatch::Dispatcher = napi_ownership_dispatch::Dispatcher::new().unwrap();
//! dispatcher.post("dest", "msg", |_| {});
//! ```

use std::ffi::{CStr, c_void};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Dispatcher, InteriorNul, OnSend, OnWorker, RawDispatcher, ffi, with_c_str};

/// What became of a posted message: its `on_delivered` is told exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The worker thread delivered it: this many callbacks ran (0 if nothing was registered under its dest).
    Ran(u32),
    /// A shutdown (or freeing the dispatcher) discarded it before the worker took it.
    Discarded,
}

impl Delivered {
    fn from_c(delivered: i32) -> Self {
        u32::try_from(delivered).map_or(Delivered::Discarded, Delivered::Ran)
    }
}

/// Why a post or a producer start did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// `dest` or the message holds a NUL byte.
    InteriorNul(InteriorNul),
    /// The core could not allocate the copies, or could not start its thread (`-3` / NULL).
    Dispatcher,
}

/// [`Dispatcher::post`] queued nothing; the closure comes back, never called.
pub struct PostRefused<F> {
    pub reason: PostError,
    pub on_delivered: F,
}

impl<F> fmt::Debug for PostRefused<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostRefused").field("reason", &self.reason).finish_non_exhaustive()
    }
}

/// Drops a caught panic payload; not even its own Drop may unwind into C++.
fn discard_panic(payload: Box<dyn std::any::Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

impl<H: ?Sized + OnSend + Sync> Dispatcher<H> {
    /// Queues `msg` for `dest` and returns at once. The dispatcher's worker thread delivers it to the handlers
    /// registered under `dest` (on that thread: hence `H: Sync`), then calls `on_delivered(Delivered::Ran(n))`
    /// there; a shutdown that discards it calls `on_delivered(Delivered::Discarded)` on the shutting-down thread.
    /// Either way exactly once. A panic in `on_delivered` is caught and dropped (there is nobody to resume it on).
    pub fn post<F>(&self, dest: &str, msg: &str, on_delivered: F) -> Result<(), PostRefused<F>>
    where
        F: FnOnce(Delivered) + Send + 'static,
    {
        let mut on_delivered = Some(on_delivered);
        let posted = with_c_str("dest", dest, |dest| {
            with_c_str("message", msg, |msg| {
                self.post_cstr(dest, msg, on_delivered.take().expect("called once"))
            })
        });
        match posted {
            Ok(Ok(result)) => result,
            Err(nul) | Ok(Err(nul)) => Err(PostRefused {
                reason: PostError::InteriorNul(nul),
                on_delivered: on_delivered.take().expect("not posted"),
            }),
        }
    }

    /// [`post`](Self::post) for C strings (no NUL check needed).
    pub fn post_cstr<F>(&self, dest: &CStr, msg: &CStr, on_delivered: F) -> Result<(), PostRefused<F>>
    where
        F: FnOnce(Delivered) + Send + 'static,
    {
        // Ownership moves to the dispatcher here: `post_delivered::<F>` takes it back, exactly once.
        let ctx = Box::into_raw(Box::new(on_delivered));
        // SAFETY: the dispatcher is alive (we hold it); `dest`/`msg` are NUL-terminated (the core copies them);
        // `ctx` is a live Box<F> that only `post_delivered::<F>` will rebuild; F is Send + 'static because that
        // may happen on another thread, at any later time.
        let status = unsafe {
            ffi::dispatcher_post(
                self.ptr(),
                dest.as_ptr(),
                msg.as_ptr(),
                Some(post_delivered::<F>),
                ctx.cast(),
            )
        };
        if status == 0 {
            return Ok(());
        }
        // -3 (or -2, impossible here): nothing was queued and on_delivered will not be called.
        // SAFETY: the core refused the post, so it never kept `ctx`: still ours, rebuilt once.
        let on_delivered = *unsafe { Box::from_raw(ctx) };
        Err(PostRefused { reason: PostError::Dispatcher, on_delivered })
    }
}

impl<H: ?Sized + OnSend> Dispatcher<H> {
    /// Messages posted and not yet delivered or discarded.
    pub fn queued(&self) -> u32 {
        // SAFETY: the dispatcher is alive (we hold it).
        unsafe { ffi::dispatcher_queued(self.ptr()) }
    }
}

/// The `on_delivered` of a [`Dispatcher::post`]: takes the closure back, calls it, drops it.
///
/// # Safety
/// Called by the dispatcher only, once, with the `ctx` given to `dispatcher_post` by `post_cstr::<F>`.
unsafe extern "C" fn post_delivered<F: FnOnce(Delivered) + Send>(ctx: *mut c_void, delivered: i32) {
    // SAFETY: `ctx` is the Box<F> leaked by `post_cstr::<F>`; the core calls this once per queued message, so the
    // box is rebuilt exactly once, here, and owned by this call from now on.
    let on_delivered = unsafe { Box::from_raw(ctx.cast::<F>()) };
    let outcome = Delivered::from_c(delivered);
    // The closure and what it captured are dropped on this thread, possibly the worker's: see RawDispatcher::drop.
    let _on_worker = OnWorker::enter();
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || on_delivered(outcome))) {
        discard_panic(payload);
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Producers

/// What a [`Producer`] and its callbacks both see.
#[derive(Debug, Default)]
struct ProducerStatus {
    /// Set once `on_finished` was called (the thread posts nothing more).
    finished: AtomicBool,
    /// How many it posted; meaningful once `finished`.
    posted: AtomicU32,
}

/// The one context box a C producer gets, as both `ctx` (for every post) and `finished_ctx`.
struct ProducerCtx<D, F> {
    on_delivered: D,
    /// Taken by `producer_finished`, the only caller, once.
    on_finished: Mutex<Option<F>>,
    status: Arc<ProducerStatus>,
    /// `producer_finished` adds the number posted, each `producer_delivered` subtracts one: before `on_finished`
    /// it is `-(messages told so far)` (never 0 once one was told), after it `posted - told`. So the call that
    /// brings it to 0 is the last call that will ever use the box, and frees it.
    balance: AtomicI64,
}

impl<D, F> ProducerCtx<D, F> {
    /// Records one use of the box by a callback that is done with it; frees the box if that was the last use.
    ///
    /// # Safety
    /// `ctx` is this producer's box, alive (its balance has not reached 0 yet), and the caller touches it no more.
    unsafe fn settle(ctx: *const Self, delta: i64) {
        // SAFETY: alive per the contract above; only an atomic of it is used here.
        let balance = unsafe { &(*ctx).balance };
        // AcqRel: the freeing call sees everything the other callbacks did with the box before they let go.
        if balance.fetch_add(delta, Ordering::AcqRel) + delta == 0 {
            // SAFETY: the balance reached 0: every post was told and on_finished has run, so no callback will use
            // `ctx` again; it came from Box::into_raw in `Producer::start` and only this call rebuilds it.
            let ctx = unsafe { Box::from_raw(ctx.cast_mut()) };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(ctx))) {
                discard_panic(payload);
            }
        }
    }
}

/// A native producer: a thread of the C++ core that posts `count` messages (`"0"`, `"1"`, ...) to one dest.
///
/// Owns the C producer: [`stop`](Self::stop) stops and joins its thread, Drop does so too and frees it
/// (`producer_free`). It keeps its dispatcher alive (the core requires the dispatcher to outlive the producer).
/// Its callbacks' context is not its own: see the module notes.
pub struct Producer {
    raw: NonNull<ffi::DispatcherProducer>,
    status: Arc<ProducerStatus>,
    /// Dropped after the C producer (field order does not matter: Drop frees `raw` first).
    _dispatcher: Arc<RawDispatcher>,
}

// SAFETY: the producer's functions may be called from any thread (producer_stop serialises joiners with its own
// mutex); the type only passes the pointer to them. Its callbacks are Send (+ Sync for the shared one) by bounds.
unsafe impl Send for Producer {}
// SAFETY: as for Send: `stop` and `is_finished` through `&self` are thread-safe calls and atomic reads.
unsafe impl Sync for Producer {}

/// [`Producer::start`] started nothing; both closures come back, never called.
pub struct StartRefused<D, F> {
    pub reason: PostError,
    pub on_delivered: D,
    pub on_finished: F,
}

impl<D, F> fmt::Debug for StartRefused<D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartRefused").field("reason", &self.reason).finish_non_exhaustive()
    }
}

impl Producer {
    /// Starts a thread that posts `count` messages to `dest`, `interval_ms` apart (0: none), each told to
    /// `on_delivered` once as for [`Dispatcher::post`] (on the worker thread, or `Discarded` by a shutdown); then,
    /// on its own thread, `on_finished(posted)` once. Both may still be called after the producer was stopped or
    /// dropped: for messages it posted that are still queued.
    ///
    /// `on_finished` must not stop or drop this producer (the core joins the producer thread: it would join itself).
    pub fn start<H, D, F>(
        dispatcher: &Dispatcher<H>,
        dest: &str,
        count: u32,
        interval_ms: u32,
        on_delivered: D,
        on_finished: F,
    ) -> Result<Producer, StartRefused<D, F>>
    where
        H: ?Sized + OnSend + Sync,
        D: Fn(Delivered) + Send + Sync + 'static,
        F: FnOnce(u32) + Send + 'static,
    {
        let status = Arc::new(ProducerStatus::default());
        let ctx = Box::new(ProducerCtx {
            on_delivered,
            on_finished: Mutex::new(Some(on_finished)),
            status: Arc::clone(&status),
            balance: AtomicI64::new(0),
        });
        // Ownership of the box moves to the C producer here; the last of its callbacks frees it (`settle`).
        let ctx = Box::into_raw(ctx);
        let delivered = Some(producer_delivered::<D, F> as ffi::DispatcherDelivered);
        let finished = Some(producer_finished::<D, F> as ffi::DispatcherProducerFinished);
        // SAFETY: the dispatcher is alive and the Producer keeps it so (the core requires it to outlive the
        // producer); `dest` is NUL-terminated for the call (copied); `ctx` is a live box whose callbacks are
        // `producer_delivered`/`producer_finished` of the same <D, F>, and D/F are Send (+ Sync for the shared D).
        let started = with_c_str("dest", dest, |dest| unsafe {
            ffi::producer_start(
                dispatcher.ptr(),
                dest.as_ptr(),
                count,
                interval_ms,
                delivered,
                ctx.cast(),
                finished,
                ctx.cast(),
            )
        });
        let (reason, raw) = match started {
            Ok(raw) => (PostError::Dispatcher, NonNull::new(raw)),
            Err(nul) => (PostError::InteriorNul(nul), None),
        };
        let Some(raw) = raw else {
            // Nothing started, so nothing was posted and no callback will ever see `ctx`.
            // SAFETY: the box came from Box::into_raw above and the core never kept it: rebuilt once.
            let ctx = unsafe { Box::from_raw(ctx) };
            let on_finished = ctx.on_finished.into_inner().unwrap_or_else(PoisonError::into_inner);
            return Err(StartRefused {
                reason,
                on_delivered: ctx.on_delivered,
                on_finished: on_finished.expect("never called"),
            });
        };
        Ok(Producer { raw, status, _dispatcher: Arc::clone(&dispatcher.raw) })
    }

    /// Stops the producer now and joins its thread (`on_finished` has run when this returns). `true` if this call
    /// stopped it before it had posted everything; `false` if it had finished or was already stopped.
    pub fn stop(&self) -> bool {
        // SAFETY: `raw` is our live producer (freed only in Drop). From the producer's own thread (an `on_finished`
        // that captured its Producer, which `start` forbids) the core's join would throw inside a noexcept
        // function: std::terminate, an abort, not undefined behaviour.
        unsafe { ffi::producer_stop(self.raw.as_ptr()) == 1 }
    }

    /// Has it called `on_finished` (posted all, or stopped)?
    pub fn is_finished(&self) -> bool {
        self.status.finished.load(Ordering::Acquire)
    }

    /// How many it posted, once finished.
    pub fn posted(&self) -> Option<u32> {
        self.is_finished().then(|| self.status.posted.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("ptr", &self.raw).field("posted", &self.posted()).finish()
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // SAFETY: `raw` came from producer_start and is freed once, here (stops and joins first). The dispatcher
        // outlives this call: `_dispatcher` is dropped after it. The context box is not freed here (see `settle`).
        unsafe { ffi::producer_free(self.raw.as_ptr()) };
    }
}

/// The `on_delivered` of every post of a producer.
///
/// # Safety
/// Called by the dispatcher only, once per message the producer posted, with the producer's `ctx`.
unsafe extern "C" fn producer_delivered<D, F>(ctx: *mut c_void, delivered: i32)
where
    D: Fn(Delivered) + Send + Sync,
    F: FnOnce(u32) + Send,
{
    let ctx = ctx.cast_const().cast::<ProducerCtx<D, F>>();
    let _on_worker = OnWorker::enter();
    // SAFETY: this message has not been told yet, so its -1 is still owed to the balance: the box is alive.
    let on_delivered = unsafe { &(*ctx).on_delivered };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| on_delivered(Delivered::from_c(delivered)))) {
        discard_panic(payload);
    }
    // SAFETY: done with the box; pays this message's -1 (and frees the box if it was the last use).
    unsafe { ProducerCtx::settle(ctx, -1) };
}

/// The `on_finished` of a producer: called once, on its thread.
///
/// # Safety
/// Called by the C producer only, once, with its `finished_ctx` (the same box as `ctx`).
unsafe extern "C" fn producer_finished<D, F>(ctx: *mut c_void, posted: u32)
where
    D: Fn(Delivered) + Send + Sync,
    F: FnOnce(u32) + Send,
{
    let ctx = ctx.cast_const().cast::<ProducerCtx<D, F>>();
    // SAFETY: on_finished has not added `posted` yet, so the balance cannot have reached 0: the box is alive.
    let this = unsafe { &*ctx };
    this.status.posted.store(posted, Ordering::Relaxed);
    this.status.finished.store(true, Ordering::Release);
    let on_finished = this.on_finished.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(on_finished) = on_finished
        && let Err(payload) = catch_unwind(AssertUnwindSafe(move || on_finished(posted)))
    {
        discard_panic(payload);
    }
    // SAFETY: done with the box; adds what the posts still owe (and frees it if they were all told already).
    unsafe { ProducerCtx::settle(ctx, i64::from(posted)) };
}

#[cfg(test)]
mod tests;
