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

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use crate::error_codes::*;
use napi::sys;
use napi_ownership_dispatch::{Delivered, Producer};

use crate::args::{BACKEND, Utf8Arg, decode_handle, handle_error, read_dest, read_message};
use crate::call::{
    Call, CallResult, Export, Throw, check, create_double, create_object, get_boolean, invalid_arg_type,
    number_to_string,
};
use crate::handles::{Handle, HandleError, Kind};
use crate::state::EnvCell;
use crate::strings::borrow_state;
use crate::subscriptions::collected_error;

// ---------------------------------------------------------------------------------------------------------------------
// The threadsafe function and what travels through it

/// What other threads use of an environment: its threadsafe function and a counter. Atomics only, so it is `Sync`.
/// It lives in the [`EnvCell`], after the dispatcher (dropped last), and the cell outlives every thread that can
/// reach it: the environment cleanup hook joins the producers and the worker before anything is freed.
pub struct Marshal {
    /// Set once, by the module init, before any other thread exists.
    tsfn: AtomicPtr<sys::napi_threadsafe_function__>,
    /// Set on the JS thread when the threadsafe function is released: items are then dropped at once.
    released: AtomicBool,
    /// Items enqueued and not yet taken by `call_js` (with the dispatcher's queue: `stats().posts.pending`).
    queued: AtomicU64,
}

impl Marshal {
    pub fn new() -> Self {
        Marshal {
            tsfn: AtomicPtr::new(ptr::null_mut()),
            released: AtomicBool::new(false),
            queued: AtomicU64::new(0),
        }
    }

    fn tsfn(&self) -> sys::napi_threadsafe_function {
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

    fn new(text: &str) -> Self {
        if text.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Text::Inline { len: text.len() as u8, bytes }
        } else {
            Text::Heap(text.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Text::Heap(text) => text.as_bytes(),
        }
    }
}

/// The subscriptions a message was delivered to, in order: inline up to four, then spilled to a Vec.
#[derive(Default)]
pub struct Handles {
    len: usize,
    inline: [Handle; 4],
    spill: Vec<Handle>,
}

impl Handles {
    fn push(&mut self, handle: Handle) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = handle,
            None => self.spill.push(handle),
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = Handle> + '_ {
        self.inline[..self.len.min(self.inline.len())].iter().chain(&self.spill).copied()
    }
}

