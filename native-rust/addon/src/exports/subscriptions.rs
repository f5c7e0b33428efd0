//! The subscription exports of docs/raw-contract.md ("Subscriptions"): seed 000's boxed callbacks over this
//! environment's dispatcher, through `napi_ownership_dispatch::{handler_, cancel_}`.
//!
//! ```text
//! slot (HandleTable<UserSpaceWrapper>) ── owns ──► UserSpaceWrapper { ffi_wrapper, ctx }      seed 000's handle
//!     ffi_wrapper ──► FFIWrapper { handler_cb, self_rust_side }                 borrowed by the dispatcher
//!     self_rust_side ──► RustSideHandler { opaque }                             while registered
//!     opaque ──► Box<dyn OnSend> = JsCallback { napi_ref (strong) }  ── keeps the JS function alive (seed 004's mark)
//! ```
//!
//! Cancel = `cancel_` (or dropping the wrapper, which is `cancel_` under its own dest): `dispatcher_cancel`, then the
//! three boxes are rebuilt and dropped, and `JsCallback`'s Drop deletes the reference, so the function becomes
//! collectable. A callback that cancels its own subscription is freed when it returns (the dispatch crate defers it).
//!
//! `send` is the hot path: dest and message are read into stack buffers when short, the message passed to every
//! callback is the JS argument itself (no string is created), and nothing is allocated unless a callback throws.
//!
//! The same `JsCallback` also receives posted messages, which the dispatcher delivers on its worker thread: there it
//! only records its subscription *handle* for the message's item (see callbacks.rs and raw_tsfn.rs), so it must be `Sync`, and it is:
//! off the JS thread it reads nothing but one immutable plain value.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::ptr;

use crate::error_codes::*;
use napi::sys;
use napi_ownership_dispatch::{cancel_, handler_};

use crate::args::{BACKEND, Utf8Arg, decode_handle, handle_error, read_dest, read_message};
use crate::call::{Call, Export, borrow_state};
use crate::callbacks::{Delivery, JsCallback, RestoreDelivery, SENDING, throw_collected};
use crate::handles::{Handle, HandleError, Kind};
use crate::js::{
    CallResult, Throw, check, create_double, create_object, get_boolean, invalid_arg_type, type_name,
};
use crate::ledger::HandlerLedger;

pub(crate) fn subscription_alloc_failed() -> Throw {
    // Not worded by the contract (the same wording as the cpp backend): nothing was registered.
    Throw::range_error(ERR_NATIVE_ALLOC, "could not allocate the native subscription".to_owned())
}

pub struct Handler;

impl Export<2> for Handler {
    const NAME: &'static CStr = c"handler";

