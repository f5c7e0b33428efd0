//! Decoding arguments the contract's way: handle numbers (any kind) and JS strings that must become C strings.

use std::ffi::CStr;
use std::mem::MaybeUninit;

use crate::error_codes::*;
use napi::bindgen_prelude::FromNapiValue;
use napi::{Status, sys};

use crate::handles::{Backend, Handle, HandleError, Kind};
use crate::js::{Throw, failed, invalid_arg_type, napi_failed, number_to_string};
use crate::raw::utf8;

pub const BACKEND: Backend = Backend::Rust;

// ---------------------------------------------------------------------------------------------------------------------
// Handles

/// Decodes a handle argument in the contract's order, up to (not including) the table lookup.
pub fn decode_handle(
    env: sys::napi_env,
    env_id: u8,
    value: sys::napi_value,
    kind: Kind,
) -> Result<Handle, Throw> {
    // napi-rs's conversion: one `napi_get_value_double`, no allocation unless it fails.
    // SAFETY: `value` is an argument of the current call.
    let number = match unsafe { f64::from_napi_value(env, value) } {
        Ok(number) => number,
        Err(error) if error.status == Status::NumberExpected => {
            return Err(invalid_arg_type(env, "a number", "handle", value));
        }
        Err(error) => return Err(napi_failed(env, "napi_get_value_double", error)),
    };
    // Integer in [0, 2^53): NaN fails the range test; -0 counts as 0 like Number.isInteger. In
    // range, the cast truncates exactly, so it round-trips only for integers.
    let in_range = number >= 0.0 && number < crate::handles::HANDLE_LIMIT as f64;
    let integer = number as u64;
    if !in_range || integer as f64 != number {
        return Err(invalid_handle(env, value, kind));
    }
    let handle = Handle::decode(integer);
    handle.classify(BACKEND, kind, env_id).map_err(|e| handle_error(env, value, e, kind))?;
    Ok(handle)
}

fn invalid_handle(env: sys::napi_env, value: sys::napi_value, kind: Kind) -> Throw {
    match number_to_string(env, value) {
        Ok(n) => Throw::type_error(
            ERR_INVALID_HANDLE,
            format!("{n} is not a live or released {} handle of the {} backend", kind.name(), BACKEND.name()),
        ),
        Err(thrown) => thrown,
    }
}

