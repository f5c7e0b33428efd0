//! The subscription exports of docs/raw-contract.md ("Subscriptions"): seed 000's boxed callbacks over this
//! environment's dispatcher, through `napi_ownership_dispatch::{handler_, cancel_}`.
//!
//! ```text
//! slot (HandleTable<UserSpaceWrapper>) ── owns ──► UserSpaceWrapper { ffi_wrapper, ctx }      seed 000's handle
//!     ffi_wrapper ──► FFIWrapper { handler_cb, self_rust_side }                 borrowed by the dispatcher
//!     self_rust_side ──► RustSideHandler { opaque }                             while registered
//!     opaque ──► Box<dyn OnSend> = JsCallback { FunctionRef (strong) }  ── keeps the JS function alive (seed 004's mark)
//! ```
//!
//! Cancel = `cancel_` (or dropping the wrapper, which is `cancel_` under its own dest): `dispatcher_cancel`, then the
//! three boxes are rebuilt and dropped, and `JsCallback`'s Drop drops the `FunctionRef` (deleting its reference), so the function becomes
//! collectable. A callback that cancels its own subscription is freed when it returns (the dispatch crate defers it).
//!
//!
//! The same `JsCallback` also receives posted messages, which the dispatcher delivers on its worker thread: there it
//! only records its subscription *handle* for the message's item (see raw/tsfn.rs), so it must be `Sync`, and it is:
//! off the JS thread it reads nothing but one immutable plain value.

use std::cell::{Cell, RefCell};
use std::ptr;

use std::mem::ManuallyDrop;

use napi::bindgen_prelude::{FunctionRef, JsValue, Unknown};
use napi::{Env, sys};
use napi_ownership_dispatch::OnSend;

use crate::handles::Handle;
use crate::js::{Throw, collected_error, napi_failed};
use crate::raw::calls;
use crate::raw::tsfn::worker_delivered;

/// One `send` in progress: what its callbacks receive and where they leave what they throw. Lives on the `send`
/// export's stack; [`SENDING`] points to it while `dispatcher_send` runs.
pub struct Delivery {
    /// The environment of the send (a thread runs one environment; checked anyway).
    pub(crate) env: sys::napi_env,
    /// The message argument of `send` itself: the same JS string for every callback.
    pub(crate) message: sys::napi_value,
    /// `this` for every callback.
    pub(crate) undefined: sys::napi_value,
    /// What the callbacks threw, in delivery order (values of the `send` export's handle scope).
    pub(crate) errors: RefCell<Vec<sys::napi_value>>,
    /// Thrown values that could not be recorded (the list could not grow): still counted in the message.
    pub(crate) unrecorded: Cell<usize>,
}

thread_local! {
    /// The innermost `send` export in progress on this thread (NULL if none). Each `send` saves and restores it, so
    /// nested sends each collect their own errors. Non-NULL only on a JS thread, inside `send`.
    pub(crate) static SENDING: Cell<*const Delivery> = const { Cell::new(ptr::null()) };
}

/// Seed 000's boxed handler for a JS function.
///
/// Two of its fields are for the JS thread only (`env`, `function`: Node-API values); `subscription` may be read
/// from the dispatcher's worker thread (a plain value, never written after construction).
pub struct JsCallback {
    pub(crate) env: sys::napi_env,
    /// napi-rs's strong reference to the function: keeps it alive while registered; dropped (the reference
    /// deleted) in Drop. Its `()` types are unused: the function is called through Node-API with the `send`
    /// argument itself, and what it throws is taken as a JS value.
    function: ManuallyDrop<FunctionRef<(), ()>>,
    /// This registration's own handle: what a posted delivery names (never a pointer to this box).
    pub(crate) subscription: Handle,
}

// SAFETY: the dispatcher's worker thread calls `on_send(&self)` for posted messages. There SENDING (a thread-local)
// is NULL, so `on_send` reads only `subscription` (Copy, immutable) and the message, into a thread-local batch of
// that worker. `function` is used only on the JS thread, inside this environment's `send` (SENDING set), and by
// Drop. Not Send: the box is dropped where its UserSpaceWrapper lives, the JS thread (cancel waits for the worker to
// leave the callback before it returns).
unsafe impl Sync for JsCallback {}

