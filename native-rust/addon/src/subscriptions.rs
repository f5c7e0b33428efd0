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
//! only records its subscription *handle* for the message's item (see threads.rs), so it must be `Sync`, and it is:
//! off the JS thread it reads nothing but one immutable plain value.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::ptr;

use crate::error_codes::*;
use napi::sys;
use napi_ownership_dispatch::{OnSend, cancel_, handler_};

use crate::args::{BACKEND, Utf8Arg, decode_handle, handle_error, read_dest, read_message};
use crate::call::{
    Call, CallResult, Export, Throw, check, create_double, create_object, get_boolean, invalid_arg_type,
    type_name,
};
use crate::handles::{Handle, HandleError, Kind};
use crate::state::HandlerLedger;
use crate::strings::borrow_state;
use crate::threads::worker_delivered;

/// One `send` in progress: what its callbacks receive and where they leave what they throw. Lives on the `send`
/// export's stack; [`SENDING`] points to it while `dispatcher_send` runs.
pub struct Delivery {
    /// The environment of the send (a thread runs one environment; checked anyway).
    env: sys::napi_env,
    /// The message argument of `send` itself: the same JS string for every callback.
    message: sys::napi_value,
    /// `this` for every callback.
    undefined: sys::napi_value,
    /// What the callbacks threw, in delivery order (values of the `send` export's handle scope).
    errors: RefCell<Vec<sys::napi_value>>,
    /// Thrown values that could not be recorded (the list could not grow): still counted in the message.
    unrecorded: Cell<usize>,
}

thread_local! {
    /// The innermost `send` export in progress on this thread (NULL if none). Each `send` saves and restores it, so
    /// nested sends each collect their own errors. Non-NULL only on a JS thread, inside `send`.
    static SENDING: Cell<*const Delivery> = const { Cell::new(ptr::null()) };
}

/// Seed 000's boxed handler for a JS function.
///
/// Two of its fields are for the JS thread only (`env`, `function`: Node-API values); `subscription` may be read
/// from the dispatcher's worker thread (a plain value, never written after construction).
pub struct JsCallback {
    env: sys::napi_env,
    /// Strong reference (count 1) to the function: keeps it alive while registered. Deleted in Drop.
    function: sys::napi_ref,
    /// This registration's own handle: what a posted delivery names (never a pointer to this box).
    subscription: Handle,
}

// SAFETY: the dispatcher's worker thread calls `on_send(&self)` for posted messages. There SENDING (a thread-local)
// is NULL, so `on_send` reads only `subscription` (Copy, immutable) and the message, into a thread-local batch of
// that worker. `function` is used only on the JS thread, inside this environment's `send` (SENDING set), and by
// Drop. Not Send: the box is dropped where its UserSpaceWrapper lives, the JS thread (cancel waits for the worker to
// leave the callback before it returns).
unsafe impl Sync for JsCallback {}

