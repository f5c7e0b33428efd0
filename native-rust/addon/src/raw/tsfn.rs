//! The environment's one raw threadsafe function: what the dispatcher's worker thread and the producers' threads
//! hand to the JS thread. Raw `napi::sys`, fenced here on purpose.
//!
//! Why not napi-rs's `ThreadsafeFunction`: it needs napi-rs feature `napi4`, and with `napi4` napi-rs's module
//! registration creates a "custom GC" threadsafe function of its own in every environment (for napi-rs values
//! dropped off the JS thread; this addon has none) and never releases it. Checked in the locked napi 3.16.1
//! (`bindgen_runtime/module_register.rs`: `create_custom_gc`, called from module registration under
//! `#[cfg(feature = "napi4")]`, one per environment since napi-rs/napi-rs#3360); the custom GC itself dates from
//! the napi 2.x line (napi-rs/napi-rs#1433, #1505, 2023), so every napi 2.x/3.x release with `napi4` up to 3.16.1
//! is affected as far as we know (only 3.16.1 was checked here). Since nodejs/node#55877 (Node 24.14+, 25.4+, 26)
//! Node finalizes such a function at teardown but frees it only once its thread count reaches 0, so every
//! environment leaks it (392 B definitely lost; test/environments.test.ts, "Risk: %s leaves a threadsafe function
//! that Node never frees"). napi-rs keeps its handle in `pub(crate)` `CURRENT_CUSTOM_GC_HANDLE`: there is no
//! public way to release it, and crates.io has nothing newer than 3.16.1.
//! So the addon stays on `features = ["napi3"]`, and this module owns the threadsafe function itself. (napi 3.16.1's
//! `ThreadsafeFunction` also drops queued items on the floor when Node drains the queue with a NULL env at
//! teardown — its `call_js_cb` checks `raw_env.is_null()` and returns before `Box::from_raw(data)` — which
//! `call_js` below does not: see the seeded bug `seed-bug-tsfn-item-leaked`.)
//!
//! It knows nothing of the environment's state: its context is a [`Sink`] (the `EnvCell`, in `delivery.rs`) that
//! processes each item on the JS thread.
//!
//! Native-thread delivery (docs/raw-contract.md, "Native-thread delivery"): `post`, `produce`, `producer_stop`,
//! `finalize_producer`, `producer_active`, and the environment's threadsafe function that carries what the
//! dispatcher's worker thread (and the producers' threads) report to the JS thread.
//!
//! ```text
//! worker thread                                   │ JS thread: call_js, one item at a time, in queue order
//! JsCallback::on_send (off the JS thread)         │
//!   └ WORKER_BATCH += its handle (+ message copy) │
//! on_delivered(post closure, Ran(n))              │
//!   └ enqueue Message { waiter, handles, message }┼─► for each handle: live → call the function (counted, what it
//!                                                 │   throws kept); released (cancelled) → skipped. Then settle that
//! shutdown: on_delivered(.., Discarded)           │   post's promise, or count it for its producer
//!   └ enqueue Message { waiter, no handles }  ────┼─►
//! producer thread: on_finished(posted)            │
//!   └ enqueue Finished { waiter, posted } ────────┼─► the producer's `done`, once every message it posted was told
//! ```
//!
//! Ownership
//! - An [`Item`] is a `Box` from [`Marshal::enqueue`] until `call_js` takes it back: processed and dropped with a
//!   real env; only dropped with a NULL env (Node draining the queue after the environment's cleanup: napi-rs's
//!   `ThreadsafeFunction` leaks these). If the threadsafe function refuses it, `enqueue` drops it at once.
//! - A Message item names its subscriptions by handle, never by pointer. `dispatcher_cancel` waits for the worker
//!   to leave the callback, and the lookup skips a released slot: after `cancel()` returned true the callback never
//!   runs again, not even for messages already queued.
//! - A pending post or producer has a [`Waiter`] (its promise) under an id the items carry: JS thread only, in the
//!   environment's state.
//!
//! One item per message, not one per delivery plus a "done" item: the worker calls every callback of a message and
//! then its `on_delivered`, one message at a time, so the trampolines collect their handles in a worker-thread
//! batch that `on_delivered` moves into the message's item. Each threadsafe-function item costs a lock on both
//! threads, a wake-up and a callback scope on the JS thread; halving them (with one handler) took delivery from
//! ~0.8 to ~1.4 M messages/s. The deliveries of a message travel with it, and its text is copied once.
//!
//! Event loop: the threadsafe function is unref'd while idle and ref'd while a post is pending or a producer has not
//! completed (a count, changed on the JS thread only).

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use napi::sys;
use napi_ownership_dispatch::Delivered;