/// What the trampolines collected on this thread for the message the worker is delivering now.
struct WorkerBatch {
    text: Option<Text>,
    handles: Handles,
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
fn message_item(waiter: u64, delivered: Delivered) -> Item {
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
/// is the EnvCell, which outlives it (instance data is finalized after the threadsafe function is gone).
pub fn create_tsfn(env: sys::napi_env, cell: *const EnvCell) -> Result<sys::napi_threadsafe_function, Throw> {
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
                cell.cast_mut().cast(),
                Some(call_js),
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
/// environment's EnvCell; `env` is NULL when the environment is gone (the queue is being drained).
unsafe extern "C" fn call_js(
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
        // Seeded bug 4 (leak-test self-test builds only): napi-rs's ThreadsafeFunction behaviour, the item is
        // leaked. black_box keeps the optimiser from treating the pointer as dead and the leak as removable.
        #[cfg(feature = "seed-bug-tsfn-item-leaked")]
        std::hint::black_box(Box::into_raw(item));
        return;
    }
    // SAFETY: `context` is the EnvCell given to create_tsfn; it is freed only after the threadsafe function was
    // finalized, and with a non-NULL env we are on its JS thread, between JS calls (no export holds its state).
    let cell = unsafe { &*context.cast_const().cast::<EnvCell>() };
    cell.marshal.queued.fetch_sub(1, Ordering::Relaxed);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _ = match *item {
            Item::Message { waiter, delivered, text, handles } => {
                message(env, cell, waiter, delivered, &text, &handles)
            }
            Item::Finished { waiter, posted } => finished(env, cell, waiter, posted),
        };
    }));
    // Nothing above may leave an exception behind (there is no JS caller to receive it).
    let mut pending = false;
    // SAFETY: plain queries of this environment.
    if unsafe { sys::napi_is_exception_pending(env, &mut pending) } == sys::Status::napi_ok && pending {
        let mut error = ptr::null_mut();
        // SAFETY: as above.
        let _ = unsafe { sys::napi_get_and_clear_last_exception(env, &mut error) };
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// JS-thread bookkeeping

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

/// Values thrown by callbacks, kept alive by strong references until they are handed to JS (or dropped).
pub struct Thrown {
    env: sys::napi_env,
    refs: Vec<sys::napi_ref>,
    /// How many were thrown (those beyond what could be kept are still counted).
    count: usize,
}

impl Thrown {
    fn new(env: sys::napi_env) -> Self {
        Thrown { env, refs: Vec::new(), count: 0 }
    }

    /// Keeps `error`, unless `limit` are kept already (then it is only counted).
    fn record(&mut self, error: sys::napi_value, limit: usize) {
        self.count += 1;
        if self.refs.len() >= limit || self.refs.try_reserve(1).is_err() {
            return;
        }
        let mut reference = ptr::null_mut();
        // SAFETY: `error` is a value of the current scope; count 1 makes the reference strong. Deleted in Drop.
        if unsafe { sys::napi_create_reference(self.env, error, 1, &mut reference) } == sys::Status::napi_ok {
            self.refs.push(reference);
        }
    }

    fn absorb(&mut self, mut other: Thrown, limit: usize) {
        self.count += other.count;
        while self.refs.len() < limit && !other.refs.is_empty() {
            self.refs.push(other.refs.remove(0));
        }
    }

    /// The kept values, in order (their references are deleted when `self` drops).
    fn values(&self) -> Vec<sys::napi_value> {
        let mut values = Vec::with_capacity(self.refs.len());
        for &reference in &self.refs {
            let mut value = ptr::null_mut();
            // SAFETY: our live strong reference.
            if unsafe { sys::napi_get_reference_value(self.env, reference, &mut value) }
                == sys::Status::napi_ok
            {
                values.push(value);
            }
        }
        values
    }
}

impl Drop for Thrown {
    fn drop(&mut self) {
        for reference in self.refs.drain(..) {
            // SAFETY: created by `record` on this environment (JS thread, where Thrown lives), deleted once here.
            let _ = unsafe { sys::napi_delete_reference(self.env, reference) };
        }
    }
}

/// A post's promise cannot hold more errors than it has callbacks; a producer's keeps this many (and counts all).
const PRODUCER_ERRORS_KEPT: usize = 100;

/// A promise this addon will settle, held by strong references to its `resolve` and `reject` functions. Not a
/// `napi_deferred`: one that is never concluded (an environment torn down with a post pending) leaks Node's
/// persistent handle, and concluding needs JS, which no longer runs then. References can be deleted at teardown:
/// Drop deletes them, settled or not.
struct PendingPromise {
    env: sys::napi_env,
    resolve: sys::napi_ref,
    reject: sys::napi_ref,
}

thread_local! {
    /// `(resolve, reject)` of the promise being constructed on this thread, left by `capture_executor`. Used as a
    /// stack: `PendingPromise::create` sets aside what an outer construction left here and puts it back (a promise
    /// init hook runs JS inside `new Promise`, and that JS may post again).
    static CAPTURED: Cell<Option<(sys::napi_ref, sys::napi_ref)>> = const { Cell::new(None) };
}

/// Deletes a pair of references that nobody will own.
fn delete_pair(env: sys::napi_env, pair: Option<(sys::napi_ref, sys::napi_ref)>) {
    for reference in pair.into_iter().flat_map(|(resolve, reject)| [resolve, reject]) {
        // SAFETY: made by `capture_executor` on this environment's thread, owned by nobody else; deleted once.
        let _ = unsafe { sys::napi_delete_reference(env, reference) };
    }
}

/// The executor of `new Promise(executor)`: keeps strong references to its `resolve` and `reject` in [`CAPTURED`].
///
/// # Safety
/// Called by V8 (through Node-API) only, synchronously inside `napi_new_instance` in [`PendingPromise::create`].
unsafe extern "C" fn capture_executor(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let mut argc = 2;
    let mut args = [ptr::null_mut(); 2];
    let (mut resolve, mut reject) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: `info` is this call's; `args` has room for two values; the references are strong (count 1) and owned
    // by the PendingPromise that takes them from CAPTURED (or deleted below if one could not be made).
    unsafe {
        if sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), ptr::null_mut())
            != sys::Status::napi_ok
        {
            return ptr::null_mut();
        }
        let made_resolve = sys::napi_create_reference(env, args[0], 1, &mut resolve) == sys::Status::napi_ok;
        let made_reject = sys::napi_create_reference(env, args[1], 1, &mut reject) == sys::Status::napi_ok;
        if !(made_resolve && made_reject) {
            for reference in [resolve, reject].into_iter().filter(|r| !r.is_null()) {
                let _ = sys::napi_delete_reference(env, reference);
            }
            return ptr::null_mut();
        }
    }
    // A constructor that is not the real Promise (a patched global at the first post) may call its executor twice:
    // the last call wins, and the earlier references are deleted, not leaked.
    delete_pair(env, CAPTURED.replace(Some((resolve, reject))));
    ptr::null_mut()
}

/// What makes promises in one environment: the original `Promise` constructor and our executor, kept by strong
/// references (deleted at teardown).
struct PromiseKit {
    env: sys::napi_env,
    constructor: sys::napi_ref,
    executor: sys::napi_ref,
}