impl JsCallback {
    /// The strong reference to the function (JS thread).
    pub fn function(&self) -> sys::napi_ref {
        self.function
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
        let mut function = ptr::null_mut();
        // SAFETY: `function` is our live strong reference; a strong reference always yields its value.
        let status = unsafe { sys::napi_get_reference_value(self.env, self.function, &mut function) };
        if status != sys::Status::napi_ok || function.is_null() {
            return;
        }
        let mut result = ptr::null_mut();
        // SAFETY: the current scope is the `send` export's; `delivery.message` and `delivery.undefined` are values
        // of it, `function` was just read. The call may re-enter our exports; none of them holds a borrow now.
        let status = unsafe {
            sys::napi_call_function(self.env, delivery.undefined, function, 1, &delivery.message, &mut result)
        };
        if status == sys::Status::napi_ok {
            return;
        }
        // The callback threw (or JS can no longer run, e.g. a terminating worker: then nothing is pending).
        let mut pending = false;
        // SAFETY: plain queries of this environment.
        let asked = unsafe { sys::napi_is_exception_pending(self.env, &mut pending) };
        if asked != sys::Status::napi_ok || !pending {
            return;
        }
        let mut error = ptr::null_mut();
        // SAFETY: an exception is pending; taking it lets the next callback run.
        if unsafe { sys::napi_get_and_clear_last_exception(self.env, &mut error) } != sys::Status::napi_ok {
            return;
        }
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
        // SAFETY: the reference was created by `handler` for this environment and is deleted only here, once. The
        // function becomes collectable (unless JS still holds it). Runs no JS.
        #[cfg(not(feature = "seed-bug-callback-ref-kept"))]
        let _ = unsafe { sys::napi_delete_reference(self.env, self.function) };
        // Seeded bug 3 (leak-test self-test builds only): the reference to the JS function is never deleted.
        #[cfg(feature = "seed-bug-callback-ref-kept")]
        std::hint::black_box(self.function);
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// handler

fn subscription_alloc_failed() -> Throw {
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

fn is_undefined(env: sys::napi_env, value: sys::napi_value) -> Result<bool, Throw> {
    Ok(type_name(env, value)? == "undefined")
}

/// Decodes a subscription handle argument (its errors come first: argument order).
fn subscription_handle<const N: usize>(call: &Call<'_, N>) -> Result<Handle, Throw> {
    decode_handle(call.env, &*borrow_state(call)?, call.args[0], Kind::Subscription)
}

/// Cancels the subscription `handle` (the decoded `call.args[0]`): `true`, or `false` if it was already released
/// or (with `dest`) is not registered under `dest`, in which case it stays registered.
fn release<const N: usize>(
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

/// Restores the outer `send`'s frame, even if delivery unwinds (a panic is resumed by `send_cstr`).
struct RestoreDelivery {
    outer: *const Delivery,
}

impl Drop for RestoreDelivery {
    fn drop(&mut self) {
        SENDING.set(self.outer);
    }
}

/// Throws what the callbacks of one send threw (see [`collected_error`]). Building the error may run JS (a getter for
/// `globalThis.AggregateError` that sends, registers or shuts down), so the values are taken out of the delivery
/// first: no borrow of it is held across that JS.
fn throw_collected(env: sys::napi_env, delivery: &Delivery, dest: &str) -> Throw {
    let errors = delivery.errors.take();
    let count = errors.len() + delivery.unrecorded.get();
    let thrown = collected_error(env, &errors, count, dest, true)
        // SAFETY: a value of this call's scope.
        .and_then(|error| check(env, unsafe { sys::napi_throw(env, error) }, "napi_throw"));
    match thrown {
        Ok(()) => Throw::Pending,
        Err(failure) => failure,
    }
}

/// An own data property, defined (`napi_define_properties`), never assigned: a setter of the same name on a prototype
/// (`Object.prototype.code`, `Array.prototype[0]`) neither runs nor swallows the value.
fn data_property(
    name: sys::napi_value,
    value: sys::napi_value,
    attributes: sys::napi_property_attributes,
) -> sys::napi_property_descriptor {
    sys::napi_property_descriptor {
        utf8name: ptr::null(),
        name,
        method: None,
        getter: None,
        setter: None,
        value,
        attributes,
        data: ptr::null_mut(),
    }
}

fn create_string(env: sys::napi_env, text: &str) -> Result<sys::napi_value, Throw> {
    let mut value = ptr::null_mut();
    // SAFETY: `text` outlives the call that copies it; `value` is a local.
    let status =
        unsafe { sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut value) };
    check(env, status, "napi_create_string_utf8")?;
    Ok(value)
}

fn define(
    env: sys::napi_env,
    object: sys::napi_value,
    properties: &[sys::napi_property_descriptor],
) -> Result<(), Throw> {
    if properties.is_empty() {
        return Ok(());
    }
    // SAFETY: `object` and every descriptor's name and value are values of the current scope.
    let status = unsafe { sys::napi_define_properties(env, object, properties.len(), properties.as_ptr()) };
    check(env, status, "napi_define_properties")
}

/// What callbacks threw while delivering to `dest`, as one value: the thrown value itself if exactly one threw,
/// else an `AggregateError` with code `ERR_CALLBACKS_THREW` and message `<count> callbacks threw while delivering to
/// "<dest>"`, whose `errors` are the recorded values in delivery order (`count` may exceed them: values that could
/// not be recorded are still counted).
///
/// `errors` and `dest` are read before the first call that can run JS (the `AggregateError` lookup and
/// construction); the list's elements, `code` and `errors` are defined, so no setter runs, and `errors` is the list
/// even if a patched Array iterator made the constructor's own copy come out different.
pub fn collected_error(
    env: sys::napi_env,
    errors: &[sys::napi_value],
    count: usize,
    dest: &str,
    unwrap_single: bool,
) -> Result<sys::napi_value, Throw> {
    if unwrap_single && count == 1 && errors.len() == 1 {
        return Ok(errors[0]);
    }
    let all = sys::PropertyAttributes::writable
        | sys::PropertyAttributes::enumerable
        | sys::PropertyAttributes::configurable;
    // 1. No JS runs in this part.
    let mut array = ptr::null_mut();
    // SAFETY: `array` is a local.
    check(env, unsafe { sys::napi_create_array_with_length(env, 0, &mut array) }, "napi_create_array")?;
    let mut elements = Vec::new();
    if elements.try_reserve_exact(errors.len()).is_err() {
        return Err(Throw::range_error(
            ERR_NATIVE_ALLOC,
            "could not allocate the list of thrown values".to_owned(),
        ));
    }
    for (index, error) in errors.iter().enumerate() {
        elements.push(data_property(create_string(env, &index.to_string())?, *error, all));
    }
    define(env, array, &elements)?;
    let message = create_string(env, &format!("{count} callbacks threw while delivering to \"{dest}\""))?;
    let code = create_string(env, ERR_CALLBACKS_THREW)?;
    let (code_name, errors_name) = (create_string(env, "code")?, create_string(env, "errors")?);

    // 2. JS may run from here (a getter, a patched constructor or iterator), and may call any export: nothing below
    // reads `errors` or `dest`.
    let mut global = ptr::null_mut();
    let mut constructor = ptr::null_mut();
    let mut aggregate = ptr::null_mut();
    // SAFETY: plain Node-API calls on this environment with locals as out-parameters.
    unsafe {
        check(env, sys::napi_get_global(env, &mut global), "napi_get_global")?;
        check(
            env,
            sys::napi_get_named_property(env, global, c"AggregateError".as_ptr(), &mut constructor),
            "napi_get_named_property",
        )?;
        let args = [array, message];
        check(
            env,
            sys::napi_new_instance(env, constructor, 2, args.as_ptr(), &mut aggregate),
            "napi_new_instance",
        )?;
    }
    // 3. Defined, as AggregateError's own `errors` is (not enumerable) and as Node's own errors carry `code`.
    let not_enumerable = sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable;
    define(
        env,
        aggregate,
        &[data_property(code_name, code, all), data_property(errors_name, array, not_enumerable)],
    )?;
    Ok(aggregate)
}

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
