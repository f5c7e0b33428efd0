//! Processing, on the JS thread, what the worker and producer threads sent through the threadsafe function: the
//! environment's [`Sink`]. Each item's subscriptions are looked up again by handle (a cancelled one is skipped),
//! and no borrow of the state is held across a call into JS.

use std::ptr;

use napi::bindgen_prelude::JsValue;
use napi::{Env, sys};
use napi_ownership_dispatch::Delivered;

use crate::handles::Handle;
use crate::js::{
    Throw, collected_error, create_double, emit_warning, is_error, napi_failed, take_exception, undefined,
};
use crate::posts::{PRODUCER_ERRORS_KEPT, Waiter};
use crate::promises::{PendingPromise, Thrown};
use crate::raw::calls;
use crate::raw::tsfn::{Handles, Item, Marshal, Sink, Text};
use crate::state::EnvCell;

impl Sink for EnvCell {
    fn marshal(&self) -> &Marshal {
        &self.marshal
    }

    fn process(&self, env: sys::napi_env, item: Item) {
        let _ = match item {
            Item::Message { waiter, delivered, text, handles } => {
                message(env, self, waiter, delivered, &text, &handles)
            }
            Item::Finished { waiter, posted } => finished(env, self, waiter, posted),
        };
    }
}

pub(crate) fn state_of(cell: &EnvCell) -> Result<std::cell::RefMut<'_, crate::state::EnvState>, Throw> {
    cell.try_borrow_mut().map_err(|_| Throw::internal("threadsafe function called during a call"))
}

/// A Message item: runs the callbacks the worker entered for it (those still subscribed), then settles its post's
/// promise or counts it for its producer.
pub(crate) fn message(
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
pub(crate) enum Outcome {
    /// The subscription was cancelled (or shut down) after the worker entered its callback: never called again.
    Skipped,
    Ran,
    Threw(sys::napi_value),
}

/// Calls the function of `subscription` with the message, unless it was cancelled meanwhile.
pub(crate) fn deliver(
    env: sys::napi_env,
    cell: &EnvCell,
    subscription: Handle,
    text: &Text,
    js_text: &mut sys::napi_value,
) -> Result<Outcome, Throw> {
    let function = {
        let mut state = state_of(cell)?;
        // The subscription's live FunctionRef (its slot is live and we hold the state); only the value is kept.
        match state.subscriptions.get_mut(subscription.slot, subscription.generation) {
            Ok(wrapper) => wrapper.handler().function()?,
            Err(_) => {
                state.posts.ledger.skipped += 1;
                return Ok(Outcome::Skipped);
            }
        }
    };
    if js_text.is_null() {
        let bytes = text.as_bytes();
        // SAFETY: call_js's handle scope; `bytes` (UTF-8: a copy of a `&str`) outlive the copy Node makes. napi-rs's
        // unchecked constructor: one `napi_create_string_utf8`, no UTF-8 check of our own per message.
        let string = unsafe {
            Env::from_raw(env).create_string_from_c_char(bytes.as_ptr().cast(), bytes.len() as isize)
        }
        .map_err(|error| napi_failed(env, "napi_create_string_utf8", error))?;
        *js_text = string.raw();
    }
    let undefined = undefined(env)?;
    // `function` was read from the live reference above; no state borrow is held (the callback may call any export,
    // including cancel and shutdown). What it throws comes back as the value (`raw::calls`), ours to report.
    let outcome = match calls::call_catching(env, undefined, function, &[*js_text]) {
        Ok(_) => Outcome::Ran,
        Err(Some(error)) => Outcome::Threw(error),
        // Nothing pending: JS cannot run any more (a terminating worker), so it did not run.
        Err(None) => return Ok(Outcome::Skipped),
    };
    state_of(cell)?.posts.ledger.delivered += 1;
    Ok(outcome)
}

/// A Finished item: producer `id` has posted `posted` messages and ended.
pub(crate) fn finished(env: sys::napi_env, cell: &EnvCell, id: u64, posted: u32) -> Result<(), Throw> {
    let mut state = state_of(cell)?;
    if let Some(Waiter::Producer(producer)) = state.posts.waiters.get_mut(id) {
        producer.posted = Some(posted);
    }
    finish_producer_if_complete(env, cell, state, id)
}

/// Resolves a producer's `done` once it has finished and every message it posted was told.
pub(crate) fn finish_producer_if_complete(
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
pub(crate) fn settle_post(
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