impl PromiseKit {
    fn new(env: sys::napi_env) -> Result<Self, Throw> {
        let (mut global, mut constructor, mut executor) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        let mut kit = PromiseKit { env, constructor: ptr::null_mut(), executor: ptr::null_mut() };
        let name = c"executor";
        // SAFETY: plain Node-API calls with locals as out-parameters; the references are owned by `kit` (Drop).
        unsafe {
            check(env, sys::napi_get_global(env, &mut global), "napi_get_global")?;
            check(
                env,
                sys::napi_get_named_property(env, global, c"Promise".as_ptr(), &mut constructor),
                "napi_get_named_property",
            )?;
            check(
                env,
                sys::napi_create_function(
                    env,
                    name.as_ptr(),
                    name.count_bytes() as isize,
                    Some(capture_executor),
                    ptr::null_mut(),
                    &mut executor,
                ),
                "napi_create_function",
            )?;
            check(
                env,
                sys::napi_create_reference(env, constructor, 1, &mut kit.constructor),
                "napi_create_reference",
            )?;
            check(
                env,
                sys::napi_create_reference(env, executor, 1, &mut kit.executor),
                "napi_create_reference",
            )?;
        }
        Ok(kit)
    }
}

impl Drop for PromiseKit {
    fn drop(&mut self) {
        for reference in [self.constructor, self.executor].into_iter().filter(|r| !r.is_null()) {
            // SAFETY: created by `new` on this environment, deleted once here.
            let _ = unsafe { sys::napi_delete_reference(self.env, reference) };
        }
    }
}

impl PromiseKit {
    /// The constructor and the executor, as values of the current scope.
    fn values(&self) -> Result<(sys::napi_value, sys::napi_value), Throw> {
        let (mut constructor, mut executor) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: the kit's live strong references; locals as out-parameters.
        unsafe {
            check(
                self.env,
                sys::napi_get_reference_value(self.env, self.constructor, &mut constructor),
                "napi_get_reference_value",
            )?;
            check(
                self.env,
                sys::napi_get_reference_value(self.env, self.executor, &mut executor),
                "napi_get_reference_value",
            )?;
        }
        Ok((constructor, executor))
    }
}

/// A new promise of this environment and what settles it. Holds no borrow of the state while JS can run: making the
/// kit on the first use looks `Promise` up on `globalThis` (a getter may run), and `new Promise` runs any promise init
/// hook (async_hooks, v8.promiseHooks); that JS may call any export, post and produce included.
fn new_promise(env: sys::napi_env, cell: &EnvCell) -> Result<(PendingPromise, sys::napi_value), Throw> {
    let reentrant = || Throw::internal("reentrant call into the rust backend");
    let kit =
        cell.try_borrow().map_err(|_| reentrant())?.posts.kit.as_ref().map(PromiseKit::values).transpose()?;
    let (constructor, executor) = match kit {
        Some(values) => values,
        None => {
            let kit = PromiseKit::new(env)?; // JS may run: no borrow held
            let values = kit.values()?;
            // The JS above may have made one too (a getter that posts): the first one stays, this one is dropped.
            cell.try_borrow_mut().map_err(|_| reentrant())?.posts.kit.get_or_insert(kit);
            values
        }
    };
    PendingPromise::create(env, constructor, executor)
}

impl PendingPromise {
    /// `new Promise(executor)` with the kit's values: the promise, and what settles it.
    fn create(
        env: sys::napi_env,
        constructor: sys::napi_value,
        executor: sys::napi_value,
    ) -> Result<(PendingPromise, sys::napi_value), Throw> {
        let mut promise = ptr::null_mut();
        let outer = CAPTURED.take(); // an outer construction's (see CAPTURED); put back below, on every path
        // SAFETY: values of the current scope. Runs JS: promise hooks, or a patched constructor (see `new_promise`).
        let status = unsafe { sys::napi_new_instance(env, constructor, 1, &executor, &mut promise) };
        let captured = CAPTURED.replace(outer);
        if let Err(thrown) = check(env, status, "napi_new_instance") {
            delete_pair(env, captured);
            return Err(thrown);
        }
        // Ownership of the two references moves from the executor's hand-off to the PendingPromise.
        let (resolve, reject) =
            captured.ok_or_else(|| Throw::internal("the Promise executor was not called"))?;
        Ok((PendingPromise { env, resolve, reject }, promise))
    }

