//! The string exports of docs/raw-contract.md over the Rust core.
//!
//! Ownership: the core allocates every copy (`print_and_return_len`) and only the core frees it
//! (`free_string`). The binding holds the pointer in a [`CoreString`] inside a table slot; JS holds
//! only a handle number. A view lends the bytes to JS through an external ArrayBuffer that
//! co-owns them ([`SharedBytes`]): the bytes are freed when the handle and every such buffer have
//! let go, so native code a view was handed to (fs, zlib, a socket) never reads freed memory.

use std::ffi::c_char;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::error_codes::*;
use napi::bindgen_prelude::{ArrayBuffer, FromNapiValue, JsValue, ToNapiValue, Uint8ArraySlice};
use napi::{Env, sys};
use napi_ownership_core::{self as core, CopyError, CoreString};

use crate::js::{CallResult, Throw, failed, napi_failed};
use crate::ledger::SharedLedger;
use crate::raw::refs::Reference;
use crate::raw::values;

/// Weak references to the newest view of a live string (the ArrayBuffer and the Uint8Array), so
/// `string_view` can hand the same Uint8Array out again while it lives. They own nothing.
/// Raw Node-API references (`raw::refs`): napi-rs has weak references only to `#[napi]` class instances.
pub(crate) struct View {
    pub(crate) buffer: Reference,
    pub(crate) array: Reference,
}

/// A string's bytes once a view has lent them to JS (seed 004's MemoryGuard: whoever can reach the
/// bytes keeps them alive). Co-owned by the table slot, while the handle is live, and by every
/// external ArrayBuffer over them whose finalizer has not run yet; freed by the core when the last
/// of those lets go ([`free_shared`]). Reached through a raw pointer from the slot and from each
/// buffer's finalize hint. Its shares are one atomic word, because a runtime may finalize a buffer
/// on another thread (Deno: V8's backing-store deleter) while the JS thread releases the handle.
pub struct SharedBytes {
    pub(crate) bytes: CoreString,
    /// The shares: [`SLOT_SHARE`] while the table slot holds one (the handle is live), plus one per
    /// external ArrayBuffer over the bytes not yet finalized. The owner that takes it to 0 frees.
    pub(crate) shares: AtomicU32,
    /// Seeded bug only: the bytes were already given back to the core.
    pub(crate) freed_early: AtomicBool,
    pub(crate) ledger: Arc<SharedLedger>,
}

/// The table slot's share in [`SharedBytes::shares`]; the bits below it count buffers.
pub(crate) const SLOT_SHARE: u32 = 1 << 31;

/// Who owns a live string's bytes: the slot alone, or the slot together with views.
pub(crate) enum Bytes {
    Owned(CoreString),
    /// The slot's share of bytes lent to views; the pointer came from `Box::into_raw` and stays
    /// valid while this share or any buffer's share is held.
    Shared(NonNull<SharedBytes>),
}

/// A slot's payload: the core's copy and, once `string_view` was called, its view.
pub struct NativeString {
    pub(crate) bytes: Bytes,
    pub(crate) len: usize,
    pub(crate) view: Option<View>,
}

impl NativeString {
    pub(crate) fn as_ptr(&self) -> *mut c_char {
        match &self.bytes {
            // The address only (`as_ptr`, not `as_mut_ptr`, which marks the bytes lent to a writer).
            Bytes::Owned(bytes) => bytes.as_ptr().cast_mut(),
            // SAFETY: the slot holds a share, so the SharedBytes is alive.
            Bytes::Shared(shared) => unsafe { shared.as_ref() }.bytes.as_ptr().cast_mut(),
        }
    }

