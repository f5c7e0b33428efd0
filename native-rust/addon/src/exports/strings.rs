//! The string exports of docs/raw-contract.md ("Strings", "Views") over the model in `strings.rs`.

use std::ffi::CStr;
use std::ptr;
use std::sync::Arc;

use napi::sys;

use crate::args::{BACKEND, decode_handle, handle_error};
use crate::call::{Call, Export, borrow_state};
use crate::error_codes::*;
use crate::handles::{Handle, HandleError, Kind, TableFull};
use crate::js::{
    CallResult, Throw, check, create_bigint_u64, create_double, create_object, get_boolean, invalid_arg_type,
};
use crate::ledger::Release;
use crate::strings::*;

pub struct PrintAndReturn;

impl Export<1> for PrintAndReturn {
    const NAME: &'static CStr = c"print_and_return";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let (env, input) = (call.env, call.args[0]);
        let copy = match copy_js_string(env, input)? {
            Some(copy) => copy,
            None => copy_uint8array(env, input)?
                .ok_or_else(|| invalid_arg_type(env, "a string or Uint8Array", "input", input))?,
        };
        let len = copy.len();
        let mut state = borrow_state(call)?;
        // Ownership moves into the table: the slot owns the copy until free_string,
        // finalize_string or teardown.
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
        let env_id = state.env_id;
        // Best effort: a failed report must not lose the handle (and so leak the string).
        let _ = state.adjust_live_bytes(env, len as i64);
        drop(state);
        create_double(env, Handle::new(env_id, BACKEND, Kind::String, generation, slot).to_f64())
    }
}

// ---------------------------------------------------------------------------------------------
// free_string / finalize_string

pub(crate) fn release(call: &Call<'_, 1>, how: Release) -> CallResult {
    let env = call.env;
    let mut state = borrow_state(call)?;
    let handle = decode_handle(env, state.env_id, call.args[0], Kind::String)?;
    let string = match state.strings.remove(handle.slot, handle.generation) {
        Ok(string) => string,
        Err(HandleError::Released) => {
            drop(state);
            return get_boolean(env, false);
        }
        Err(error) => return Err(handle_error(env, call.args[0], error, Kind::String)),
    };
    let len = string.len();
    // The handle ends now; the bytes go now, or with the last view that shares them.
    let shared = Arc::clone(&state.shared);
    string.release(env, &shared);
    match how {
        Release::Freed => state.ledger.freed += 1,
        Release::Finalized => state.ledger.finalized += 1,
    }
    state.ledger.live_bytes -= len as u64;
    debug_assert_eq!(state.ledger.live(), state.strings.live() as u64);
    drop(state);
    get_boolean(env, true)
}

pub struct FreeString;

impl Export<1> for FreeString {
    const NAME: &'static CStr = c"free_string";

    fn call(call: &Call<'_, 1>) -> CallResult {
        release(call, Release::Freed)
    }
}

pub struct FinalizeString;

impl Export<1> for FinalizeString {
    const NAME: &'static CStr = c"finalize_string";

    fn call(call: &Call<'_, 1>) -> CallResult {
        release(call, Release::Finalized)
    }
}

// ---------------------------------------------------------------------------------------------
// string_text / string_view / string_info

/// Runs `f` on the live string named by the handle argument.
pub(crate) fn with_live_string<R>(
    call: &Call<'_, 1>,
    f: impl FnOnce(&mut NativeString) -> Result<R, Throw>,
) -> Result<R, Throw> {
    let mut state = borrow_state(call)?;
    let handle = decode_handle(call.env, state.env_id, call.args[0], Kind::String)?;
    let string = state
        .strings
        .get_mut(handle.slot, handle.generation)
        .map_err(|error| handle_error(call.env, call.args[0], error, Kind::String))?;
    f(string)
}

pub struct StringText;

impl Export<1> for StringText {
    const NAME: &'static CStr = c"string_text";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let env = call.env;
        with_live_string(call, |string| {
            let mut text = ptr::null_mut();
            // SAFETY: the bytes are live for the call (the slot holds them); Node-API copies
            // `len` bytes into a new JS string (invalid UTF-8 written through a view becomes
            // U+FFFD), so JS keeps nothing pointing at native memory.
            let status = unsafe {
                sys::napi_create_string_utf8(env, string.address(), string.len() as isize, &mut text)
            };
            check(env, status, "napi_create_string_utf8")?;
            Ok(text)
        })
    }
}

pub struct StringView;

impl Export<1> for StringView {
    const NAME: &'static CStr = c"string_view";

    /// A Uint8Array over the native bytes, zero-copy. Its ArrayBuffer co-owns the bytes (one share,
    /// ended by `view_finalized`), so they outlive `free_string` for as long as JS, or native code JS
    /// handed the view to, can reach them. The same Uint8Array is returned while it is alive.
    fn call(call: &Call<'_, 1>) -> CallResult {
        let env = call.env;
        let mut state = borrow_state(call)?;
        let handle = decode_handle(env, state.env_id, call.args[0], Kind::String)?;
        let ledger = Arc::clone(&state.shared);
        let state = &mut *state;
        let string = state
            .strings
            .get_mut(handle.slot, handle.generation)
            .map_err(|error| handle_error(env, call.args[0], error, Kind::String))?;
        string.view(env, &ledger, &mut state.ledger.view_copies)
    }
}

pub struct StringInfo;

impl Export<1> for StringInfo {
    const NAME: &'static CStr = c"string_info";

    fn call(call: &Call<'_, 1>) -> CallResult {
        let (address, len) =
            with_live_string(call, |string| Ok((string.address() as usize as u64, string.len())))?;
        let env = call.env;
        let address = create_bigint_u64(env, address)?;
        let byte_length = create_double(env, len as f64)?;
        create_object(env, &[(c"address", address), (c"byteLength", byte_length)])
    }
}