    /// Calls `resolve(value)` or `reject(error)`; the references go with `self`.
    fn settle(self, outcome: Result<sys::napi_value, sys::napi_value>) {
        let (function, value) = match outcome {
            Ok(value) => (self.resolve, value),
            Err(error) => (self.reject, error),
        };
        let env = self.env;
        let (mut function_value, mut undefined, mut result) =
            (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: our live strong reference. Resolving or rejecting can run JS (a promise hook; resolving with a
        // thenable): `self` was moved out of the state, and the caller holds no borrow of it.
        unsafe {
            if sys::napi_get_reference_value(env, function, &mut function_value) == sys::Status::napi_ok
                && sys::napi_get_undefined(env, &mut undefined) == sys::Status::napi_ok
            {
                let _ = sys::napi_call_function(env, undefined, function_value, 1, &value, &mut result);
            }
        }
    }
}

impl Drop for PendingPromise {
    fn drop(&mut self) {
        for reference in [self.resolve, self.reject] {
            // SAFETY: made by `capture_executor` on this environment (JS thread, where this lives), deleted once.
            let _ = unsafe { sys::napi_delete_reference(self.env, reference) };
        }
    }
}

/// Who is waiting for Done/Finished items with a given id.
enum Waiter {
    Post { promise: PendingPromise, dest: Box<str> },
    Producer(ProducerWaiter),
}

struct ProducerWaiter {
    promise: PendingPromise,
    dest: Box<str>,
    /// Known once its Finished item arrived.
    posted: Option<u32>,
    /// Done items processed for its messages.
    told: u64,
    thrown: Thrown,
}

impl ProducerWaiter {
    fn complete(&self) -> bool {
        self.posted.is_some_and(|posted| u64::from(posted) == self.told)
    }
}

/// Waiters by id: a slab, whose id is the slot. A slot is reused only after its waiter was removed, which happens
/// when its last item arrived (a post's Message; a producer's Finished and every Message), so no later item can
/// name it. Not a HashMap: hashbrown keeps an interior pointer to its table, which valgrind reports as "possibly
/// lost" when the process exits without environment teardown (`process.exit()` on the main thread) with posts
/// pending.
struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u64>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Stores `value`; its id. Never aborts on allocation failure.
    fn insert(&mut self, value: T) -> Result<u64, Throw> {
        if let Some(id) = self.free.pop() {
            self.slots[id as usize] = Some(value);
            return Ok(id);
        }
        // Room to park the slot on the free list later, so `remove` never allocates.
        let reserve = self.slots.len() + 1 - self.free.len();
        if self.slots.try_reserve(1).is_err() || self.free.try_reserve(reserve).is_err() {
            return Err(Throw::range_error(
                ERR_NATIVE_ALLOC,
                "could not allocate the record of a pending post".to_owned(),
            ));
        }
        self.slots.push(Some(value));
        Ok((self.slots.len() - 1) as u64)
    }

    fn get(&self, id: u64) -> Option<&T> {
        self.slots.get(id as usize)?.as_ref()
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.slots.get_mut(id as usize)?.as_mut()
    }

    fn remove(&mut self, id: u64) -> Option<T> {
        let value = self.slots.get_mut(id as usize)?.take()?;
        self.free.push(id);
        Some(value)
    }
}

/// The JS-thread side of native-thread delivery, in the environment's state.
pub struct Posts {
    pub ledger: PostLedger,
    /// Made on the first post or produce.
    kit: Option<PromiseKit>,
    waiters: Slab<Waiter>,
    /// Pending posts plus producers not complete: the threadsafe function is ref'd while non-zero.
    keepalive: u64,
}

impl Posts {
    pub fn new() -> Self {
        Posts { ledger: PostLedger::default(), kit: None, waiters: Slab::default(), keepalive: 0 }
    }

    /// One more reason to keep the event loop alive.
    fn hold(&mut self, env: sys::napi_env, marshal: &Marshal) {
        if self.keepalive == 0 {
            // SAFETY: JS thread; our threadsafe function (not released: JS is running).
            let _ = unsafe { sys::napi_ref_threadsafe_function(env, marshal.tsfn()) };
        }
        self.keepalive += 1;
    }

