//! Promises this addon settles later (a post's promise, a producer's `done`) and the values callbacks threw on the
//! way. Each holds strong references to JS values and deletes them in Drop, settled or not.
//!
//! Not a `napi_deferred`: one that is never concluded (an environment torn down with a post pending) leaks Node's
//! persistent handle, and concluding needs JS, which no longer runs then.

use std::cell::Cell;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, Function, FunctionRef, JsObjectValue, JsValue, Unknown};
use napi::{Env, sys};

use crate::js::{Throw, failed, napi_failed, undefined};
use crate::raw::calls;
use crate::raw::refs::Reference;

/// Values thrown by callbacks, kept alive by strong references until they are handed to JS (or dropped). Raw
/// references (`raw::refs`) with a Drop of our own: a thrown value may be anything, and napi 3.16.1's references to
/// non-function values (`UnknownRef`, `ObjectRef`) do not delete themselves in Drop (they print a warning and leak
/// unless `unref(env)` is called), so a Drop would be needed around them anyway.
pub struct Thrown {
    pub(crate) env: sys::napi_env,
    pub(crate) refs: Vec<Reference>,
    /// How many were thrown (those beyond what could be kept are still counted).
    pub(crate) count: usize,
}

impl Thrown {
    pub(crate) fn new(env: sys::napi_env) -> Self {
        Thrown { env, refs: Vec::new(), count: 0 }
    }

    /// Keeps `error`, unless `limit` are kept already (then it is only counted).
    pub(crate) fn record(&mut self, error: sys::napi_value, limit: usize) {
        self.count += 1;
        if self.refs.len() >= limit || self.refs.try_reserve(1).is_err() {
            return;
        }
        // Deleted in Drop.
        if let Ok(reference) = Reference::strong(self.env, error) {
            self.refs.push(reference);
        }
    }

    pub(crate) fn absorb(&mut self, mut other: Thrown, limit: usize) {
        self.count += other.count;
        while self.refs.len() < limit && !other.refs.is_empty() {
            self.refs.push(other.refs.remove(0));
        }
    }

    /// The kept values, in order (their references are deleted when `self` drops).
    pub(crate) fn values(&self) -> Vec<sys::napi_value> {
        let mut values = Vec::with_capacity(self.refs.len());
        values.extend(self.refs.iter().filter_map(|reference| reference.value(self.env)));
        values
    }
}

impl Drop for Thrown {
    fn drop(&mut self) {
        for reference in self.refs.drain(..) {
            // Created by `record` on this environment (JS thread, where Thrown lives), deleted once here.
            reference.delete(self.env);
        }
    }
}

/// A promise this addon will settle: napi-rs `FunctionRef`s (strong references) to its `resolve` and `reject`,
/// dropped with it, settled or not (so an environment torn down with a post pending leaks nothing).
pub(crate) struct PendingPromise {
    env: sys::napi_env,
    resolve: FunctionRef<(), ()>,
    reject: FunctionRef<(), ()>,
}

/// The two functions an executor receives.
type Settlers = (FunctionRef<(), ()>, FunctionRef<(), ()>);

thread_local! {
    /// `(resolve, reject)` of the promise being constructed on this thread, left by `capture_executor`. Used as a
    /// stack: `PendingPromise::create` sets aside what an outer construction left here and puts it back (a promise
    /// init hook runs JS inside `new Promise`, and that JS may post again).
    static CAPTURED: Cell<Option<Settlers>> = const { Cell::new(None) };
}

/// A function argument of the executor, kept by napi-rs's strong reference.
fn keep(env: sys::napi_env, value: sys::napi_value) -> Option<FunctionRef<(), ()>> {
    // SAFETY: `value` is an argument of the executor's call (a function: V8 passes resolve and reject).
    let function = unsafe { Function::<(), ()>::from_napi_value(env, value) }.ok()?;
    function.create_ref().ok()
}

