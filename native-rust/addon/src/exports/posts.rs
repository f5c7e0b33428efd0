//! Native-thread delivery exports (docs/raw-contract.md, "Native-thread delivery"): `post`, `produce`,
//! `producer_stop`, `finalize_producer`, `producer_active`.

use std::ffi::CStr;

use napi::sys;
use napi_ownership_dispatch::Producer;

use crate::args::{BACKEND, Utf8Arg, decode_handle, handle_error, read_dest, read_message};
use crate::call::{Call, Export, borrow_state};
use crate::error_codes::*;
use crate::handles::{Handle, HandleError, Kind};
use crate::js::{
    CallResult, Throw, check, create_double, create_object, get_boolean, invalid_arg_type, number_to_string,
};
use crate::posts::{ProducerSlot, ProducerWaiter, Waiter};
use crate::promises::{PendingPromise, PromiseKit, Thrown};
use crate::raw_tsfn::{Item, message_item};
use crate::state::EnvCell;

/// A new promise of this environment and what settles it. Holds no borrow of the state while JS can run: making the
/// kit on the first use looks `Promise` up on `globalThis` (a getter may run), and `new Promise` runs any promise init
/// hook (async_hooks, v8.promiseHooks); that JS may call any export, post and produce included.
pub(crate) fn new_promise(
    env: sys::napi_env,
    cell: &EnvCell,
) -> Result<(PendingPromise, sys::napi_value), Throw> {
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
pub(crate) fn release_producer<const N: usize>(call: &Call<'_, N>, finalized: bool) -> CallResult {
    let env = call.env;
    let mut state = borrow_state(call)?;
    let handle = decode_handle(env, state.env_id, call.args[0], Kind::Producer)?;
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
        let handle = decode_handle(env, state.env_id, call.args[0], Kind::Producer)?;
        let active = match state.producers.get_mut(handle.slot, handle.generation) {
            Ok(slot) => !slot.producer.is_finished(),
            Err(HandleError::Released) => false,
            Err(error) => return Err(handle_error(env, call.args[0], error, Kind::Producer)),
        };
        drop(state);
        get_boolean(env, active)
    }
}