impl JsCallback {
    /// A registration's box: owns `function` from here (dropped with the box).
    pub fn new(env: sys::napi_env, function: FunctionRef<(), ()>, subscription: Handle) -> Self {
        JsCallback { env, function: ManuallyDrop::new(function), subscription }
    }

    /// The function, as a value of the current scope (JS thread).
    pub fn function(&self) -> Result<sys::napi_value, Throw> {
        let env = Env::from_raw(self.env);
        let function = self.function.borrow_back(&env).map_err(|error| Throw::internal(&error.reason))?;
        Ok(function.raw())
    }
}

impl OnSend for JsCallback {
    /// Inside this environment's `send` (JS thread): calls the function with `(message)`, `this` undefined, where
    /// the JS message is the `send` argument itself. Anywhere else (the dispatcher's worker thread delivering a
    /// posted message): records this subscription's handle for the message's item, which the JS thread looks up.
    fn on_send(&self, _dest: &str, msg: &str) {
        // SAFETY: a non-NULL SENDING is the frame of the innermost `send` export still on this thread's stack.
        let delivery = unsafe { SENDING.get().as_ref() }.filter(|delivery| delivery.env == self.env);
        let Some(delivery) = delivery else {
            // Off the JS thread: only the immutable plain handle is read (see the Sync impl).
            worker_delivered(self.subscription, msg);
            return;
        };
        // A strong reference always yields its value.
        let Ok(function) = self.function() else { return };
        // The current scope is the `send` export's; `delivery.message` and `delivery.undefined` are values of it,
        // `function` was just read. The call may re-enter our exports; none of them holds a borrow now. What it
        // throws comes back as the value (`raw::calls`), taken so that the next callback runs; nothing is pending
        // if JS can no longer run (a terminating worker).
        let error = match calls::call_catching(self.env, delivery.undefined, function, &[delivery.message]) {
            Ok(_) | Err(None) => return,
            Err(Some(error)) => error,
        };
        let mut errors = delivery.errors.borrow_mut();
        if errors.try_reserve(1).is_ok() {
            errors.push(error);
        } else {
            delivery.unrecorded.set(delivery.unrecorded.get() + 1);
        }
    }
}

impl Drop for JsCallback {
    fn drop(&mut self) {
        // The function becomes collectable (unless JS still holds it). Runs no JS.
        #[cfg(not(feature = "seed-bug-callback-ref-kept"))]
        // SAFETY: dropped once, here, with the box; nothing uses `function` afterwards.
        unsafe {
            ManuallyDrop::drop(&mut self.function)
        };
        // Seeded bug 3 (leak-test self-test builds only): the reference to the JS function is never deleted.
        #[cfg(feature = "seed-bug-callback-ref-kept")]
        std::hint::black_box(&self.function);
    }
}

/// Restores the outer `send`'s frame, even if delivery unwinds (a panic is resumed by `send_cstr`).
pub(crate) struct RestoreDelivery {
    pub(crate) outer: *const Delivery,
}

impl Drop for RestoreDelivery {
    fn drop(&mut self) {
        SENDING.set(self.outer);
    }
}

/// Throws what the callbacks of one send threw (see [`collected_error`]). Building the error may run JS (a getter for
/// `globalThis.AggregateError` that sends, registers or shuts down), so the values are taken out of the delivery
/// first: no borrow of it is held across that JS.
pub(crate) fn throw_collected(env: sys::napi_env, delivery: &Delivery, dest: &str) -> Throw {
    let errors = delivery.errors.take();
    let count = errors.len() + delivery.unrecorded.get();
    let thrown = collected_error(env, &errors, count, dest, true).and_then(|error| {
        // SAFETY: a value of this call's scope.
        let error = unsafe { Unknown::from_raw_unchecked(env, error) };
        Env::from_raw(env).throw(error).map_err(|error| napi_failed(env, "napi_throw", error))
    });
    match thrown {
        Ok(()) => Throw::Pending,
        Err(failure) => failure,
    }
}