    fn call(call: &Call<'_, 2>) -> CallResult {
        let (env, callback) = (call.env, call.args[1]);
        let mut dest = Utf8Arg::new();
        read_dest(env, call.args[0], &mut dest)?;
        if type_name(env, callback)? != "function" {
            return Err(invalid_arg_type(env, "a function", "callback", callback));
        }
        let mut state = borrow_state(call)?;
        // The handle is decided first: the worker thread may deliver to the registration as soon as it exists, and
        // what it enqueues names this handle.
        let (slot, generation) = state.subscriptions.next_key().ok_or_else(|| {
            Throw::range_error(
                ERR_NATIVE_ALLOC,
                format!(
                    "could not allocate a handle for the native {}: the handle table of this environment is full",
                    Kind::Subscription.name()
                ),
            )
        })?;
        let subscription = Handle::new(state.env_id, BACKEND, Kind::Subscription, generation, slot);
        let mut reference = ptr::null_mut();
        // SAFETY: `callback` is a function argument of this call; count 1 makes the reference strong.
        let status = unsafe { sys::napi_create_reference(env, callback, 1, &mut reference) };
        check(env, status, "napi_create_reference")?;
        // The box owns the reference from here: any failure below drops it, deleting the reference.
        let boxed = Box::new(JsCallback { env, function: reference, subscription });
        // Seed 000's handler_: boxed as RustSideHandler and FFIWrapper, lent to the dispatcher. (It calls no JS, so
        // holding the state across it is fine.)
        let wrapper = handler_(&call.state.dispatcher, dest.as_str()?, boxed)
            .map_err(|_refused| subscription_alloc_failed())?;
        // Ownership moves into the table: the slot owns the registration until cancel, finalize_subscription,
        // shutdown or teardown. `next_key` reserved the room, so this cannot fail (if it did, the returned wrapper
        // would drop here: cancelled and freed).
        let inserted = state.subscriptions.insert(wrapper).map_err(|_| subscription_alloc_failed())?;
        debug_assert_eq!(inserted, (slot, generation));
        state.handlers.registered += 1;
        drop(state);
        create_double(env, subscription.to_f64())
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// cancel / finalize_subscription / subscription_active

pub(crate) fn is_undefined(env: sys::napi_env, value: sys::napi_value) -> Result<bool, Throw> {
    Ok(type_name(env, value)? == "undefined")
}

/// Decodes a subscription handle argument (its errors come first: argument order).
pub(crate) fn subscription_handle<const N: usize>(call: &Call<'_, N>) -> Result<Handle, Throw> {
    decode_handle(call.env, borrow_state(call)?.env_id, call.args[0], Kind::Subscription)
}

/// Cancels the subscription `handle` (the decoded `call.args[0]`): `true`, or `false` if it was already released
/// or (with `dest`) is not registered under `dest`, in which case it stays registered.
pub(crate) fn release<const N: usize>(
    call: &Call<'_, N>,
    handle: Handle,
    dest: Option<&str>,
    finalized: bool,
) -> CallResult {
    let env = call.env;
    let dispatcher = &call.state.dispatcher;
    let mut state = borrow_state(call)?;
    let outcome = state.subscriptions.remove_with(handle.slot, handle.generation, |wrapper| match dest {
        // Seed 000's cancel(dest, ctx): the dispatcher decides. On success cancel_ rebuilds and drops the three
        // boxes; under another dest it hands the wrapper back, and the slot keeps it.
        Some(dest) => cancel_(dispatcher, dest, wrapper),
        // Under its own dest: dropping the wrapper is cancel_ with the dest it was registered under
        // (dispatcher_cancel, then the three boxes rebuilt and dropped).
        None => {
            drop(wrapper);
            Ok(())
        }
    });
    let cancelled = match outcome {
        Ok(Some(())) => true,
        Ok(None) | Err(HandleError::Released) => false,
        Err(error) => return Err(handle_error(env, call.args[0], error, Kind::Subscription)),
    };
    if cancelled {
        let ledger: &mut HandlerLedger = &mut state.handlers;
        if finalized {
            ledger.finalized += 1;
        } else {
            ledger.cancelled += 1;
        }
        debug_assert_eq!(ledger.live(), state.subscriptions.live() as u64);
    }
    drop(state);
    get_boolean(env, cancelled)
}

pub struct Cancel;

impl Export<2> for Cancel {
    const NAME: &'static CStr = c"cancel";

    fn call(call: &Call<'_, 2>) -> CallResult {
        let handle = subscription_handle(call)?;
        // `dest` is checked even for a released handle: a bad dest is a bad call.
        if is_undefined(call.env, call.args[1])? {
            return release(call, handle, None, false);
        }
        let mut dest = Utf8Arg::new();
        read_dest(call.env, call.args[1], &mut dest)?;
        release(call, handle, Some(dest.as_str()?), false)
    }
}

pub struct FinalizeSubscription;

impl Export<1> for FinalizeSubscription {
    const NAME: &'static CStr = c"finalize_subscription";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let handle = subscription_handle(call)?;
        release(call, handle, None, true)
    }
}

pub struct SubscriptionActive;

impl Export<1> for SubscriptionActive {
    const NAME: &'static CStr = c"subscription_active";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let env = call.env;
        let handle = subscription_handle(call)?;
        let mut state = borrow_state(call)?;
        let active = match state.subscriptions.get_mut(handle.slot, handle.generation) {
            Ok(_) => true,
            Err(HandleError::Released) => false,
            Err(error) => return Err(handle_error(env, call.args[0], error, Kind::Subscription)),
        };
        drop(state);
        get_boolean(env, active)
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// send / shutdown

/// `send(dest, message)` (not named `Send`: that is the marker trait).
pub struct SendMessage;

impl Export<2> for SendMessage {
    const NAME: &'static CStr = c"send";

    fn call(call: &Call<'_, 2>) -> CallResult {
        let env = call.env;
        let mut dest_arg = Utf8Arg::new();
        let dest = read_dest(env, call.args[0], &mut dest_arg)?;
        let mut message_arg = Utf8Arg::new();
        let message = read_message(env, call.args[1], &mut message_arg)?;

        let mut undefined = ptr::null_mut();
        // SAFETY: `undefined` is a local.
        check(env, unsafe { sys::napi_get_undefined(env, &mut undefined) }, "napi_get_undefined")?;
        let delivery = Delivery {
            env,
            message: call.args[1],
            undefined,
            errors: RefCell::new(Vec::new()),
            unrecorded: Cell::new(0),
        };
        let delivered = {
            // The callbacks of this send (and of none nested in it) report to `delivery`.
            let _restore = RestoreDelivery { outer: SENDING.replace(&delivery) };
            call.state.dispatcher.send_cstr(dest, message)
        };
        if !delivery.errors.borrow().is_empty() || delivery.unrecorded.get() != 0 {
            return Err(throw_collected(env, &delivery, dest_arg.as_str()?));
        }
        create_double(env, f64::from(delivered))
    }
}

pub struct Shutdown;

impl Export<0> for Shutdown {
    const NAME: &'static CStr = c"shutdown";

    fn call(call: &Call<'_, 0>) -> CallResult {
        let mut state = borrow_state(call)?;
        // Each wrapper's drop cancels its registration under its own dest and frees its boxes (a callback that is
        // running further up this stack is freed when it returns). Every handle now reads as released.
        let cancelled = state.subscriptions.remove_all(drop) as u64;
        state.handlers.cancelled += cancelled;
        drop(state);
        // Holds nothing of ours by now; frees the dispatcher's own records.
        call.state.dispatcher.shutdown();
        create_double(call.env, cancelled as f64)
    }
}

/// `stats().handlers`.
pub fn handler_stats(env: sys::napi_env, ledger: HandlerLedger) -> CallResult {
    let count = |n: u64| create_double(env, n as f64);
    create_object(
        env,
        &[
            (c"live", count(ledger.live())?),
            (c"registered", count(ledger.registered)?),
            (c"cancelled", count(ledger.cancelled)?),
            (c"finalized", count(ledger.finalized)?),
        ],
    )
}
