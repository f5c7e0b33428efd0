//! The string exports of docs/raw-contract.md ("Strings", "Views") over the model in `strings.rs`.

use std::sync::Arc;

use napi::bindgen_prelude::Either;
use napi::{Env, sys};
use napi_derive::napi;
use napi_ownership_core::CoreString;

use crate::args::{BACKEND, handle_error};
use crate::bind::{HandleArg, Input, Js, StringKind, run};
use crate::error_codes::*;
use crate::handles::{Handle, HandleError, Kind, TableFull};
use crate::js::{Throw, create_bigint_u64, create_double, create_object};
use crate::ledger::{Release, SharedLedger, StringLedger};
use crate::state::EnvCell;
use crate::strings::*;

/// Stores a fresh copy in this environment's table; the handle number. Ownership of `copy` moves into the table: the
/// slot owns it until free_string, finalize_string or teardown.
pub(crate) fn store(cell: &EnvCell, env: sys::napi_env, copy: CoreString) -> Result<f64, Throw> {
    let len = copy.len();
    let mut state =
        cell.try_borrow_mut().map_err(|_| Throw::internal("reentrant call into the rust backend"))?;
    let (slot, generation) = state
        .strings
        .insert(NativeString::new(copy))
        // Not worded by the contract (the same wording as the cpp backend). The returned entry
        // drops here, giving its bytes back to the core.
        .map_err(|TableFull(_entry)| {
            Throw::range_error(
                ERR_NATIVE_ALLOC,
                format!(
                    "could not allocate a handle for the native {}: the handle table of this environment is full",
                    Kind::String.name()
                ),
            )
        })?;
    state.ledger.allocated += 1;
    state.ledger.live_bytes += len as u64;
    // Best effort: a failed report must not lose the handle (and so leak the string).
    let _ = state.adjust_live_bytes(env, len as i64);
    Ok(Handle::new(state.env_id, BACKEND, Kind::String, generation, slot).to_f64())
}

/// Ends the string handle `handle` (decoded from the JS value `value`): `true`, or `false` if it was already
/// released. The bytes go now, or with the last view that shares them.
pub(crate) fn release_handle(
    cell: &EnvCell,
    env: sys::napi_env,
    handle: Handle,
    value: sys::napi_value,
    how: Release,
) -> Result<bool, Throw> {
    let mut state =
        cell.try_borrow_mut().map_err(|_| Throw::internal("reentrant call into the rust backend"))?;
    let string = match state.strings.remove(handle.slot, handle.generation) {
        Ok(string) => string,
        Err(HandleError::Released) => return Ok(false),
        Err(error) => return Err(handle_error(env, value, error, Kind::String)),
    };
    let len = string.len();
    let shared = Arc::clone(&state.shared);
    string.release(env, &shared);
    match how {
        Release::Freed => state.ledger.freed += 1,
        Release::Finalized => state.ledger.finalized += 1,
    }
    state.ledger.live_bytes -= len as u64;
    debug_assert_eq!(state.ledger.live(), state.strings.live() as u64);
    Ok(true)
}

/// `finalize_string(handle)`: as `free_string`, counted as `finalized` (the FinalizationRegistry's path).
#[napi(js_name = "finalize_string")]
pub fn finalize_string(env: Env, handle: HandleArg<StringKind>) -> napi::Result<bool> {
    run(&env, |cell| release_handle(cell, env.raw(), handle.handle, handle.value, Release::Finalized))
}

// ---------------------------------------------------------------------------------------------
// The idiomatic twins of the fast path (raw/fast.rs): the same contract, table and errors, as ordinary `#[napi]`
// functions with typed arguments, for `npm run bench` to put the cost of napi-rs's wrapper beside the raw one.

/// `noop_idiomatic()`: the floor of a `#[napi]` call.
#[napi(js_name = "noop_idiomatic")]
pub fn noop_idiomatic() {}

