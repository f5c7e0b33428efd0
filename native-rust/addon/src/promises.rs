//! Promises this addon settles later (a post's promise, a producer's `done`) and the values callbacks threw on the
//! way. Each holds strong references to JS values and deletes them in Drop, settled or not.
//!
//! Not a `napi_deferred`: one that is never concluded (an environment torn down with a post pending) leaks Node's
//! persistent handle, and concluding needs JS, which no longer runs then.

use std::cell::Cell;
use std::ptr;

use napi::sys;

use crate::js::{Throw, check};

/// Values thrown by callbacks, kept alive by strong references until they are handed to JS (or dropped).
pub struct Thrown {
    pub(crate) env: sys::napi_env,
    pub(crate) refs: Vec<sys::napi_ref>,
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
        let mut reference = ptr::null_mut();
        // SAFETY: `error` is a value of the current scope; count 1 makes the reference strong. Deleted in Drop.
        if unsafe { sys::napi_create_reference(self.env, error, 1, &mut reference) } == sys::Status::napi_ok {
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
        for &reference in &self.refs {
            let mut value = ptr::null_mut();
            // SAFETY: our live strong reference.
            if unsafe { sys::napi_get_reference_value(self.env, reference, &mut value) }
                == sys::Status::napi_ok
            {
                values.push(value);
            }
        }
        values
    }
}

impl Drop for Thrown {
    fn drop(&mut self) {
        for reference in self.refs.drain(..) {
            // SAFETY: created by `record` on this environment (JS thread, where Thrown lives), deleted once here.
            let _ = unsafe { sys::napi_delete_reference(self.env, reference) };
        }
    }
}

/// A promise this addon will settle, held by strong references to its `resolve` and `reject` functions. Not a
/// `napi_deferred`: one that is never concluded (an environment torn down with a post pending) leaks Node's
/// persistent handle, and concluding needs JS, which no longer runs then. References can be deleted at teardown:
/// Drop deletes them, settled or not.
pub(crate) struct PendingPromise {
    pub(crate) env: sys::napi_env,
    pub(crate) resolve: sys::napi_ref,
    pub(crate) reject: sys::napi_ref,
}

thread_local! {
    /// `(resolve, reject)` of the promise being constructed on this thread, left by `capture_executor`. Used as a
    /// stack: `PendingPromise::create` sets aside what an outer construction left here and puts it back (a promise
    /// init hook runs JS inside `new Promise`, and that JS may post again).
    static CAPTURED: Cell<Option<(sys::napi_ref, sys::napi_ref)>> = const { Cell::new(None) };
}

/// Deletes a pair of references that nobody will own.
pub(crate) fn delete_pair(env: sys::napi_env, pair: Option<(sys::napi_ref, sys::napi_ref)>) {
    for reference in pair.into_iter().flat_map(|(resolve, reject)| [resolve, reject]) {
        // SAFETY: made by `capture_executor` on this environment's thread, owned by nobody else; deleted once.
        let _ = unsafe { sys::napi_delete_reference(env, reference) };
    }
}

/// The executor of `new Promise(executor)`: keeps strong references to its `resolve` and `reject` in [`CAPTURED`].
///
/// # Safety
/// Called by V8 (through Node-API) only, synchronously inside `napi_new_instance` in [`PendingPromise::create`].
pub(crate) unsafe extern "C" fn capture_executor(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut argc = 2;
    let mut args = [ptr::null_mut(); 2];
    let (mut resolve, mut reject) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: `info` is this call's; `args` has room for two values; the references are strong (count 1) and owned
    // by the PendingPromise that takes them from CAPTURED (or deleted below if one could not be made).
    unsafe {
        if sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), ptr::null_mut())
            != sys::Status::napi_ok
        {
            return ptr::null_mut();
        }
        let made_resolve = sys::napi_create_reference(env, args[0], 1, &mut resolve) == sys::Status::napi_ok;
        let made_reject = sys::napi_create_reference(env, args[1], 1, &mut reject) == sys::Status::napi_ok;
        if !(made_resolve && made_reject) {
            for reference in [resolve, reject].into_iter().filter(|r| !r.is_null()) {
                let _ = sys::napi_delete_reference(env, reference);
            }
            return ptr::null_mut();
        }
    }
    // A constructor that is not the real Promise (a patched global at the first post) may call its executor twice:
    // the last call wins, and the earlier references are deleted, not leaked.
    delete_pair(env, CAPTURED.replace(Some((resolve, reject))));
    ptr::null_mut()
}

/// What makes promises in one environment: the original `Promise` constructor and our executor, kept by strong
/// references (deleted at teardown).
pub(crate) struct PromiseKit {
    pub(crate) env: sys::napi_env,
    pub(crate) constructor: sys::napi_ref,
    pub(crate) executor: sys::napi_ref,
}