/// The executor of `new Promise(executor)`: keeps strong references to its `resolve` and `reject` in [`CAPTURED`].
/// A raw `napi_callback` (for `Env::create_function`): napi-rs makes a function from a closure only with feature
/// `napi5`, which turns on `napi4` (see raw/tsfn.rs).
///
/// # Safety
/// Called by V8 (through Node-API) only, synchronously inside `napi_new_instance` in [`PendingPromise::create`].
unsafe extern "C" fn capture_executor(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let Some(args) = calls::callback_args::<2>(env, info) else {
        return ptr::null_mut();
    };
    // Owned by the PendingPromise that takes them from CAPTURED; one that could not be made drops the other.
    let (Some(resolve), Some(reject)) = (keep(env, args[0]), keep(env, args[1])) else {
        return ptr::null_mut();
    };
    // A constructor that is not the real Promise (a patched global at the first post) may call its executor twice:
    // the last call wins, and the earlier references are dropped, not leaked.
    drop(CAPTURED.replace(Some((resolve, reject))));
    ptr::null_mut()
}

/// What makes promises in one environment: the original `Promise` constructor and our executor, kept by napi-rs
/// `FunctionRef`s (dropped at teardown).
pub(crate) struct PromiseKit {
    env: sys::napi_env,
    constructor: FunctionRef<(), ()>,
    executor: FunctionRef<(), ()>,
}

impl PromiseKit {
    /// Looks `Promise` up on `globalThis` (a getter may run JS) and makes the executor.
    pub(crate) fn new(env: sys::napi_env) -> Result<Self, Throw> {
        // napi-rs's property read leaves an exception a getter for `globalThis.Promise` throws pending, and
        // `napi_failed` propagates it to the caller.
        let constructor = Env::from_raw(env)
            .get_global()
            .and_then(|global| global.get_named_property_unchecked::<Unknown>("Promise"))
            .map_err(|error| napi_failed(env, "napi_get_named_property", error))?;
        let internal = |error: napi::Error| Throw::internal(&error.reason);
        // SAFETY: a value of the current scope (kept only as a reference; called through Node-API).
        let constructor = unsafe { Function::<(), ()>::from_napi_value(env, constructor.raw()) }
            .and_then(|function| function.create_ref())
            .map_err(internal)?;
        let executor = Env::from_raw(env)
            .create_function::<(), ()>("executor", capture_executor)
            .and_then(|function| function.create_ref())
            .map_err(internal)?;
        Ok(PromiseKit { env, constructor, executor })
    }

    /// The constructor and the executor, as values of the current scope.
    pub(crate) fn values(&self) -> Result<(sys::napi_value, sys::napi_value), Throw> {
        let env = Env::from_raw(self.env);
        let value = |function: &FunctionRef<(), ()>| {
            function
                .borrow_back(&env)
                .map(|function| function.raw())
                .map_err(|error| Throw::internal(&error.reason))
        };
        Ok((value(&self.constructor)?, value(&self.executor)?))
    }
}

impl PendingPromise {
    /// `new Promise(executor)` with the kit's values: the promise, and what settles it.
    pub(crate) fn create(
        env: sys::napi_env,
        constructor: sys::napi_value,
        executor: sys::napi_value,
    ) -> Result<(PendingPromise, sys::napi_value), Throw> {
        let outer = CAPTURED.take(); // an outer construction's (see CAPTURED); put back below, on every path
        // Runs JS: promise hooks, or a patched constructor (see `new_promise`). Raw (`raw::calls`): what it throws
        // stays pending for the caller.
        let created = calls::new_instance(env, constructor, &[executor]);
        // Ownership of the two references moves from the executor's hand-off to the PendingPromise (or, on
        // failure, they drop here).
        let captured = CAPTURED.replace(outer);
        let promise = created.map_err(|status| failed(env, status, "napi_new_instance"))?;
        let (resolve, reject) =
            captured.ok_or_else(|| Throw::internal("the Promise executor was not called"))?;
        Ok((PendingPromise { env, resolve, reject }, promise))
    }

    /// Calls `resolve(value)` or `reject(error)`; the references go with `self`.
    pub(crate) fn settle(self, outcome: Result<sys::napi_value, sys::napi_value>) {
        let (function, value) = match outcome {
            Ok(value) => (&self.resolve, value),
            Err(error) => (&self.reject, error),
        };
        let env = Env::from_raw(self.env);
        let Ok(function) = function.borrow_back(&env).map(|function| function.raw()) else { return };
        // `function` is the value of our live reference in the current scope. Resolving or rejecting can run JS (a
        // promise hook; resolving with a thenable): `self` was moved out of the state, and the caller holds no
        // borrow of it. What it throws stays pending, as before.
        if let Ok(undefined) = undefined(self.env) {
            let _ = calls::call_function(self.env, undefined, function, &[value]);
        }
    }
}
