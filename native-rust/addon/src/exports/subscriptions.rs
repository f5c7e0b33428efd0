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
//! only records its subscription *handle* for the message's item (see callbacks.rs and raw/tsfn.rs), so it must be `Sync`, and it is:
//! off the JS thread it reads nothing but one immutable plain value.

use std::cell::{Cell, RefCell};

use napi::{Env, sys};
use napi_derive::napi;
use napi_ownership_dispatch::{cancel_, handler_};

use crate::args::{BACKEND, handle_error};
use crate::bind::{Callback, Dest, HandleArg, Message, OptionalDest, SubscriptionKind, run};
use crate::callbacks::{Delivery, JsCallback, RestoreDelivery, SENDING, throw_collected};
use crate::error_codes::*;
use crate::handles::{Handle, HandleError, Kind};
use crate::js::{CallResult, Throw, create_double, create_object, undefined};
use crate::ledger::HandlerLedger;
use crate::state::{EnvCell, EnvState};

/// What one registration holds natively, as reported to V8 (batched with the strings' bytes): the box and napi-rs's
/// reference (Node's reference object and its global handle), seed 000's three boxes, the table slot, the
/// dispatcher's record and index entry. Measured: RSS grows by ~420 B per registration over 400,000 raw `handler()`
/// calls sharing one function (Node 20); the same figure as the cpp backend, so both report alike.
pub(crate) const REGISTRATION_BYTES: i64 = 400;

pub(crate) fn subscription_alloc_failed() -> Throw {
    // Not worded by the contract (the same wording as the cpp backend): nothing was registered.
    Throw::range_error(ERR_NATIVE_ALLOC, "could not allocate the native subscription".to_owned())
}

/// `handler(dest, callback)`: registers `callback` under `dest` with this environment's dispatcher; a subscription
/// handle.
#[napi(js_name = "handler")]
pub fn handler(env: Env, dest: Dest, callback: Callback<'_>) -> napi::Result<f64> {
    run(&env, |cell| {
        let mut state = borrow(cell)?;
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
        // napi-rs's strong reference keeps the function alive while registered (seed 004's mark). The box owns it
        // from here: any failure below drops it, deleting the reference.
        let function = callback.0.create_ref().map_err(|error| Throw::internal(&error.reason))?;
        let boxed = Box::new(JsCallback::new(env.raw(), function, subscription));
        // Seed 000's handler_: boxed as RustSideHandler and FFIWrapper, lent to the dispatcher. (It calls no JS, so
        // holding the state across it is fine.)
        let wrapper = handler_(&cell.dispatcher, dest.as_str()?, boxed)
            .map_err(|_refused| subscription_alloc_failed())?;
        // Ownership moves into the table: the slot owns the registration until cancel, finalize_subscription,
        // shutdown or teardown. `next_key` reserved the room, so this cannot fail (if it did, the returned wrapper
        // would drop here: cancelled and freed).
        let inserted = state.subscriptions.insert(wrapper).map_err(|_| subscription_alloc_failed())?;
        debug_assert_eq!(inserted, (slot, generation));
        state.handlers.registered += 1;
        // V8 hears of its native size, so dropped subscriptions prompt collections too. A failed report stays owed to
        // the next batch; the registration stands.
        let _ = state.shared.adjust_live_bytes(env.raw(), REGISTRATION_BYTES);
        Ok(subscription.to_f64())
    })
}

fn borrow(cell: &EnvCell) -> Result<std::cell::RefMut<'_, EnvState>, Throw> {
    cell.try_borrow_mut().map_err(|_| Throw::internal("reentrant call into the rust backend"))
}