    /// Ends the handle's hold on the bytes: our weak references go, and the bytes are given back to
    /// the core now if no view shares them, else by the last view's finalizer. Updates the ledger
    /// and the external-memory report.
    pub(crate) fn release(mut self, env: sys::napi_env, ledger: &SharedLedger) {
        if let Some(view) = self.view.take() {
            delete_view_refs(env, view);
        }
        let len = self.len;
        match self.bytes {
            // Never lent: we were reporting the bytes, and `bytes` drops here (the core frees it).
            Bytes::Owned(_) => {
                let _ = ledger.adjust_live_bytes(env, -(len as i64));
            }
            Bytes::Shared(pointer) => {
                // SAFETY: the slot's share keeps the SharedBytes alive until `free_shared` below.
                let shared = unsafe { pointer.as_ref() };
                #[cfg(feature = "seed-bug-view-holds-no-share")]
                {
                    // Seeded bug (leak-test self-test builds only): the bytes go now, while views may
                    // still point at them.
                    // SAFETY: deliberately unsound; only built for the leak-test self-test.
                    unsafe { core::free_string(std::hint::black_box(shared.bytes.as_mut_ptr().cast())) };
                    shared.freed_early.store(true, Ordering::Relaxed);
                }
                // Counted as view-held first: the last buffer's finalizer, which may run on another
                // thread the moment the slot's share ends, un-counts it.
                ledger.view_held.fetch_add(1, Ordering::Relaxed);
                ledger.view_held_bytes.fetch_add(len as u64, Ordering::Relaxed);
                if shared.shares.fetch_and(!SLOT_SHARE, Ordering::AcqRel) == SLOT_SHARE {
                    // No buffer shared them: we were reporting the bytes, and they go now.
                    let _ = ledger.adjust_live_bytes(env, -(len as i64));
                    // SAFETY: no buffer shares it and the slot's share just ended: we are the last owner.
                    unsafe { free_shared(pointer) };
                }
                // Else views still hold them (V8 counts them through those buffers): freed by the
                // last buffer's finalizer.
            }
        }
    }

    /// Environment teardown: JS is gone, so our references go; bytes a view's buffer still shares
    /// are left to that buffer's finalizer (the ledger is kept alive by its `Rc`), the rest go now.
    pub fn release_at_teardown(mut self, env: sys::napi_env) {
        if let Some(view) = self.view.take() {
            delete_view_refs(env, view);
        }
        if let Bytes::Shared(pointer) = self.bytes {
            // SAFETY: the slot's share keeps the SharedBytes alive until `free_shared`.
            let shared = unsafe { pointer.as_ref() };
            shared.ledger.view_held.fetch_add(1, Ordering::Relaxed);
            shared.ledger.view_held_bytes.fetch_add(self.len as u64, Ordering::Relaxed);
            if shared.shares.fetch_and(!SLOT_SHARE, Ordering::AcqRel) == SLOT_SHARE {
                // SAFETY: the slot was the last owner.
                unsafe { free_shared(pointer) };
            }
        }
    }
}

impl NativeString {
    /// A slot's payload for a fresh copy: the slot alone owns it until the first view.
    pub fn new(copy: CoreString) -> Self {
        let len = copy.len();
        NativeString { bytes: Bytes::Owned(copy), len, view: None }
    }

    /// Bytes without the NUL.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes as a new JS string (a copy: JS keeps nothing pointing at native memory), through napi-rs's
    /// `&str` conversion straight from the native bytes; bytes made invalid UTF-8 through a view go through a
    /// lossy Rust copy (U+FFFD per maximal invalid subpart, as V8's own UTF-8 decoding does).
    pub fn text(&self, env: sys::napi_env) -> CallResult {
        // SAFETY: the slot holds the bytes (`len` of them, live while `self` is); only JS writes them, through a
        // view, and no JS runs while this copy is made.
        let bytes = unsafe { std::slice::from_raw_parts(self.as_ptr().cast::<u8>(), self.len) };
        let made = match std::str::from_utf8(bytes) {
            // SAFETY: `env` is the current call's; Node-API copies `text` into the new string.
            Ok(text) => unsafe { <&str as ToNapiValue>::to_napi_value(env, text) },
            // SAFETY: as above.
            Err(_) => unsafe { String::to_napi_value(env, String::from_utf8_lossy(bytes).into_owned()) },
        };
        made.map_err(|error| Throw::internal(&format!("creating a JS string failed: {error}")))
    }

    /// The address of the bytes (for `string_info`).
    pub fn address(&self) -> *const c_char {
        self.as_ptr()
    }