    /// One reason fewer; the loop may exit once there are none.
    fn unhold(&mut self, env: sys::napi_env, marshal: &Marshal) {
        self.keepalive -= 1;
        if self.keepalive == 0 {
            // SAFETY: as in `hold`.
            let _ = unsafe { sys::napi_unref_threadsafe_function(env, marshal.tsfn()) };
        }
    }
}

/// A producer slot (kind 3): owns the producer (its thread and native record). Its `done` is a waiter in `Posts`.
pub struct ProducerSlot {
    producer: Producer,
}

/// `stats().posts`.
pub fn post_stats(env: sys::napi_env, ledger: PostLedger, pending: u64) -> CallResult {
    let count = |n: u64| create_double(env, n as f64);
    create_object(
        env,
        &[
            (c"posted", count(ledger.posted)?),
            (c"delivered", count(ledger.delivered)?),
            (c"skipped", count(ledger.skipped)?),
            (c"pending", count(pending)?),
        ],
    )
}

/// `stats().producers`.
pub fn producer_stats(env: sys::napi_env, ledger: ProducerLedger, live: u64) -> CallResult {
    let count = |n: u64| create_double(env, n as f64);
    create_object(
        env,
        &[
            (c"live", count(live)?),
            (c"started", count(ledger.started)?),
            (c"stopped", count(ledger.stopped)?),
            (c"finalized", count(ledger.finalized)?),
        ],
    )
}

// ---------------------------------------------------------------------------------------------------------------------
// Processing items on the JS thread

fn state_of(cell: &EnvCell) -> Result<std::cell::RefMut<'_, crate::state::EnvState>, Throw> {
    cell.try_borrow_mut().map_err(|_| Throw::internal("threadsafe function called during a call"))
}

/// A Message item: runs the callbacks the worker entered for it (those still subscribed), then settles its post's
/// promise or counts it for its producer.
fn message(
    env: sys::napi_env,
    cell: &EnvCell,
    id: u64,
    delivered: Delivered,
    text: &Text,
    handles: &Handles,
) -> Result<(), Throw> {
    debug_assert!(
        match delivered {
            Delivered::Ran(entered) => entered as usize == handles.len(),
            Delivered::Discarded => handles.len() == 0,
        },
        "the worker's batch holds exactly the callbacks it entered for this message"
    );
    let limit = match state_of(cell)?.posts.waiters.get(id) {
        Some(Waiter::Producer(_)) => PRODUCER_ERRORS_KEPT,
        _ => usize::MAX,
    };
    let mut thrown = Thrown::new(env);
    let mut ran = 0u32;
    // One JS string for every callback of this message, made at the first that is still subscribed.
    let mut js_text = ptr::null_mut();
    for subscription in handles.iter() {
        match deliver(env, cell, subscription, text, &mut js_text)? {
            Outcome::Skipped => {}
            Outcome::Ran => ran += 1,
            Outcome::Threw(error) => {
                ran += 1;
                thrown.record(error, limit);
            }
        }
    }
    let mut state = state_of(cell)?;
    let posts = &mut state.posts;
    match posts.waiters.get_mut(id) {
        // Nobody waits (cannot happen: a waiter is recorded before its post and removed after its last item).
        None => Ok(()),
        Some(Waiter::Post { .. }) => {
            let Some(Waiter::Post { promise, dest }) = posts.waiters.remove(id) else { unreachable!() };
            posts.unhold(env, &cell.marshal);
            drop(state);
            settle_post(env, promise, &dest, ran, thrown)
        }
        Some(Waiter::Producer(producer)) => {
            posts.ledger.posted += 1;
            producer.told += 1;
            producer.thrown.absorb(thrown, PRODUCER_ERRORS_KEPT);
            finish_producer_if_complete(env, cell, state, id)
        }
    }
}

/// What became of one delivery.
enum Outcome {
    /// The subscription was cancelled (or shut down) after the worker entered its callback: never called again.
    Skipped,
    Ran,
    Threw(sys::napi_value),
}

/// Calls the function of `subscription` with the message, unless it was cancelled meanwhile.
fn deliver(
    env: sys::napi_env,
    cell: &EnvCell,
    subscription: Handle,
    text: &Text,
    js_text: &mut sys::napi_value,
) -> Result<Outcome, Throw> {
    let function = {
        let mut state = state_of(cell)?;
        let function = match state.subscriptions.get_mut(subscription.slot, subscription.generation) {
            Ok(wrapper) => wrapper.handler().function(),
            Err(_) => {
                state.posts.ledger.skipped += 1;
                return Ok(Outcome::Skipped);
            }
        };
        let mut value = ptr::null_mut();
        // SAFETY: the subscription's live strong reference (its slot is live and we hold the state).
        let status = unsafe { sys::napi_get_reference_value(env, function, &mut value) };
        check(env, status, "napi_get_reference_value")?;
        value
    };
    let (mut undefined, mut result) = (ptr::null_mut(), ptr::null_mut());
    if js_text.is_null() {
        let bytes = text.as_bytes();
        // SAFETY: call_js's handle scope; `bytes` outlive the copy Node makes.
        let status = unsafe {
            sys::napi_create_string_utf8(env, bytes.as_ptr().cast(), bytes.len() as isize, js_text)
        };
        check(env, status, "napi_create_string_utf8")?;
    }
    // SAFETY: a local as out-parameter.
    check(env, unsafe { sys::napi_get_undefined(env, &mut undefined) }, "napi_get_undefined")?;
    // SAFETY: `function` was read from the live reference above; no state borrow is held (the callback may call
    // any export, including cancel and shutdown).
    let status = unsafe { sys::napi_call_function(env, undefined, function, 1, &*js_text, &mut result) };
    let outcome = if status == sys::Status::napi_ok {
        Outcome::Ran
    } else {
        let mut pending = false;
        // SAFETY: plain queries of this environment.
        let asked = unsafe { sys::napi_is_exception_pending(env, &mut pending) };
        if asked != sys::Status::napi_ok || !pending {
            return Ok(Outcome::Skipped); // JS cannot run any more (a terminating worker): it did not run
        }
        let mut error = ptr::null_mut();
        // SAFETY: an exception is pending; taking it is ours to report.
        let status = unsafe { sys::napi_get_and_clear_last_exception(env, &mut error) };
        check(env, status, "napi_get_and_clear_last_exception")?;
        Outcome::Threw(error)
    };
    state_of(cell)?.posts.ledger.delivered += 1;
    Ok(outcome)
}