/// The contract's error for a handle that does not name a live object of `kind`.
pub fn handle_error(env: sys::napi_env, value: sys::napi_value, error: HandleError, kind: Kind) -> Throw {
    match error {
        HandleError::Foreign(other) => Throw::type_error(
            ERR_FOREIGN_HANDLE,
            format!("handle belongs to the {} backend, not {}", other.name(), BACKEND.name()),
        ),
        HandleError::Invalid => invalid_handle(env, value, kind),
        HandleError::ForeignEnv => Throw::error(
            ERR_FOREIGN_ENV,
            "handle belongs to another Node.js environment (worker thread)".to_owned(),
        ),
        HandleError::Released => {
            Throw::error(ERR_NATIVE_RELEASED, format!("the native {} was already released", kind.name()))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Strings

/// Strings up to this many UTF-8 bytes are read from JS into a stack buffer; longer ones into a
/// heap buffer sized exactly.
pub const STACK_STRING_MAX: usize = 256;
/// Node-API writes whole characters (at most 4 bytes each) and a NUL, so with 4 spare bytes a
/// result of at most `STACK_STRING_MAX` bytes proves the string was not truncated.
pub const STACK_BUFFER_LEN: usize = STACK_STRING_MAX + 4 + 1;

/// A JS string argument as NUL-terminated UTF-8, owned by the export's stack frame: in a stack buffer when short,
/// else in an exactly sized heap buffer freed with it.
pub struct Utf8Arg {
    stack: [MaybeUninit<u8>; STACK_BUFFER_LEN],
    heap: Vec<u8>,
    /// Bytes without the NUL; `stack[..=len]` (or `heap`) is initialised once `read` returned true.
    len: usize,
    on_heap: bool,
}

impl Default for Utf8Arg {
    fn default() -> Self {
        Self::new()
    }
}

impl Utf8Arg {
    pub fn new() -> Self {
        Utf8Arg { stack: [MaybeUninit::uninit(); STACK_BUFFER_LEN], heap: Vec::new(), len: 0, on_heap: false }
    }

    /// Reads `value` as UTF-8 (lone surrogates become U+FFFD); `Ok(false)` if it is not a string. Raw
    /// (`raw::utf8`): napi-rs's `String` always allocates.
    pub fn read(&mut self, env: sys::napi_env, value: sys::napi_value) -> Result<bool, Throw> {
        let utf8_failed = |status| failed(env, status, "napi_get_value_string_utf8");
        let written = match utf8::read_utf8(env, value, &mut self.stack) {
            Ok(written) => written,
            Err(sys::Status::napi_string_expected) => return Ok(false),
            Err(status) => return Err(utf8_failed(status)),
        };
        if written <= STACK_STRING_MAX {
            self.len = written;
            self.on_heap = false;
            return Ok(true);
        }
        let len = utf8::utf8_len(env, value).map_err(utf8_failed)?;
        let mut heap: Vec<u8> = Vec::new();
        if heap.try_reserve_exact(len.saturating_add(1)).is_err() {
            return Err(Throw::range_error(
                ERR_NATIVE_ALLOC,
                format!("could not allocate {} bytes for the native copy", len.saturating_add(1)),
            ));
        }
        // `heap` has capacity for `len + 1` bytes (string and NUL).
        let written =
            utf8::read_utf8(env, value, &mut heap.spare_capacity_mut()[..len + 1]).map_err(utf8_failed)?;
        // SAFETY: Node-API initialised `written` bytes and the NUL after them.
        unsafe { heap.set_len(written + 1) };
        self.heap = heap;
        self.len = written;
        self.on_heap = true;
        Ok(true)
    }

    /// The bytes and their NUL terminator.
    fn with_nul(&self) -> &[u8] {
        if self.on_heap {
            &self.heap
        } else {
            // SAFETY: `read` returned true, so Node-API initialised `len` bytes and a NUL in `stack`.
            unsafe { std::slice::from_raw_parts(self.stack.as_ptr().cast::<u8>(), self.len + 1) }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// As a C string, or the offset of the first NUL byte (a C string would end there).
    pub fn c_str(&self) -> Result<&CStr, usize> {
        let c = CStr::from_bytes_until_nul(self.with_nul()).expect("Node-API writes a NUL terminator");
        if c.count_bytes() == self.len { Ok(c) } else { Err(c.count_bytes()) }
    }

    /// As a `&str` (Node-API writes UTF-8).
    pub fn as_str(&self) -> Result<&str, Throw> {
        std::str::from_utf8(&self.with_nul()[..self.len])
            .map_err(|_| Throw::internal("Node-API returned a string that is not UTF-8"))
    }
}

/// `ERR_INTERIOR_NUL`, naming the argument.
pub fn interior_nul(name: &str, offset: usize) -> Throw {
    Throw::range_error(
        ERR_INTERIOR_NUL,
        format!("{name} contains a NUL byte at offset {offset}; a NUL-terminated C string cannot carry it"),
    )
}

/// A `dest` argument: a string, non-empty, without NUL (the contract's checks, in that order).
pub fn read_dest(env: sys::napi_env, value: sys::napi_value, dest: &mut Utf8Arg) -> Result<&CStr, Throw> {
    if !dest.read(env, value)? {
        return Err(invalid_arg_type(env, "a non-empty string", "dest", value));
    }
    if dest.len() == 0 {
        return Err(Throw::range_error(ERR_INVALID_ARG_VALUE, "dest must be a non-empty string".to_owned()));
    }
    dest.c_str().map_err(|offset| interior_nul("dest", offset))
}

/// A `message` argument: a string without NUL.
pub fn read_message(
    env: sys::napi_env,
    value: sys::napi_value,
    message: &mut Utf8Arg,
) -> Result<&CStr, Throw> {
    if !message.read(env, value)? {
        return Err(invalid_arg_type(env, "a string", "message", value));
    }
    message.c_str().map_err(|offset| interior_nul("message", offset))
}