    /// `string_view`: a Uint8Array over the native bytes, zero-copy. Its ArrayBuffer co-owns the bytes (one share,
    /// ended by `view_finalized`), so they outlive `free_string` for as long as JS, or native code JS handed the view
    /// to, can reach them. The same Uint8Array is returned while it is alive. A copy (counted in `view_copies`)
    /// where external buffers are refused, or in a `copy-views` build.
    pub fn view(
        &mut self,
        env: sys::napi_env,
        ledger: &Arc<SharedLedger>,
        view_copies: &mut u64,
    ) -> CallResult {
        if cfg!(feature = "copy-views") {
            *view_copies += 1;
            return copy_view(env, self);
        }
        let len = self.len;
        // Reuse the view while it lives; else a new Uint8Array over a still-living buffer (which
        // already holds its share).
        if let Some(view) = &mut self.view {
            if let Some(array) = view.array.value(env) {
                return Ok(array);
            }
            if let Some(buffer) = view.buffer.value(env) {
                let array = create_uint8array(env, buffer, len)?;
                let reference = weak_reference(env, array)?;
                // The old reference is ours and its value was collected.
                std::mem::replace(&mut view.array, reference).delete(env);
                return Ok(array);
            }
        }
        // No view yet, or JS let go of buffer and array: lend the bytes again, with a share.
        if let Some(old) = self.view.take() {
            delete_view_refs(env, old);
        }
        let pointer = match &mut self.bytes {
            Bytes::Shared(pointer) => *pointer,
            owned @ Bytes::Owned(_) => {
                // The first view: ownership moves from the slot into a SharedBytes, of which the slot
                // holds one share and each external buffer one more; freed by the last (free_shared).
                let Bytes::Owned(bytes) = std::mem::replace(owned, Bytes::Shared(NonNull::dangling())) else {
                    unreachable!()
                };
                let shared = Box::new(SharedBytes {
                    bytes,
                    shares: AtomicU32::new(SLOT_SHARE),
                    freed_early: AtomicBool::new(false),
                    ledger: Arc::clone(ledger),
                });
                let pointer = NonNull::from(Box::leak(shared));
                *owned = Bytes::Shared(pointer);
                pointer
            }
        };
        // SAFETY: the slot's share keeps the SharedBytes alive for this call.
        let shared = unsafe { pointer.as_ref() };
        // This buffer's share, taken before the buffer exists: where the runtime refuses external buffers, napi-rs
        // copies the bytes and runs the finalize closure at once, which ends it again. While any buffer lives, V8
        // counts the bytes itself (an external backing store), so we stop reporting them: reported once, by one
        // of us (the finalizer of the last buffer reports them again while the handle is live).
        if shared.shares.fetch_add(1, Ordering::AcqRel) == SLOT_SHARE {
            let _ = ledger.adjust_live_bytes(env, -(len as i64));
        }
        let data = shared.bytes.as_mut_ptr();
        // SAFETY: the bytes stay allocated while any share is held, and this buffer's share is ended only by its
        // finalize closure (`view_released`), which the runtime runs once, on whatever thread it finalizes the
        // buffer (Deno: a V8 background thread). The closure ignores its `Env` and touches only atomics and the
        // core's free. napi-rs's `raw_finalize_with_custom_callback` makes no Node-API call around it. If
        // creating the buffer fails outright (not the copy fallback), napi-rs keeps the closure and this share
        // is never ended: the bytes then wait for teardown's bookkeeping, which only happens as the env dies.
        let created = unsafe {
            Uint8ArraySlice::from_external(
                &Env::from_raw(env),
                data,
                len,
                ViewShare(pointer),
                |_env: Env, share: ViewShare| view_released(share.0),
            )
        };
        let array = created.map_err(|error| Throw::internal(&format!("creating a view failed: {error}")))?;
        if len > 0 && array.as_ptr() != data.cast_const() {
            // The runtime refused external buffers (napi_no_external_buffers_allowed: Electron, V8 sandbox
            // builds): napi-rs made a copy and the share already ended. JS owns the copy; nothing is kept for it.
            *view_copies += 1;
            return Ok(array.raw());
        }
        let array = array.raw();
        let buffer = array_buffer_of(env, array)?;
        let buffer_ref = weak_reference(env, buffer)?;
        let array_ref = match weak_reference(env, array) {
            Ok(array_ref) => array_ref,
            Err(thrown) => {
                // `buffer_ref` was created just above and is not stored anywhere.
                buffer_ref.delete(env);
                return Err(thrown);
            }
        };
        self.view = Some(View { buffer: buffer_ref, array: array_ref });
        Ok(array)
    }
}

