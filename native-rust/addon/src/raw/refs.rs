//! Node-API references that napi-rs 3.16.1 has no fitting type for:
//! - **weak** references to a view's ArrayBuffer and Uint8Array (strings.rs): napi-rs makes weak references only to
//!   `#[napi]` class instances (`WeakReference`), and a view is an external `Uint8Array`;
//! - **strong** references to thrown values of any kind (promises.rs `Thrown`): napi-rs's `UnknownRef`/`ObjectRef`
//!   do not delete themselves in Drop (they print a warning and leak unless `unref(env)` is called), and functions
//!   (`FunctionRef`, which does) are only one kind of thrown value.
//!
//! A [`Reference`] is not `Copy` and is given back once, by value ([`Reference::delete`]), so it cannot be deleted
//! twice; one dropped without `delete` leaks its Node-API reference (as napi-rs's would), so every owner deletes.

use std::ptr;

use napi::sys;

/// One Node-API reference, owned: deleted by [`Reference::delete`].
#[derive(Debug)]
pub(crate) struct Reference(sys::napi_ref);

impl Reference {
    fn create(env: sys::napi_env, value: sys::napi_value, count: u32) -> Result<Self, sys::napi_status> {
        let mut reference = ptr::null_mut();
        // SAFETY: `value` is a value of the current handle scope of `env` (an object, for count 0); `reference` is
        // a local.
        let status = unsafe { sys::napi_create_reference(env, value, count, &mut reference) };
        if status == sys::Status::napi_ok { Ok(Reference(reference)) } else { Err(status) }
    }

    /// A weak reference (count 0) to an object: owns nothing, yields `None` once the object is collected.
    pub(crate) fn weak(env: sys::napi_env, object: sys::napi_value) -> Result<Self, sys::napi_status> {
        Self::create(env, object, 0)
    }

    /// A strong reference (count 1): keeps `value` (of any kind) alive until deleted.
    pub(crate) fn strong(env: sys::napi_env, value: sys::napi_value) -> Result<Self, sys::napi_status> {
        Self::create(env, value, 1)
    }

    /// The referenced value in the current scope, or `None` once a weak reference's object was collected.
    pub(crate) fn value(&self, env: sys::napi_env) -> Option<sys::napi_value> {
        let mut value = ptr::null_mut();
        // SAFETY: `self.0` is a live reference of `env` (deleted only by `delete`, which consumes it).
        let status = unsafe { sys::napi_get_reference_value(env, self.0, &mut value) };
        (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
    }

    /// Deletes the reference (JS thread of `env`, where it was made). Runs no JS.
    pub(crate) fn delete(self, env: sys::napi_env) {
        // SAFETY: created by `create` on `env` and deleted once: `self` is consumed here.
        let _ = unsafe { sys::napi_delete_reference(env, self.0) };
    }
}