/// Cancels the subscription `handle`: `true`, or `false` if it was already released or (with `dest`) is not
/// registered under `dest`, in which case it stays registered.
fn release(
    cell: &EnvCell,
    env: &Env,
    handle: &HandleArg<SubscriptionKind>,
    dest: Option<&str>,
    finalized: bool,
) -> Result<bool, Throw> {
    let dispatcher = &cell.dispatcher;
    let mut state = borrow(cell)?;
    let key = handle.handle;
    let outcome = state.subscriptions.remove_with(key.slot, key.generation, |wrapper| match dest {
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
        Err(error) => return Err(handle_error(env.raw(), handle.value, error, Kind::Subscription)),
    };
    if cancelled {
        let _ = state.shared.adjust_live_bytes(env.raw(), -REGISTRATION_BYTES); // a failed report stays owed
        let ledger: &mut HandlerLedger = &mut state.handlers;
        if finalized {
            ledger.finalized += 1;
        } else {
            ledger.cancelled += 1;
        }
        debug_assert_eq!(ledger.live(), state.subscriptions.live() as u64);
    }
    Ok(cancelled)
}

/// `cancel(handle, dest?)`. `dest` is checked even for a released handle (a bad dest is a bad call), after the
/// handle's own errors (argument order).
#[napi(js_name = "cancel")]
pub fn cancel(env: Env, handle: HandleArg<SubscriptionKind>, dest: OptionalDest) -> napi::Result<bool> {
    run(&env, |cell| match &dest.0 {
        None => release(cell, &env, &handle, None, false),
        Some(dest) => release(cell, &env, &handle, Some(dest.as_str()?), false),
    })
}

/// `finalize_subscription(handle)`: as `cancel(handle)`, counted as `finalized`.
#[napi(js_name = "finalize_subscription")]
pub fn finalize_subscription(env: Env, handle: HandleArg<SubscriptionKind>) -> napi::Result<bool> {
    run(&env, |cell| release(cell, &env, &handle, None, true))
}

/// `subscription_active(handle)`: still registered? (`false` for a released handle.)
#[napi(js_name = "subscription_active")]
pub fn subscription_active(env: Env, handle: HandleArg<SubscriptionKind>) -> napi::Result<bool> {
    run(&env, |cell| {
        let mut state = borrow(cell)?;
        match state.subscriptions.get_mut(handle.handle.slot, handle.handle.generation) {
            Ok(_) => Ok(true),
            Err(HandleError::Released) => Ok(false),
            Err(error) => Err(handle_error(env.raw(), handle.value, error, Kind::Subscription)),
        }
    })
}

/// `send(dest, message)`: calls every callback registered under `dest`, synchronously, with the `message` argument
/// itself; how many ran. What they threw is thrown after all ran.
#[napi(js_name = "send")]
pub fn send(env: Env, dest: Dest, message: Message) -> napi::Result<f64> {
    run(&env, |cell| {
        let raw = env.raw();
        let undefined = undefined(raw)?;
        let delivery = Delivery {
            env: raw,
            message: message.value,
            undefined,
            errors: RefCell::new(Vec::new()),
            unrecorded: Cell::new(0),
        };
        let delivered = {
            // The callbacks of this send (and of none nested in it) report to `delivery`. No borrow of the state is
            // held: they may call any export.
            let _restore = RestoreDelivery { outer: SENDING.replace(&delivery) };
            cell.dispatcher.send_cstr(dest.c_str(), message.c_str())
        };
        if !delivery.errors.borrow().is_empty() || delivery.unrecorded.get() != 0 {
            return Err(throw_collected(raw, &delivery, dest.as_str()?));
        }
        Ok(f64::from(delivered))
    })
}

/// `shutdown()`: cancels every registration of this environment; how many.
#[napi(js_name = "shutdown")]
pub fn shutdown(env: Env) -> napi::Result<f64> {
    run(&env, |cell| {
        let mut state = borrow(cell)?;
        // Each wrapper's drop cancels its registration under its own dest and frees its boxes (a callback that is
        // running further up this stack is freed when it returns). Every handle now reads as released.
        let cancelled = state.subscriptions.remove_all(drop) as u64;
        state.handlers.cancelled += cancelled;
        let _ = state.shared.adjust_live_bytes(env.raw(), -REGISTRATION_BYTES * cancelled as i64); // stays owed on failure
        drop(state);
        // Holds nothing of ours by now; frees the dispatcher's own records.
        cell.dispatcher.shutdown();
        Ok(cancelled as f64)
    })
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