impl PromiseKit {
    pub(crate) fn new(env: sys::napi_env) -> Result<Self, Throw> {
        let (mut global, mut constructor, mut executor) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        let mut kit = PromiseKit { env, constructor: ptr::null_mut(), executor: ptr::null_mut() };
        let name = c"executor";
        // SAFETY: plain Node-API calls with locals as out-parameters; the references are owned by `kit` (Drop).
        unsafe {
            check(env, sys::napi_get_global(env, &mut global), "napi_get_global")?;
            check(
                env,
                sys::napi_get_named_property(env, global, c"Promise".as_ptr(), &mut constructor),
                "napi_get_named_property",
            )?;
            check(
                env,
                sys::napi_create_function(
                    env,
                    name.as_ptr(),
                    name.count_bytes() as isize,
                    Some(capture_executor),
                    ptr::null_mut(),
                    &mut executor,
                ),
                "napi_create_function",
            )?;
            check(
                env,
                sys::napi_create_reference(env, constructor, 1, &mut kit.constructor),
                "napi_create_reference",
            )?;
            check(
                env,
                sys::napi_create_reference(env, executor, 1, &mut kit.executor),
                "napi_create_reference",
            )?;
        }
        Ok(kit)
    }
}

impl Drop for PromiseKit {
    fn drop(&mut self) {
        for reference in [self.constructor, self.executor].into_iter().filter(|r| !r.is_null()) {
            // SAFETY: created by `new` on this environment, deleted once here.
            let _ = unsafe { sys::napi_delete_reference(self.env, reference) };
        }
    }
}

impl PromiseKit {
    /// The constructor and the executor, as values of the current scope.
    pub(crate) fn values(&self) -> Result<(sys::napi_value, sys::napi_value), Throw> {
        let (mut constructor, mut executor) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: the kit's live strong references; locals as out-parameters.
        unsafe {
            check(
                self.env,
                sys::napi_get_reference_value(self.env, self.constructor, &mut constructor),
                "napi_get_reference_value",
            )?;
            check(
                self.env,
                sys::napi_get_reference_value(self.env, self.executor, &mut executor),
                "napi_get_reference_value",
            )?;
        }
        Ok((constructor, executor))
    }
}

impl PendingPromise {
    /// `new Promise(executor)` with the kit's values: the promise, and what settles it.
    pub(crate) fn create(
        env: sys::napi_env,
        constructor: sys::napi_value,
        executor: sys::napi_value,
    ) -> Result<(PendingPromise, sys::napi_value), Throw> {
        let mut promise = ptr::null_mut();
        let outer = CAPTURED.take(); // an outer construction's (see CAPTURED); put back below, on every path
        // SAFETY: values of the current scope. Runs JS: promise hooks, or a patched constructor (see `new_promise`).
        let status = unsafe { sys::napi_new_instance(env, constructor, 1, &executor, &mut promise) };
        let captured = CAPTURED.replace(outer);
        if let Err(thrown) = check(env, status, "napi_new_instance") {
            delete_pair(env, captured);
            return Err(thrown);
        }
        // Ownership of the two references moves from the executor's hand-off to the PendingPromise.
        let (resolve, reject) =
            captured.ok_or_else(|| Throw::internal("the Promise executor was not called"))?;
        Ok((PendingPromise { env, resolve, reject }, promise))
    }

    /// Calls `resolve(value)` or `reject(error)`; the references go with `self`.
    pub(crate) fn settle(self, outcome: Result<sys::napi_value, sys::napi_value>) {
        let (function, value) = match outcome {
            Ok(value) => (self.resolve, value),
            Err(error) => (self.reject, error),
        };
        let env = self.env;
        let (mut function_value, mut undefined, mut result) =
            (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: our live strong reference. Resolving or rejecting can run JS (a promise hook; resolving with a
        // thenable): `self` was moved out of the state, and the caller holds no borrow of it.
        unsafe {
            if sys::napi_get_reference_value(env, function, &mut function_value) == sys::Status::napi_ok
                && sys::napi_get_undefined(env, &mut undefined) == sys::Status::napi_ok
            {
                let _ = sys::napi_call_function(env, undefined, function_value, 1, &value, &mut result);
            }
        }
    }
}

impl Drop for PendingPromise {
    fn drop(&mut self) {
        for reference in [self.resolve, self.reject] {
            // SAFETY: made by `capture_executor` on this environment (JS thread, where this lives), deleted once.
            let _ = unsafe { sys::napi_delete_reference(self.env, reference) };
        }
    }
}