/// Gives shared bytes back to the core once their last owner let go, and un-counts them (the slot's
/// release counted them as view-held). Runs on whichever thread ended the last share.
///
/// # Safety
/// `pointer` came from `Box::into_raw` in `string_view` and its shares reached 0, so nothing else
/// can reach it.
pub(crate) unsafe fn free_shared(pointer: NonNull<SharedBytes>) {
    // SAFETY: see the function's contract: we are the only owner now.
    let shared = unsafe { Box::from_raw(pointer.as_ptr()) };
    let SharedBytes { bytes, freed_early, ledger, .. } = *shared;
    ledger.view_held.fetch_sub(1, Ordering::Relaxed);
    ledger.view_held_bytes.fetch_sub(bytes.len() as u64, Ordering::Relaxed);
    if freed_early.load(Ordering::Relaxed) {
        std::mem::forget(bytes); // seeded bug: already freed
    }
    // Else `bytes` drops here: freed by the core (its Drop repairs the terminator, then `free_string`).
}

/// A buffer's share of a [`SharedBytes`], handed to napi-rs as the finalize hint of the buffer's
/// external memory and ended by [`view_released`].
pub(crate) struct ViewShare(NonNull<SharedBytes>);

/// Finalize closure of an external buffer lent by `string_view`: that buffer's share ends. Node runs
/// it on the JS thread, deferred after GC or at environment teardown; Deno 2.9 may run it on a V8
/// background thread (from the backing store's deleter), so it touches only atomics and the core's
/// free, and never its `Env`: no Node-API call, no state.
fn view_released(pointer: NonNull<SharedBytes>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: this buffer's share keeps the SharedBytes alive until it is ended below.
        let shared = unsafe { pointer.as_ref() };
        if !shared.ledger.on_js_thread() {
            shared.ledger.view_finalized_off_thread.fetch_add(1, Ordering::Relaxed);
        }
        let len = shared.bytes.len() as i64;
        let ledger = Arc::clone(&shared.ledger);
        match shared.shares.fetch_sub(1, Ordering::AcqRel) - 1 {
            // SAFETY: the slot's share ended earlier and this was the last buffer's.
            0 => unsafe { free_shared(pointer) },
            // The handle is live and no buffer is left, so V8 no longer counts these bytes: we report
            // them again, on the JS thread's next batch.
            SLOT_SHARE => ledger.defer_live_bytes(len),
            _ => {}
        }
    }));
}

/// The ArrayBuffer under a Uint8Array of this call (raw: napi-rs's `TypedArray` does not give it; raw/values.rs).
fn array_buffer_of(env: sys::napi_env, array: sys::napi_value) -> Result<sys::napi_value, Throw> {
    values::array_buffer_of(env, array).map_err(|status| failed(env, status, "napi_get_typedarray_info"))
}

pub(crate) fn delete_view_refs(env: sys::napi_env, view: View) {
    // Both references were created by `string_view` for this env and are deleted only here, once, when their
    // string leaves the table (or its view is replaced).
    view.array.delete(env);
    view.buffer.delete(env);
}

// ---------------------------------------------------------------------------------------------
// print_and_return

pub(crate) fn alloc_failed(len: usize) -> Throw {
    Throw::range_error(
        ERR_NATIVE_ALLOC,
        format!("could not allocate {} bytes for the native copy", len.saturating_add(1)),
    )
}

pub(crate) fn trace_input(ptr: *const u8, len: usize, how: &str) {
    if core::trace_enabled() {
        core::trace_line(format_args!("JS input address: {ptr:p} ({len} B, {how})"));
    }
}