/// `print_and_return_idiomatic(input)`: `print_and_return` on napi-rs's `Either<String, Uint8Array>`. The string
/// arrives as a Rust `String` (Node-API's UTF-8, lone surrogates as U+FFFD); the Uint8Array is read in place.
#[napi(js_name = "print_and_return_idiomatic")]
pub fn print_and_return_idiomatic(env: Env, input: Input) -> napi::Result<f64> {
    run(&env, |cell| {
        let copy = match &input.0 {
            Either::A(text) => {
                trace_input(text.as_ptr(), text.len(), "UTF-8 copy of a JS string");
                copy_in_core(text.as_ptr(), text.len())?
            }
            Either::B(bytes) => {
                trace_input(bytes.as_ptr(), bytes.len(), "Uint8Array read in place");
                copy_in_core(bytes.as_ptr(), bytes.len())?
            }
        };
        store(cell, env.raw(), copy)
    })
}

/// `free_string_idiomatic(handle)`: `free_string` with a typed handle argument.
#[napi(js_name = "free_string_idiomatic")]
pub fn free_string_idiomatic(env: Env, handle: HandleArg<StringKind>) -> napi::Result<bool> {
    run(&env, |cell| release_handle(cell, env.raw(), handle.handle, handle.value, Release::Freed))
}

// ---------------------------------------------------------------------------------------------
// string_text / string_view / string_info

/// Runs `f` on the live string named by `handle` (one borrow of the state; `f` must not run JS).
fn with_live_string<R>(
    cell: &EnvCell,
    env: &Env,
    handle: &HandleArg<StringKind>,
    f: impl FnOnce(&mut EnvLedgers<'_>, &mut NativeString) -> Result<R, Throw>,
) -> Result<R, Throw> {
    let mut state =
        cell.try_borrow_mut().map_err(|_| Throw::internal("reentrant call into the rust backend"))?;
    let state = &mut *state;
    let string = state
        .strings
        .get_mut(handle.handle.slot, handle.handle.generation)
        .map_err(|error| handle_error(env.raw(), handle.value, error, Kind::String))?;
    f(&mut EnvLedgers { ledger: &mut state.ledger, shared: &state.shared }, string)
}

/// The parts of the state a string export updates beside the string itself.
struct EnvLedgers<'a> {
    ledger: &'a mut StringLedger,
    shared: &'a Arc<SharedLedger>,
}

/// `string_text(handle)`: the bytes copied into a new JS string (invalid UTF-8 written through a view becomes
/// U+FFFD), so JS keeps nothing pointing at native memory.
#[napi(js_name = "string_text")]
pub fn string_text(env: Env, handle: HandleArg<StringKind>) -> napi::Result<Js> {
    run(&env, |cell| with_live_string(cell, &env, &handle, |_, string| string.text(env.raw()).map(Js)))
}

/// `string_view(handle)`: a Uint8Array over the native bytes that co-owns them (see `NativeString::view`).
#[napi(js_name = "string_view")]
pub fn string_view(env: Env, handle: HandleArg<StringKind>) -> napi::Result<Js> {
    run(&env, |cell| {
        with_live_string(cell, &env, &handle, |ledgers, string| {
            string.view(env.raw(), ledgers.shared, &mut ledgers.ledger.view_copies).map(Js)
        })
    })
}

/// `string_info(handle)`: `{ address: bigint, byteLength: number }`, defined properties.
#[napi(js_name = "string_info")]
pub fn string_info(env: Env, handle: HandleArg<StringKind>) -> napi::Result<Js> {
    run(&env, |cell| {
        let (address, len) = with_live_string(cell, &env, &handle, |_, string| {
            Ok((string.address() as usize as u64, string.len()))
        })?;
        let env = env.raw();
        let address = create_bigint_u64(env, address)?;
        let byte_length = create_double(env, len as f64)?;
        create_object(env, &[(c"address", address), (c"byteLength", byte_length)]).map(Js)
    })
}
