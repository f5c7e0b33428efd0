//! Every export of the contract except the raw fast path (raw/fast.rs), as `#[napi]` functions, and the small ones
//! here: `noop_view`, `stats`.

mod posts;
pub(crate) mod strings;
mod subscriptions;

use std::sync::atomic::Ordering;

use napi::Env;
use napi::bindgen_prelude::Uint8ArraySlice;
use napi_derive::napi;

use crate::bind::{Integer, IntegerName, Js, run};
use crate::js::{Throw, create_double, create_object};
use subscriptions::handler_stats;

/// `noop_view(length)`: the benchmark floor of a first view — a bare external buffer and a Uint8Array over it,
/// with no ownership work at all. Its bytes are a static scratch of this module (zero, process lifetime) that
/// nothing owns or frees; its finalize closure does nothing. Not for data: every such view aliases the same scratch.
const FLOOR_BYTES: u32 = 1 << 20;

/// Writable static bytes (JS may write through a floor view, so they cannot be an immutable static).
struct FloorScratch(std::cell::UnsafeCell<[u8; FLOOR_BYTES as usize]>);
// SAFETY: only ever handed to JS as external memory; Rust never reads or writes it.
unsafe impl Sync for FloorScratch {}
static FLOOR_SCRATCH: FloorScratch = FloorScratch(std::cell::UnsafeCell::new([0; FLOOR_BYTES as usize]));

pub struct Length;
impl IntegerName for Length {
    const NAME: &'static str = "length";
    const MAX: u32 = FLOOR_BYTES;
}

#[napi(js_name = "noop_view")]
pub fn noop_view(env: Env, length: Integer<Length>) -> napi::Result<Js> {
    run(&env, |_cell| {
        let length = length.0 as usize;
        let view = if cfg!(feature = "copy-views") {
            // Where external buffers are refused, the floor is a plain buffer.
            Uint8ArraySlice::copy_from(&env, vec![0u8; length])
        } else {
            // SAFETY: the scratch is static (lives as long as the process) and at least `length` bytes long;
            // nothing is owned, so the finalize closure does nothing (on any thread).
            unsafe {
                Uint8ArraySlice::from_external(&env, FLOOR_SCRATCH.0.get().cast(), length, (), |_, ()| {})
            }
        };
        let view =
            view.map_err(|error| Throw::internal(&format!("creating a floor view failed: {error}")))?;
        Ok(Js(napi::JsValue::raw(&view)))
    })
}

/// `stats()`: `{ strings: { live, allocated, freed, finalized, liveBytes, viewHeld, viewHeldBytes, viewCopies,
/// viewFinalizedOffThread }, handlers: { live, registered, cancelled, finalized }, posts: { posted, delivered,
/// skipped, pending }, producers: { live, started, stopped, finalized }, memory: { reported, pending } }` for this
/// environment, every property
/// defined (no setter on `Object.prototype` runs).
#[napi(js_name = "stats")]
pub fn stats(env: Env) -> napi::Result<Js> {
    run(&env, |cell| {
        let (ledger, view_held, handlers, posts, producers, producers_live, memory) = cell
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
                    (
                        state.shared.reported.load(Ordering::Relaxed),
                        state.shared.unreported.load(Ordering::Relaxed),
                    ),
                )
            })
            .map_err(|_| Throw::internal("stats during a call"))?;
        // Items on the threadsafe function plus messages still queued on the worker.
        let pending = cell.marshal.queued() + u64::from(cell.dispatcher.queued());
        let env = env.raw();
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
        let memory = create_object(
            env,
            &[
                (c"reported", create_double(env, memory.0 as f64)?),
                (c"pending", create_double(env, memory.1 as f64)?),
            ],
        )?;
        create_object(
            env,
            &[
                (c"strings", strings),
                (c"handlers", handlers),
                (c"posts", posts),
                (c"producers", producers),
                (c"memory", memory),
            ],
        )
        .map(Js)
    })
}