/// A Finished item: producer `id` has posted `posted` messages and ended.
fn finished(env: sys::napi_env, cell: &EnvCell, id: u64, posted: u32) -> Result<(), Throw> {
    let mut state = state_of(cell)?;
    if let Some(Waiter::Producer(producer)) = state.posts.waiters.get_mut(id) {
        producer.posted = Some(posted);
    }
    finish_producer_if_complete(env, cell, state, id)
}

/// Resolves a producer's `done` once it has finished and every message it posted was told.
fn finish_producer_if_complete(
    env: sys::napi_env,
    cell: &EnvCell,
    mut state: std::cell::RefMut<'_, crate::state::EnvState>,
    id: u64,
) -> Result<(), Throw> {
    let posts = &mut state.posts;
    let complete = matches!(posts.waiters.get(id), Some(Waiter::Producer(p)) if p.complete());
    if !complete {
        return Ok(());
    }
    let Some(Waiter::Producer(producer)) = posts.waiters.remove(id) else { unreachable!() };
    posts.unhold(env, &cell.marshal);
    drop(state);
    let posted = create_double(env, f64::from(producer.posted.unwrap_or(0)))?;
    if producer.thrown.count != 0 {
        // No promise of a message to reject: `done` resolves (the TypeScript layer releases the producer on it), and
        // what the callbacks threw is reported as a process warning, as Node does for an exception a threadsafe
        // function's callback leaves at this Node-API version.
        let values = producer.thrown.values();
        // process.emitWarning takes an Error (or a string): a lone value of any other kind goes into an AggregateError.
        let single_is_error = values.len() == 1 && is_error(env, values[0]);
        match collected_error(env, &values, producer.thrown.count, &producer.dest, single_is_error) {
            Ok(error) => emit_warning(env, error),
            // Could not build it (a getter for AggregateError threw): no warning, and nothing left pending, or the
            // resolve call below could not run and `done` would never settle.
            Err(_) => drop(take_exception(env)),
        }
    }
    producer.promise.settle(Ok(posted));
    Ok(())
}

/// Resolves a post's promise with how many callbacks ran, or rejects it with what they threw.
fn settle_post(
    env: sys::napi_env,
    promise: PendingPromise,
    dest: &str,
    ran: u32,
    thrown: Thrown,
) -> Result<(), Throw> {
    if thrown.count == 0 {
        let ran = create_double(env, f64::from(ran))?;
        promise.settle(Ok(ran));
        return Ok(());
    }
    let values = thrown.values();
    match collected_error(env, &values, thrown.count, dest, true) {
        Ok(error) => promise.settle(Err(error)),
        Err(failure) => {
            // Could not build the AggregateError (a getter for it threw, say). Still settle, and never as a success:
            // reject with what went wrong (taken, so the reject call can run), else with the first value thrown.
            let reason = take_exception(env).or_else(|| values.first().copied());
            match reason {
                Some(reason) => promise.settle(Err(reason)),
                None => promise.settle(Ok(create_double(env, f64::from(ran))?)),
            }
            return Err(failure);
        }
    }
    Ok(())
}

/// The pending exception, cleared; `None` if there is none.
fn take_exception(env: sys::napi_env) -> Option<sys::napi_value> {
    let mut pending = false;
    let mut error = ptr::null_mut();
    // SAFETY: plain queries of this environment with locals as out-parameters.
    unsafe {
        if sys::napi_is_exception_pending(env, &mut pending) != sys::Status::napi_ok || !pending {
            return None;
        }
        (sys::napi_get_and_clear_last_exception(env, &mut error) == sys::Status::napi_ok).then_some(error)
    }
}

