//! Every export of the raw contract, defined on `exports` by the module init, and the small ones: `noop`,
//! `noop_view`, `stats`.

mod posts;
pub(crate) mod strings;
mod subscriptions;

use std::ffi::{CStr, c_void};
use std::ptr;
use std::sync::atomic::Ordering;

use napi::sys;

use crate::call::{Call, Export, trampoline};
use crate::fast::{FreeString, Noop, PrintAndReturn};
use crate::js::{CallResult, Throw, check, create_double, create_object};
use crate::state::EnvCell;
use posts::{FinalizeProducer, Post, Produce, ProducerActive, ProducerStop, read_integer};
use strings::{FinalizeString, StringInfo, StringText, StringView};
use subscriptions::{
    Cancel, FinalizeSubscription, Handler, SendMessage, Shutdown, SubscriptionActive, handler_stats,
};

/// `noop_view(length)`: the benchmark floor of a first view — a bare external ArrayBuffer and a
/// Uint8Array over it, with no ownership work at all. Its bytes are a static scratch of this module
/// (zero, process lifetime) that nothing owns or frees; its finalizer does nothing. Not for data:
/// every such view aliases the same scratch.
pub(crate) struct NoopView;

pub(crate) const FLOOR_BYTES: u32 = 1 << 20;

/// Writable static bytes (JS may write through a floor view, so they cannot be an immutable static).
pub(crate) struct FloorScratch(std::cell::UnsafeCell<[u8; FLOOR_BYTES as usize]>);
// SAFETY: only ever handed to JS as external memory; Rust never reads or writes it.
unsafe impl Sync for FloorScratch {}
static FLOOR_SCRATCH: FloorScratch = FloorScratch(std::cell::UnsafeCell::new([0; FLOOR_BYTES as usize]));

/// Finalizer of a floor view: nothing is owned.
pub(crate) unsafe extern "C" fn floor_finalized(_env: sys::napi_env, _data: *mut c_void, _hint: *mut c_void) {
}

impl Export<1> for NoopView {
    const NAME: &'static CStr = c"noop_view";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let env = call.env;
        let length = read_integer(env, call.args[0], "length", FLOOR_BYTES)? as usize;
        let mut buffer = ptr::null_mut();
        let status = if cfg!(feature = "copy-views") {
            let mut data = ptr::null_mut();
            // SAFETY: `data`/`buffer` are locals (where external buffers are refused, the floor is a plain buffer).
            unsafe { sys::napi_create_arraybuffer(env, length, &mut data, &mut buffer) }
        } else {
            // SAFETY: the scratch is static (lives as long as the process) and at least `length` bytes long.
            unsafe {
                sys::napi_create_external_arraybuffer(
                    env,
                    FLOOR_SCRATCH.0.get().cast(),
                    length,
                    Some(floor_finalized),
                    ptr::null_mut(),
                    &mut buffer,
                )
            }
        };
        check(env, status, "napi_create_external_arraybuffer")?;
        let mut array = ptr::null_mut();
        // SAFETY: `buffer` is a live ArrayBuffer of exactly `length` bytes.
        let status = unsafe {
            sys::napi_create_typedarray(env, sys::TypedarrayType::uint8_array, length, buffer, 0, &mut array)
        };
        check(env, status, "napi_create_typedarray")?;
        Ok(array)
    }
}

/// `stats()`: `{ strings: { live, allocated, freed, finalized, liveBytes, viewHeld, viewHeldBytes, viewCopies,
/// viewFinalizedOffThread }, handlers: { live, registered,
/// cancelled, finalized }, posts: { posted, delivered, skipped, pending }, producers: { live, started, stopped,
/// finalized } }` for this environment.
pub(crate) struct Stats;

impl Export<0> for Stats {
    const NAME: &'static CStr = c"stats";

    fn call(call: &Call<'_, 0>) -> CallResult {
        let (ledger, view_held, handlers, posts, producers, producers_live) = call
            .state
            .try_borrow()
            .map(|state| {
                (
                    state.ledger,
                    (
                        state.shared.view_held.load(Ordering::Relaxed),
                        state.shared.view_held_bytes.load(Ordering::Relaxed),
                        state.shared.view_finalized_off_thread.load(Ordering::Relaxed),
                    ),
                    state.handlers,
                    state.posts.ledger,
                    state.producer_ledger,
                    state.producers.live(),
                )
            })
            .map_err(|_| Throw::internal("stats during a call"))?;
        // Items on the threadsafe function plus messages still queued on the worker.
        let pending = call.state.marshal.queued() + u64::from(call.state.dispatcher.queued());
        let env = call.env;
        let count = |n: u64| create_double(env, n as f64);
        let strings = create_object(
            env,
            &[
                (c"live", count(ledger.live())?),
                (c"allocated", count(ledger.allocated)?),
                (c"freed", count(ledger.freed)?),
                (c"finalized", count(ledger.finalized)?),
                (c"liveBytes", count(ledger.live_bytes)?),
                (c"viewHeld", count(view_held.0)?),
                (c"viewHeldBytes", count(view_held.1)?),
                (c"viewCopies", count(ledger.view_copies)?),
                (c"viewFinalizedOffThread", count(view_held.2)?),
            ],
        )?;
        let handlers = handler_stats(env, handlers)?;
        let posts = crate::posts::post_stats(env, posts, pending)?;
        let producers = crate::posts::producer_stats(env, producers, producers_live as u64)?;
        create_object(
            env,
            &[(c"strings", strings), (c"handlers", handlers), (c"posts", posts), (c"producers", producers)],
        )
    }
}

/// A property descriptor for export `E` under its contract name, whose callback gets `state` as its
/// data.
pub(crate) fn method<const N: usize, E: Export<N>>(state: *const EnvCell) -> sys::napi_property_descriptor {
    sys::napi_property_descriptor {
        utf8name: E::NAME.as_ptr(),
        name: ptr::null_mut(),
        method: Some(trampoline::<N, E>),
        getter: None,
        setter: None,
        value: ptr::null_mut(),
        attributes: sys::PropertyAttributes::writable
            | sys::PropertyAttributes::enumerable
            | sys::PropertyAttributes::configurable,
        data: state.cast_mut().cast::<c_void>(),
    }
}

/// Defines every export of the contract on `exports`, each a `napi_callback` whose data is the environment's state.
pub fn define_all(env: sys::napi_env, exports: sys::napi_value, state: *const EnvCell) -> Result<(), Throw> {
    let properties = [
        method::<1, PrintAndReturn>(state),
        method::<1, FreeString>(state),
        method::<1, FinalizeString>(state),
        method::<1, StringText>(state),
        method::<1, StringView>(state),
        method::<1, StringInfo>(state),
        method::<2, Handler>(state),
        method::<2, Cancel>(state),
        method::<1, FinalizeSubscription>(state),
        method::<1, SubscriptionActive>(state),
        method::<2, SendMessage>(state),
        method::<0, Shutdown>(state),
        method::<2, Post>(state),
        method::<3, Produce>(state),
        method::<1, ProducerStop>(state),
        method::<1, FinalizeProducer>(state),
        method::<1, ProducerActive>(state),
        method::<0, Stats>(state),
        method::<0, Noop>(state),
        method::<1, NoopView>(state),
    ];
    // SAFETY: `exports` is the module's exports object; every descriptor's name is a static C
    // string and its data the environment state, which outlives the functions
    // (instance data is finalized only at teardown, when no JS runs).
    let status = unsafe { sys::napi_define_properties(env, exports, properties.len(), properties.as_ptr()) };
    check(env, status, "napi_define_properties")
}