/// Hands `len` bytes at `data` (borrowed for the call) to the core, which returns its own copy.
/// The core reads the bytes once (one copy) and validates that copy, so even a Uint8Array on a
/// SharedArrayBuffer another thread writes gets a consistent verdict.
pub(crate) fn copy_in_core(data: *const u8, len: usize) -> Result<CoreString, Throw> {
    let bytes: &[u8] = if len == 0 || data.is_null() {
        // An empty Uint8Array may have a NULL data pointer; the core reads nothing for len 0.
        &[]
    } else {
        // SAFETY: the callers pass Node-API's pointer to `len` bytes of an argument (a JS string's UTF-8 copy
        // on our stack or heap, or a Uint8Array's data), valid for this call; the core reads it with one memcpy.
        unsafe { std::slice::from_raw_parts(data, len) }
    };
    // Ownership moves from the core to the CoreString: freed by the core when it drops.
    CoreString::copy(bytes).map_err(|error| copy_error(error, len))
}

/// The contract's error for a copy the core refused.
pub(crate) fn copy_error(error: CopyError, len: usize) -> Throw {
    match error {
        CopyError::InteriorNul { offset } => Throw::range_error(
            ERR_INTERIOR_NUL,
            format!(
                "input contains a NUL byte at offset {offset}; a NUL-terminated C string cannot carry it"
            ),
        ),
        CopyError::InvalidUtf8 { offset } => Throw::range_error(
            ERR_INVALID_UTF8,
            format!("input is not valid UTF-8 (first bad byte at offset {offset})"),
        ),
        CopyError::AllocFailed => alloc_failed(len),
    }
}

/// A Uint8Array over all `len` bytes of a live ArrayBuffer (napi-rs's `Uint8ArraySlice::from_arraybuffer`: one
/// `napi_get_arraybuffer_info`, one `napi_create_typedarray`).
pub(crate) fn create_uint8array(env: sys::napi_env, buffer: sys::napi_value, len: usize) -> CallResult {
    // SAFETY: `buffer` is a live ArrayBuffer of this call's scope, of exactly `len` bytes.
    let buffer = unsafe { ArrayBuffer::from_napi_value(env, buffer) }
        .map_err(|error| napi_failed(env, "napi_get_arraybuffer_info", error))?;
    let array = Uint8ArraySlice::from_arraybuffer(&buffer, 0, len)
        .map_err(|error| napi_failed(env, "napi_create_typedarray", error))?;
    Ok(array.raw())
}

/// A weak reference (`raw::refs`) to an object of this call.
pub(crate) fn weak_reference(env: sys::napi_env, value: sys::napi_value) -> Result<Reference, Throw> {
    Reference::weak(env, value).map_err(|status| failed(env, status, "napi_create_reference"))
}

/// A view that is a copy, where the runtime refuses external buffers
/// (`napi_no_external_buffers_allowed`: Electron, V8 sandbox builds) or this build acts as one
/// (`copy-views`). JS owns the copy; it shares nothing, so nothing native is freed for it, and
/// writes to it do not reach the native bytes.
pub(crate) fn copy_view(env: sys::napi_env, string: &NativeString) -> CallResult {
    // SAFETY: the slot holds the bytes (`len` of them) for this call; the copy is made before any JS runs.
    let bytes = unsafe { std::slice::from_raw_parts(string.as_ptr().cast::<u8>(), string.len) };
    // JS owns the copy (napi-rs's engine-owned ArrayBuffer): nothing native is kept for it.
    let copy = Uint8ArraySlice::copy_from(&Env::from_raw(env), bytes)
        .map_err(|error| Throw::internal(&format!("copying a view failed: {error}")))?;
    Ok(copy.raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_contract_codes() {
        let code = |bytes: &[u8]| match copy_in_core(bytes.as_ptr(), bytes.len()) {
            Err(Throw::New { code, message, .. }) => (code, message),
            _ => panic!("expected an error"),
        };
        assert_eq!(
            code(b"ab\0"),
            (
                ERR_INTERIOR_NUL,
                "input contains a NUL byte at offset 2; a NUL-terminated C string cannot carry it".into()
            )
        );
        assert_eq!(
            code(b"a\xff"),
            (ERR_INVALID_UTF8, "input is not valid UTF-8 (first bad byte at offset 1)".into())
        );
        assert!(copy_in_core(std::ptr::null(), 0).is_ok(), "an empty Uint8Array may have no data pointer");
    }
}