use crate::handles::Handle;
use crate::js::{Throw, check};

/// What the threadsafe function's context does with each item, on the JS thread.
pub trait Sink {
    /// The marshal whose threadsafe function carries the items (for the queued count).
    fn marshal(&self) -> &Marshal;
    /// Processes one item with a live env (the JS thread, between JS calls).
    fn process(&self, env: sys::napi_env, item: Item);
}

/// What other threads use of an environment: its threadsafe function and a counter. Atomics only, so it is `Sync`.
/// It lives in the [`EnvCell`], after the dispatcher (dropped last), and the cell outlives every thread that can
/// reach it: the environment cleanup hook joins the producers and the worker before anything is freed.
pub struct Marshal {
    /// Set once, by the module init, before any other thread exists.
    pub(crate) tsfn: AtomicPtr<sys::napi_threadsafe_function__>,
    /// Set on the JS thread when the threadsafe function is released: items are then dropped at once.
    pub(crate) released: AtomicBool,
    /// Items enqueued and not yet taken by `call_js` (with the dispatcher's queue: `stats().posts.pending`).
    pub(crate) queued: AtomicU64,
}

impl Marshal {
    pub fn new() -> Self {
        Marshal {
            tsfn: AtomicPtr::new(ptr::null_mut()),
            released: AtomicBool::new(false),
            queued: AtomicU64::new(0),
        }
    }

    pub(crate) fn tsfn(&self) -> sys::napi_threadsafe_function {
        self.tsfn.load(Ordering::Acquire)
    }

    /// A pointer for closures and handlers that other threads run.
    pub fn for_threads(&self) -> MarshalRef {
        MarshalRef(self)
    }

    /// Hands `item` to the JS thread (from any thread). The item is the threadsafe function's from here; if it is
    /// refused (released, closing), it is dropped now.
    pub fn enqueue(&self, item: Item) {
        let tsfn = self.tsfn();
        if tsfn.is_null() || self.released.load(Ordering::Acquire) {
            return;
        }
        // Ownership moves to the threadsafe function's queue: `call_js` takes it back (real or NULL env).
        let data = Box::into_raw(Box::new(item));
        // Counted before the call: call_js (which uncounts) may run on the JS thread before the call returns.
        self.queued.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `tsfn` is alive: it is released only by the cleanup hook on the JS thread, after every other
        // thread that enqueues has been joined, and later JS-thread enqueues see `released`. Non-blocking, on an
        // unbounded queue: never waits (a worker callback must not block on the JS thread, which may be cancelling).
        let status = unsafe {
            sys::napi_call_threadsafe_function(
                tsfn,
                data.cast(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        if status != sys::Status::napi_ok {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: refused, so Node did not keep `data`: still ours, rebuilt once.
            drop(unsafe { Box::from_raw(data) });
        }
    }

    /// Keeps the event loop alive while the threadsafe function has work (`napi_ref_threadsafe_function`). JS thread.
    pub(crate) fn hold_loop(&self, env: sys::napi_env) {
        // SAFETY: JS thread; our threadsafe function (not released: JS is running).
        let _ = unsafe { sys::napi_ref_threadsafe_function(env, self.tsfn()) };
    }

    /// Lets the event loop exit although the threadsafe function lives (`napi_unref_threadsafe_function`). JS thread.
    pub(crate) fn release_loop(&self, env: sys::napi_env) {
        // SAFETY: as in `hold_loop`.
        let _ = unsafe { sys::napi_unref_threadsafe_function(env, self.tsfn()) };
    }

    /// Items on the threadsafe function, not yet processed.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Releases the threadsafe function (environment cleanup, JS thread, once every other thread was joined). Node
    /// then finalizes it and drains what is still queued through `call_js` with a NULL env.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let tsfn = self.tsfn();
        if !tsfn.is_null() {
            // SAFETY: our threadsafe function, released once (the swap above); nothing calls it afterwards.
            let _ = unsafe {
                sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::release)
            };
        }
    }

    /// Marks it released without telling Node (instance-data finalizer: Node has already freed it by then).
    pub fn forget(&self) {
        self.released.store(true, Ordering::Release);
    }
}

/// A [`Marshal`] pointer that may cross threads.
#[derive(Clone, Copy)]
pub struct MarshalRef(*const Marshal);

// SAFETY: `Marshal` is Sync (atomics only) and outlives every thread that holds one of these (see `Marshal`).
unsafe impl Send for MarshalRef {}
// SAFETY: as for Send.
unsafe impl Sync for MarshalRef {}

impl MarshalRef {
    pub fn get(&self) -> &Marshal {
        // SAFETY: the Marshal lives in the EnvCell, which outlives every holder of a MarshalRef: handlers and post
        // closures are freed before it, and the threads that call them are joined by the cleanup hook before that.
        unsafe { &*self.0 }
    }
}

/// What a worker or producer thread reports to the JS thread.
pub enum Item {
    /// A posted message (of post or producer `waiter`) was delivered on the worker, entering the callbacks of
    /// `handles` (in order), or discarded by a shutdown (no handles).
    Message { waiter: u64, delivered: Delivered, text: Text, handles: Handles },
    /// Producer `waiter` has posted everything it will.
    Finished { waiter: u64, posted: u32 },
}

/// An owned copy of a message: inline when short (the producers' "0", "1", ...), else boxed.
pub enum Text {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Heap(Box<str>),
}

impl Text {
    const INLINE: usize = 30;

