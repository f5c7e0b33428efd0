//! Native-thread delivery exports (docs/raw-contract.md, "Native-thread delivery"): `post`, `produce`,
//! `producer_stop`, `finalize_producer`, `producer_active`.

use napi::{Env, sys};
use napi_derive::napi;
use napi_ownership_dispatch::Producer;

use crate::args::{BACKEND, handle_error};
use crate::bind::{Dest, HandleArg, Integer, IntegerName, Js, Message, ProducerKind, run};
use crate::error_codes::*;
use crate::handles::{Handle, HandleError, Kind};
use crate::js::{Throw, create_double, create_object};
use crate::posts::{ProducerSlot, ProducerWaiter, Waiter};
use crate::promises::{PendingPromise, PromiseKit, Thrown};
use crate::raw::tsfn::{Item, message_item};
use crate::state::{EnvCell, EnvState};

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

fn borrow(cell: &EnvCell) -> Result<std::cell::RefMut<'_, EnvState>, Throw> {
    cell.try_borrow_mut().map_err(|_| Throw::internal("reentrant call into the rust backend"))
}

/// `post(dest, message)`: queues the message for the worker thread; a promise of how many callbacks ran.
#[napi(js_name = "post")]
pub fn post(env: Env, dest: Dest, message: Message) -> napi::Result<Js> {
    run(&env, |cell| {
        let raw = env.raw();
        // The promise and its waiter first (the waiter's id travels with the post). If the post is refused,
        // removing the waiter drops the promise's references: nobody waits. The promise is made before the state
        // is borrowed: making it can run JS.
        let (promise, value) = new_promise(raw, cell)?;
        let mut state = borrow(cell)?;
        // Node-API wrote UTF-8; kept for the message of an AggregateError.
        let dest_text: Box<str> = dest.as_str()?.into();
        let id = state.posts.waiters.insert(Waiter::Post { promise, dest: dest_text })?;
        let marshal = cell.marshal.for_threads();
        // The closure is boxed and lent to the dispatcher; its on_delivered (worker thread, or a shutdown) takes it
        // back and drops it, once, after enqueueing this post's Message item.
        let posted = cell.dispatcher.post_cstr(dest.c_str(), message.c_str(), move |delivered| {
            marshal.get().enqueue(message_item(id, delivered))
        });
        if posted.is_err() {
            state.posts.waiters.remove(id);
            return Err(Throw::range_error(
                ERR_NATIVE_ALLOC,
                "could not queue the message: the dispatcher could not copy it or start its worker thread"
                    .to_owned(),
            ));
        }
        state.posts.ledger.posted += 1;
        state.posts.hold(raw, &cell.marshal);
        Ok(Js(value))
    })
}

pub struct Count;
impl IntegerName for Count {
    const NAME: &'static str = "count";
    const MAX: u32 = u32::MAX;
}

pub struct IntervalMs;
impl IntegerName for IntervalMs {
    const NAME: &'static str = "intervalMs";
    const MAX: u32 = 60_000;
}

/// `produce(dest, count, intervalMs)`: starts a producer thread; `{ handle, done }` (defined properties).
#[napi(js_name = "produce")]
pub fn produce(
    env: Env,
    dest: Dest,
    count: Integer<Count>,
    interval_ms: Integer<IntervalMs>,
) -> napi::Result<Js> {
    run(&env, |cell| {
        let raw = env.raw();
        let dest = dest.as_str()?;
        // Before the state is borrowed and the slot is chosen: making the promise can run JS (see `new_promise`),
        // which may start producers of its own; from the borrow on, nothing runs JS until the handle is made.
        let (promise, done) = new_promise(raw, cell)?;
        let mut state = borrow(cell)?;
        let (slot, generation) = state.producers.next_key().ok_or_else(|| {
            Throw::range_error(
                ERR_NATIVE_ALLOC,
                "could not allocate a handle for the native producer: the handle table of this environment is full"
                    .to_owned(),
            )
        })?;
        let waiter =
            ProducerWaiter { promise, dest: dest.into(), posted: None, told: 0, thrown: Thrown::new(raw) };
        let id = state.posts.waiters.insert(Waiter::Producer(waiter))?;
        let (on_delivered, on_finished) = (cell.marshal.for_threads(), cell.marshal.for_threads());
        // The producer's callbacks are boxed once and lent to its thread and its posts; the last of them frees
        // them.
        let started = Producer::start(
            &cell.dispatcher,
            dest,
            count.0,
            interval_ms.0,
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
        state.posts.hold(raw, &cell.marshal);
        let env_id = state.env_id;
        drop(state);
        let handle =
            create_double(raw, Handle::new(env_id, BACKEND, Kind::Producer, generation, slot).to_f64())?;
        create_object(raw, &[(c"handle", handle), (c"done", done)]).map(Js)
    })
}

/// Stops and releases producer `handle`: whether this stopped it early; `false` if already released.
fn release_producer(
    cell: &EnvCell,
    env: &Env,
    handle: &HandleArg<ProducerKind>,
    finalized: bool,
) -> Result<bool, Throw> {
    let mut state = borrow(cell)?;
    let slot = match state.producers.remove(handle.handle.slot, handle.handle.generation) {
        Ok(slot) => slot,
        Err(HandleError::Released) => return Ok(false),
        Err(error) => return Err(handle_error(env.raw(), handle.value, error, Kind::Producer)),
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
    Ok(early)
}

/// `producer_stop(handle)`: stops the producer now (joins its thread).
#[napi(js_name = "producer_stop")]
pub fn producer_stop(env: Env, handle: HandleArg<ProducerKind>) -> napi::Result<bool> {
    run(&env, |cell| release_producer(cell, &env, &handle, false))
}

/// `finalize_producer(handle)`: as `producer_stop`, counted as `finalized`.
#[napi(js_name = "finalize_producer")]
pub fn finalize_producer(env: Env, handle: HandleArg<ProducerKind>) -> napi::Result<bool> {
    run(&env, |cell| release_producer(cell, &env, &handle, true))
}

/// `producer_active(handle)`: still posting? (`false` for a released handle.)
#[napi(js_name = "producer_active")]
pub fn producer_active(env: Env, handle: HandleArg<ProducerKind>) -> napi::Result<bool> {
    run(&env, |cell| {
        let mut state = borrow(cell)?;
        match state.producers.get_mut(handle.handle.slot, handle.handle.generation) {
            Ok(slot) => Ok(!slot.producer.is_finished()),
            Err(HandleError::Released) => Ok(false),
            Err(error) => Err(handle_error(env.raw(), handle.value, error, Kind::Producer)),
        }
    })
}
