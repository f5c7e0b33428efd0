//! Decoding arguments the contract's way: handle numbers of any kind.

use napi::sys;

use crate::call::{Throw, check, invalid_arg_type};
use crate::handles::{Backend, Handle, HandleError, Kind};
use crate::state::EnvState;

pub const BACKEND: Backend = Backend::Rust;

// ---------------------------------------------------------------------------------------------------------------------
// Handles

/// Decodes a handle argument in the contract's order, up to (not including) the table lookup.
pub fn decode_handle(
    env: sys::napi_env,
    state: &EnvState,
    value: sys::napi_value,
    kind: Kind,
) -> Result<Handle, Throw> {
    let mut number = 0f64;
    // SAFETY: `value` is an argument of the current call; `number` is a local.
    let status = unsafe { sys::napi_get_value_double(env, value, &mut number) };
    if status == sys::Status::napi_number_expected {
        return Err(invalid_arg_type(env, "a number", "handle", value));
    }
    check(env, status, "napi_get_value_double")?;
    // Integer in [0, 2^53): NaN fails the range test; -0 counts as 0 like Number.isInteger. In
    // range, the cast truncates exactly, so it round-trips only for integers.
    let in_range = number >= 0.0 && number < crate::handles::HANDLE_LIMIT as f64;
    let integer = number as u64;
    if !in_range || integer as f64 != number {
        return Err(invalid_handle(env, value, kind));
    }
    let handle = Handle::decode(integer);
    handle.classify(BACKEND, kind, state.env_id).map_err(|e| handle_error(env, value, e, kind))?;
    Ok(handle)
}

fn invalid_handle(env: sys::napi_env, value: sys::napi_value, kind: Kind) -> Throw {
    match crate::call::number_to_string(env, value) {
        Ok(n) => Throw::type_error(
            "ERR_INVALID_HANDLE",
            format!("{n} is not a live or released {} handle of the {} backend", kind.name(), BACKEND.name()),
        ),
        Err(thrown) => thrown,
    }
}

/// The contract's error for a handle that does not name a live object of `kind`.
pub fn handle_error(env: sys::napi_env, value: sys::napi_value, error: HandleError, kind: Kind) -> Throw {
    match error {
        HandleError::Foreign(other) => Throw::type_error(
            "ERR_FOREIGN_HANDLE",
            format!("handle belongs to the {} backend, not {}", other.name(), BACKEND.name()),
        ),
        HandleError::Invalid => invalid_handle(env, value, kind),
        HandleError::ForeignEnv => Throw::error(
            "ERR_FOREIGN_ENV",
            "handle belongs to another Node.js environment (worker thread)".to_owned(),
        ),
        HandleError::Released => {
            Throw::error("ERR_NATIVE_RELEASED", format!("the native {} was already released", kind.name()))
        }
    }
}