    pub(crate) fn new(text: &str) -> Self {
        if text.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Text::Inline { len: text.len() as u8, bytes }
        } else {
            Text::Heap(text.into())
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Text::Heap(text) => text.as_bytes(),
        }
    }
}

/// The subscriptions a message was delivered to, in order: inline up to four, then spilled to a Vec.
#[derive(Default)]
pub struct Handles {
    pub(crate) len: usize,
    pub(crate) inline: [Handle; 4],
    pub(crate) spill: Vec<Handle>,
}

impl Handles {
    pub(crate) fn push(&mut self, handle: Handle) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = handle,
            None => self.spill.push(handle),
        }
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Handle> + '_ {
        self.inline[..self.len.min(self.inline.len())].iter().chain(&self.spill).copied()
    }
}

/// What the trampolines collected on this thread for the message the worker is delivering now.
pub(crate) struct WorkerBatch {
    pub(crate) text: Option<Text>,
    pub(crate) handles: Handles,
}

thread_local! {
    /// Filled by [`worker_delivered`] (a JsCallback called off the JS thread: only the dispatcher's worker does
    /// that) and emptied by the same message's `on_delivered`, which the worker calls right after its callbacks.
    /// Each environment's dispatcher has a worker of its own, so a batch never mixes environments.
    static WORKER_BATCH: RefCell<Option<WorkerBatch>> = const { RefCell::new(None) };
}

/// Records, on the worker thread, that the callback of `subscription` was entered for `message`.
pub fn worker_delivered(subscription: Handle, message: &str) {
    WORKER_BATCH.with_borrow_mut(|batch| {
        let batch = batch.get_or_insert_with(|| WorkerBatch { text: None, handles: Handles::default() });
        if batch.text.is_none() {
            // Every callback of one message gets the same text: one copy.
            batch.text = Some(Text::new(message));
        }
        batch.handles.push(subscription);
    });
}

/// The item for one posted message, told to its `on_delivered` (on the worker, or on a shutdown's thread).
pub(crate) fn message_item(waiter: u64, delivered: Delivered) -> Item {
    let batch = match delivered {
        // The worker just ran this message's callbacks: the batch is theirs (taken whole: nothing stays behind).
        Delivered::Ran(_) => WORKER_BATCH.with_borrow_mut(Option::take),
        // Discarded before delivery: no callbacks, and the batch (if any) is not ours.
        Delivered::Discarded => None,
    };
    let WorkerBatch { text, handles } =
        batch.unwrap_or_else(|| WorkerBatch { text: None, handles: Handles::default() });
    Item::Message {
        waiter,
        delivered,
        text: text.unwrap_or(Text::Inline { len: 0, bytes: [0; Text::INLINE] }),
        handles,
    }
}

/// Creates the environment's threadsafe function, unref'd (an idle addon does not keep the loop alive). Its context
/// is `sink` (the EnvCell), which must outlive it (instance data is finalized after the threadsafe function is gone).
pub fn create_tsfn<S: Sink>(
    env: sys::napi_env,
    sink: *const S,
) -> Result<sys::napi_threadsafe_function, Throw> {
    let name = c"napi-ownership-rust delivery";
    let mut resource_name = ptr::null_mut();
    let mut tsfn = ptr::null_mut();
    // SAFETY: plain Node-API calls on the initialising environment with locals as out-parameters. No JS function
    // (call_js does the calling); queue unbounded (0), one "thread" (our release in the cleanup hook).
    unsafe {
        check(
            env,
            sys::napi_create_string_utf8(env, name.as_ptr(), name.count_bytes() as isize, &mut resource_name),
            "napi_create_string_utf8",
        )?;
        check(
            env,
            sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                resource_name,
                0,
                1,
                ptr::null_mut(),
                None,
                sink.cast_mut().cast(),
                Some(call_js::<S>),
                &mut tsfn,
            ),
            "napi_create_threadsafe_function",
        )?;
        check(env, sys::napi_unref_threadsafe_function(env, tsfn), "napi_unref_threadsafe_function")?;
    }
    Ok(tsfn)
}