/// `process.emitWarning(error)`.
fn emit_warning(env: sys::napi_env, error: sys::napi_value) {
    let (mut global, mut process, mut emit, mut result) =
        (ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: plain Node-API calls on this environment with locals as out-parameters; a failure leaves at most a
    // pending exception, which call_js clears.
    unsafe {
        if sys::napi_get_global(env, &mut global) != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"process".as_ptr(), &mut process)
                != sys::Status::napi_ok
            || sys::napi_get_named_property(env, process, c"emitWarning".as_ptr(), &mut emit)
                != sys::Status::napi_ok
        {
            return;
        }
        let _ = sys::napi_call_function(env, process, emit, 1, &error, &mut result);
        // Whatever emitWarning threw must not stay pending: settling `done` after it would fail, and Node would report
        // the leftover exception as a second warning.
        let mut pending = false;
        if sys::napi_is_exception_pending(env, &mut pending) == sys::Status::napi_ok && pending {
            let mut ignored = ptr::null_mut();
            let _ = sys::napi_get_and_clear_last_exception(env, &mut ignored);
        }
    }
}

/// `value instanceof Error`, as Node-API sees it.
fn is_error(env: sys::napi_env, value: sys::napi_value) -> bool {
    let mut result = false;
    // SAFETY: a plain Node-API query on a value of this environment's current scope.
    unsafe { sys::napi_is_error(env, value, &mut result) == sys::Status::napi_ok && result }
}

// ---------------------------------------------------------------------------------------------------------------------
// Exports

/// `post(dest, message)`: queues the message for the worker thread; a promise of how many callbacks ran.
pub struct Post;

impl Export<2> for Post {
    const NAME: &'static CStr = c"post";

    fn call(call: &Call<'_, 2>) -> CallResult {
        let env = call.env;
        let mut dest_arg = Utf8Arg::new();
        let dest = read_dest(env, call.args[0], &mut dest_arg)?;
        let mut message_arg = Utf8Arg::new();
        let message = read_message(env, call.args[1], &mut message_arg)?;
        let cell = call.state;
        // The promise and its waiter first (the waiter's id travels with the post). If the post is refused, removing
        // the waiter drops the promise's references: nobody waits. The promise is made before the state is borrowed:
        // making it can run JS.
        let (promise, value) = new_promise(env, cell)?;
        let mut state = borrow_state(call)?;
        // Node-API wrote UTF-8; kept for the message of an AggregateError.
        let dest_text: Box<str> = String::from_utf8_lossy(dest.to_bytes()).into();
        let id = state.posts.waiters.insert(Waiter::Post { promise, dest: dest_text })?;
        let marshal = cell.marshal.for_threads();
        // The closure is boxed and lent to the dispatcher; its on_delivered (worker thread, or a shutdown) takes it
        // back and drops it, once, after enqueueing this post's Message item.
        let posted = cell
            .dispatcher
            .post_cstr(dest, message, move |delivered| marshal.get().enqueue(message_item(id, delivered)));
        if posted.is_err() {
            state.posts.waiters.remove(id);
            return Err(Throw::range_error(
                ERR_NATIVE_ALLOC,
                "could not queue the message: the dispatcher could not copy it or start its worker thread"
                    .to_owned(),
            ));
        }
        state.posts.ledger.posted += 1;
        state.posts.hold(env, &cell.marshal);
        Ok(value)
    }
}

/// An integer argument in `[0, max]`: `ERR_INVALID_ARG_TYPE` if not a number, `ERR_OUT_OF_RANGE` otherwise.
pub fn read_integer(env: sys::napi_env, value: sys::napi_value, name: &str, max: u32) -> Result<u32, Throw> {
    let mut number = 0f64;
    // SAFETY: `value` is an argument of the current call; `number` is a local.
    let status = unsafe { sys::napi_get_value_double(env, value, &mut number) };
    if status == sys::Status::napi_number_expected {
        return Err(invalid_arg_type(env, "a number", name, value));
    }
    check(env, status, "napi_get_value_double")?;
    // NaN fails both comparisons; -0 is the integer 0, as for Number.isInteger.
    if number >= 0.0 && number <= f64::from(max) && number.fract() == 0.0 {
        return Ok(number as u32);
    }
    Err(Throw::range_error(
        ERR_OUT_OF_RANGE,
        format!(
            "The value of \"{name}\" is out of range. It must be an integer from 0 to {max}. Received {}",
            number_to_string(env, value)?
        ),
    ))
}

/// `produce(dest, count, intervalMs)`: starts a producer thread; `{ handle, done }`.
pub struct Produce;

impl Export<3> for Produce {
    const NAME: &'static CStr = c"produce";