/// Stores the threadsafe function made by [`create_tsfn`] (module init, before any other thread can see it).
pub fn set_tsfn(marshal: &Marshal, tsfn: sys::napi_threadsafe_function) {
    marshal.tsfn.store(tsfn, Ordering::Release);
}

/// The threadsafe function's call-js callback: Node hands back every item, once.
///
/// # Safety
/// Called by Node only, on the environment's JS thread, with `data` from [`Marshal::enqueue`] and `context` the
/// environment's sink (its EnvCell); `env` is NULL when the environment is gone (the queue is being drained).
unsafe extern "C" fn call_js<S: Sink>(
    env: sys::napi_env,
    _js: sys::napi_value,
    context: *mut c_void,
    data: *mut c_void,
) {
    // SAFETY: `data` is the Box<Item> leaked by `enqueue`; Node gives each queued item to call_js exactly once.
    let item = unsafe { Box::from_raw(data.cast::<Item>()) };
    if env.is_null() {
        // Teardown: no JS, no state. Freed here: the message copy or the record.
        #[cfg(not(feature = "seed-bug-tsfn-item-leaked"))]
        drop(item);
        // Seeded bug 10 (leak-self-test mutant 10; self-test builds only): napi-rs's ThreadsafeFunction behaviour, the item is
        // leaked. black_box keeps the optimiser from treating the pointer as dead and the leak as removable.
        #[cfg(feature = "seed-bug-tsfn-item-leaked")]
        std::hint::black_box(Box::into_raw(item));
        return;
    }
    // SAFETY: `context` is the sink given to create_tsfn; it is freed only after the threadsafe function was
    // finalized, and with a non-NULL env we are on its JS thread, between JS calls (no export holds its state).
    let sink = unsafe { &*context.cast_const().cast::<S>() };
    sink.marshal().queued.fetch_sub(1, Ordering::Relaxed);
    let _ = catch_unwind(AssertUnwindSafe(|| sink.process(env, *item)));
    // Nothing above may leave an exception behind (there is no JS caller to receive it).
    let mut pending = false;
    // SAFETY: plain queries of this environment.
    if unsafe { sys::napi_is_exception_pending(env, &mut pending) } == sys::Status::napi_ok && pending {
        let mut error = ptr::null_mut();
        // SAFETY: as above.
        let _ = unsafe { sys::napi_get_and_clear_last_exception(env, &mut error) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_inline_when_short_and_boxed_when_long() {
        let short = Text::new("12345");
        assert!(matches!(short, Text::Inline { len: 5, .. }));
        assert_eq!(short.as_bytes(), b"12345");
        let edge = "x".repeat(Text::INLINE);
        assert!(matches!(Text::new(&edge), Text::Inline { .. }));
        let long = "Grüße ".repeat(10);
        let text = Text::new(&long);
        assert!(matches!(text, Text::Heap(_)));
        assert_eq!(text.as_bytes(), long.as_bytes());
    }

    #[test]
    fn handles_keep_their_order_inline_and_spilled() {
        let mut handles = Handles::default();
        let make = |slot| Handle { env: 1, tag: 0b1010, generation: 1, slot };
        for slot in 0..7 {
            handles.push(make(slot));
        }
        assert_eq!(handles.len(), 7);
        assert_eq!(handles.iter().map(|h| h.slot).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(handles.spill.len(), 3, "four inline, the rest spilled");
        assert_eq!(Handles::default().iter().count(), 0);
    }

    #[test]
    fn a_discarded_message_never_takes_the_worker_batch() {
        worker_delivered(Handle { env: 1, tag: 0b1010, generation: 1, slot: 3 }, "m");
        let Item::Message { handles, .. } = message_item(7, Delivered::Discarded) else { panic!() };
        assert_eq!(handles.len(), 0);
        let Item::Message { waiter, delivered, text, handles } = message_item(7, Delivered::Ran(1)) else {
            panic!()
        };
        assert_eq!((waiter, delivered, text.as_bytes()), (7, Delivered::Ran(1), &b"m"[..]));
        assert_eq!(handles.iter().map(|h| h.slot).collect::<Vec<_>>(), [3]);
        let Item::Message { handles, .. } = message_item(8, Delivered::Ran(0)) else { panic!() };
        assert_eq!(handles.len(), 0, "taken whole by the previous message");
    }
}