    fn call(call: &Call<'_, 3>) -> CallResult {
        let env = call.env;
        let mut dest_arg = Utf8Arg::new();
        read_dest(env, call.args[0], &mut dest_arg)?;
        let count = read_integer(env, call.args[1], "count", u32::MAX)?;
        let interval_ms = read_integer(env, call.args[2], "intervalMs", 60_000)?;
        let dest = dest_arg.as_str()?;
        let cell = call.state;
        // Before the state is borrowed and the slot is chosen: making the promise can run JS (see `new_promise`), which
        // may start producers of its own; from the borrow on, nothing runs JS until the handle is made.
        let (promise, done) = new_promise(env, cell)?;
        let mut state = borrow_state(call)?;
        let (slot, generation) = state.producers.next_key().ok_or_else(|| {
            Throw::range_error(
                ERR_NATIVE_ALLOC,
                "could not allocate a handle for the native producer: the handle table of this environment is full"
                    .to_owned(),
            )
        })?;
        let waiter =
            ProducerWaiter { promise, dest: dest.into(), posted: None, told: 0, thrown: Thrown::new(env) };
        let id = state.posts.waiters.insert(Waiter::Producer(waiter))?;
        let (on_delivered, on_finished) = (cell.marshal.for_threads(), cell.marshal.for_threads());
        // The producer's callbacks are boxed once and lent to its thread and its posts; the last of them frees them.
        let started = Producer::start(
            &cell.dispatcher,
            dest,
            count,
            interval_ms,
            move |delivered| on_delivered.get().enqueue(message_item(id, delivered)),
            move |posted| on_finished.get().enqueue(Item::Finished { waiter: id, posted }),
        );
        let Ok(producer) = started else {
            // Nothing started: no item will name the waiter.
            state.posts.waiters.remove(id);
            return Err(Throw::range_error(
                ERR_NATIVE_ALLOC,
                "could not start the native producer thread".to_owned(),
            ));
        };
        // Ownership moves into the table: the slot owns the producer until producer_stop, finalize_producer or
        // teardown. `next_key` reserved room, so this cannot fail.
        let inserted = state.producers.insert(ProducerSlot { producer });
        debug_assert_eq!(inserted.as_ref().ok(), Some(&(slot, generation)));
        state.producer_ledger.started += 1;
        state.posts.hold(env, &cell.marshal);
        let env_id = state.env_id;
        drop(state);
        let handle =
            create_double(env, Handle::new(env_id, BACKEND, Kind::Producer, generation, slot).to_f64())?;
        create_object(env, &[(c"handle", handle), (c"done", done)])
    }
}

/// Stops and releases producer `call.args[0]`: whether this stopped it early; `false` if already released.
fn release_producer<const N: usize>(call: &Call<'_, N>, finalized: bool) -> CallResult {
    let env = call.env;
    let mut state = borrow_state(call)?;
    let handle = decode_handle(env, &state, call.args[0], Kind::Producer)?;
    let slot = match state.producers.remove(handle.slot, handle.generation) {
        Ok(slot) => slot,
        Err(HandleError::Released) => return get_boolean(env, false),
        Err(error) => return Err(handle_error(env, call.args[0], error, Kind::Producer)),
    };
    // Joins its thread (on_finished has been called when this returns), then frees it (producer_free). Messages it
    // posted are still told: its `done` settles once they are.
    let early = slot.producer.stop();
    drop(slot);
    if finalized {
        state.producer_ledger.finalized += 1;
    } else {
        state.producer_ledger.stopped += 1;
    }
    drop(state);
    get_boolean(env, early)
}

pub struct ProducerStop;

impl Export<1> for ProducerStop {
    const NAME: &'static CStr = c"producer_stop";

    fn call(call: &Call<'_, 1>) -> CallResult {
        release_producer(call, false)
    }
}

pub struct FinalizeProducer;

impl Export<1> for FinalizeProducer {
    const NAME: &'static CStr = c"finalize_producer";

    fn call(call: &Call<'_, 1>) -> CallResult {
        release_producer(call, true)
    }
}

pub struct ProducerActive;

impl Export<1> for ProducerActive {
    const NAME: &'static CStr = c"producer_active";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let env = call.env;
        let mut state = borrow_state(call)?;
        let handle = decode_handle(env, &state, call.args[0], Kind::Producer)?;
        let active = match state.producers.get_mut(handle.slot, handle.generation) {
            Ok(slot) => !slot.producer.is_finished(),
            Err(HandleError::Released) => false,
            Err(error) => return Err(handle_error(env, call.args[0], error, Kind::Producer)),
        };
        drop(state);
        get_boolean(env, active)
    }
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
    fn slab_reuses_an_id_only_after_its_removal() {
        let mut slab = Slab::default();
        let a = slab.insert("a").unwrap();
        let b = slab.insert("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None, "removed once");
        assert_eq!(slab.get_mut(a), None);
        let c = slab.insert("c").unwrap();
        assert_eq!(c, a, "the freed slot");
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.get(99), None);
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
