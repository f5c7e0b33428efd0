//! The Rust core of napi-ownership: Node-free, a plain C ABI.
//!
//! It does one thing, seed 003's `print_and_return` / `free_string` pair: copy UTF-8 bytes into a
//! fresh NUL-terminated buffer that **Rust owns** (`CString::into_raw`), hand the pointer out, and
//! take it back exactly once (`CString::from_raw`). Whoever receives a pointer from
//! `print_and_return*` borrows Rust's allocation until it gives the pointer to `free_string`; it must
//! never `free()` / `delete[]` it.
//!
//! Nothing here aborts or unwinds across the boundary: invalid input and allocation failure come
//! back as NULL (plus a status for `print_and_return_len`), and every body runs inside
//! `catch_unwind`.
//!
//! The C header `include/napi_ownership_rust_core.h` is generated from this file by `build.rs`.

use std::ffi::{CStr, CString, c_char};
use std::io::Write;
use std::panic::catch_unwind;
use std::sync::OnceLock;

/// The copy was made; the returned pointer is non-NULL.
pub const NAPI_OWNERSHIP_STATUS_OK: i32 = 0;
/// `bytes` was NULL.
pub const NAPI_OWNERSHIP_STATUS_NULL_INPUT: i32 = 1;
/// The input contains a 0 byte (a C string cannot carry it); `offset` is its index.
pub const NAPI_OWNERSHIP_STATUS_INTERIOR_NUL: i32 = 2;
/// The input is not valid UTF-8; `offset` is the index of the first bad byte.
pub const NAPI_OWNERSHIP_STATUS_INVALID_UTF8: i32 = 3;
/// The allocator could not provide `len + 1` bytes (or `len + 1` overflows).
pub const NAPI_OWNERSHIP_STATUS_ALLOC_FAILED: i32 = 4;

/// The environment variable that turns the address trace on (`=1`), read once per process.
const TRACE_ENV: &str = "NAPI_OWNERSHIP_TRACE";

/// Whether `NAPI_OWNERSHIP_TRACE=1` was set when this process first asked. Shared with the addon so
/// the whole Rust side reads the variable once.
pub fn trace_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os(TRACE_ENV).is_some_and(|v| v == "1"))
}

/// Writes one trace line to stderr. A failed write is ignored: tracing must never fail a call.
pub fn trace_line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "[napi-ownership rust] {args}");
}

/// Traces a non-NULL address (NULL in or out is an error the caller reports, not a journey step).
fn trace_address(what: &str, address: *const c_char) {
    if !address.is_null() && trace_enabled() {
        trace_line(format_args!("Rust {what} address: {address:p}"));
    }
}

/// Why a copy was not made: a status code and, for statuses 2 and 3, the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failure {
    status: i32,
    offset: usize,
}

impl Failure {
    const NULL_INPUT: Self = Self { status: NAPI_OWNERSHIP_STATUS_NULL_INPUT, offset: 0 };
    const ALLOC_FAILED: Self = Self { status: NAPI_OWNERSHIP_STATUS_ALLOC_FAILED, offset: 0 };
}

/// Index of the first 0 byte, if any (std's memchr, through `CStr::from_bytes_until_nul`).
fn first_nul(bytes: &[u8]) -> Option<usize> {
    CStr::from_bytes_until_nul(bytes).ok().map(CStr::count_bytes)
}

/// An empty buffer with room for exactly `len` bytes plus the NUL, or `None` when the allocator
/// refuses (or `len + 1` overflows). `try_reserve_exact` reports failure instead of aborting.
fn try_alloc_with_nul(len: usize) -> Option<Vec<u8>> {
    let total = len.checked_add(1)?;
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(total).ok()?;
    Some(buffer)
}

/// Copies `len` bytes from `bytes` into a new buffer, then checks **the copy** (no 0 byte, then
/// valid UTF-8, in the contract's order) and turns it into a Rust-owned C string.
///
/// Copy first, validate second: the input may be memory another thread can write while we read
/// it (a Uint8Array over a SharedArrayBuffer), so we never hold a `&[u8]` over it and what we vouch
/// for is exactly what we return.
///
/// # Safety
/// `bytes` must be valid for reads of `len` bytes (any non-NULL pointer when `len == 0`).
unsafe fn copy_then_check(bytes: *const u8, len: usize) -> Result<CString, Failure> {
    let mut buffer = try_alloc_with_nul(len).ok_or(Failure::ALLOC_FAILED)?;
    // SAFETY: the caller guarantees `len` readable bytes at `bytes`; `buffer` is our fresh
    // allocation with capacity `len + 1`, so the ranges cannot overlap and the first `len` bytes
    // are initialised before `set_len`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes, buffer.as_mut_ptr(), len);
        buffer.set_len(len);
    }
    check_and_seal(buffer)
}

/// Checks the bytes of `buffer` (no 0 byte, then valid UTF-8, in the contract's order) and terminates it: the
/// core's C string. `buffer` must have capacity for one byte more than its length.
fn check_and_seal(mut buffer: Vec<u8>) -> Result<CString, Failure> {
    if let Some(offset) = first_nul(&buffer) {
        return Err(Failure { status: NAPI_OWNERSHIP_STATUS_INTERIOR_NUL, offset });
    }
    if let Err(error) = std::str::from_utf8(&buffer) {
        return Err(Failure { status: NAPI_OWNERSHIP_STATUS_INVALID_UTF8, offset: error.valid_up_to() });
    }
    debug_assert!(buffer.capacity() > buffer.len());
    buffer.push(0);
    // SAFETY: the bytes hold no 0 byte (checked above), so the terminator just pushed is the only
    // NUL and it is last; the capacity had room for it, so no reallocation happened.
    Ok(unsafe { CString::from_vec_with_nul_unchecked(buffer) })
}

/// Copies bytes already known to hold no 0 byte into a new C string; `None` if allocation fails.
fn copy_validated(bytes: &[u8]) -> Option<CString> {
    let mut buffer = try_alloc_with_nul(bytes.len())?;
    buffer.extend_from_slice(bytes);
    buffer.push(0);
    debug_assert_eq!(first_nul(&buffer), Some(bytes.len()));
    // SAFETY: the caller checked `bytes` has no 0 byte, so the terminator pushed above is the only
    // NUL and it is last. Capacity is exactly `len + 1`, so turning the Vec into the CString's boxed
    // slice does not reallocate.
    Some(unsafe { CString::from_vec_with_nul_unchecked(buffer) })
}

/// Copies a NUL-terminated UTF-8 string into a new Rust-owned C string (seed 003's shape).
///
/// Returns NULL if `input` is NULL, is not valid UTF-8, or the copy cannot be allocated. Never
/// panics across the boundary.
///
/// Ownership: the returned pointer is owned by Rust; the caller borrows it and must give it back
/// to `free_string` exactly once.
///
/// # Safety
/// `input` must be NULL or point to a NUL-terminated string that stays readable and unchanged for
/// the duration of the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn print_and_return(input: *const c_char) -> *mut c_char {
    trace_address("received", input);
    let copied = catch_unwind(|| {
        if input.is_null() {
            return None;
        }
        // SAFETY: `input` is non-NULL and, per this function's contract, NUL-terminated and
        // readable for the call; the CStr borrows the caller's bytes and does not outlive the call.
        let bytes = unsafe { CStr::from_ptr(input) }.to_bytes();
        // A CStr holds no interior NUL, so only UTF-8 can fail before the copy.
        std::str::from_utf8(bytes).ok()?;
        copy_validated(bytes)
    });
    // Ownership moves out: freed by `free_string` when the caller is done with it.
    let output = copied.ok().flatten().map_or(std::ptr::null_mut(), CString::into_raw);
    trace_address("returning", output);
    output
}

/// Copies `len` bytes (UTF-8, no 0 byte) into a new Rust-owned NUL-terminated C string.
///
/// On success returns the copy and stores `NAPI_OWNERSHIP_STATUS_OK` in `*status`. On failure
/// returns NULL and stores the reason in `*status` (`NULL_INPUT`, `INTERIOR_NUL`, `INVALID_UTF8`,
/// `ALLOC_FAILED`) and, for `INTERIOR_NUL` / `INVALID_UTF8`, the byte offset in `*offset`
/// (otherwise 0). `status` and `offset` may be NULL. A 0 byte is reported before invalid UTF-8.
///
/// Ownership: the returned pointer is owned by Rust; the caller borrows it and must give it back
/// to `free_string` exactly once. `bytes` is only borrowed for the call.
///
/// # Safety
/// `bytes` must be NULL or valid for reads of `len` bytes for the duration of the call (for
/// `len == 0` any non-NULL pointer will do). `status` / `offset` must each be NULL or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn print_and_return_len(
    bytes: *const u8,
    len: usize,
    status: *mut i32,
    offset: *mut usize,
) -> *mut c_char {
    trace_address("received", bytes.cast());
    let copied = catch_unwind(|| {
        if bytes.is_null() {
            return Err(Failure::NULL_INPUT);
        }
        // SAFETY: `bytes` is non-NULL and, per this function's contract, valid for reads of `len`
        // bytes for the call. The core only reads it once, into its own copy.
        unsafe { copy_then_check(bytes, len) }
    });
    // A panic cannot happen on these paths; if one ever did, the only honest report left is
    // "no copy was made", which is what ALLOC_FAILED tells the caller.
    let (output, failure) = match copied {
        // Ownership moves out: freed by `free_string` when the caller is done with it.
        Ok(Ok(copy)) => (copy.into_raw(), Failure { status: NAPI_OWNERSHIP_STATUS_OK, offset: 0 }),
        Ok(Err(failure)) => (std::ptr::null_mut(), failure),
        Err(_panic) => (std::ptr::null_mut(), Failure::ALLOC_FAILED),
    };
    if !status.is_null() {
        // SAFETY: non-NULL `status` is valid for a write per this function's contract.
        unsafe { status.write(failure.status) };
    }
    if !offset.is_null() {
        // SAFETY: non-NULL `offset` is valid for a write per this function's contract.
        unsafe { offset.write(failure.offset) };
    }
    trace_address("returning", output);
    output
}

/// Frees a string returned by `print_and_return` / `print_and_return_len` (seed 003's
/// `CString::from_raw`). NULL is a no-op.
///
/// # Safety
/// `s` must be NULL or a pointer returned by `print_and_return*` that has not been freed yet, whose
/// bytes before the terminator contain no 0 byte (`CString::from_raw` re-measures the length with
/// `strlen` to rebuild the allocation). After the call the pointer is dangling.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_string(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: `s` came from `CString::into_raw` in this crate and, per this function's
        // contract, is freed here exactly once with its NUL still the first 0 byte. Ownership
        // comes back to Rust and the CString drop releases the allocation.
        drop(unsafe { CString::from_raw(s) });
    });
}

// ---------------------------------------------------------------------------------------------------------------------
// The safe Rust API: what the addon calls. The C ABI above stays for the C++ seed program and cbindgen's header;
// this wraps it, so a Rust caller needs no `unsafe` to copy a string and can never free one twice.

/// Why [`CoreString::copy`] made no copy (the C ABI's `status`, with its `offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyError {
    /// The input holds a 0 byte at this offset: a NUL-terminated C string cannot carry it.
    InteriorNul { offset: usize },
    /// The input is not valid UTF-8; the longest valid prefix is `offset` bytes.
    InvalidUtf8 { offset: usize },
    /// The allocator refused `len + 1` bytes.
    AllocFailed,
}

/// Why [`CoreString::fill`] made no string: the copy's own reasons, or the writer's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillError<E> {
    Copy(CopyError),
    Fill(E),
}

impl From<Failure> for CopyError {
    fn from(failure: Failure) -> Self {
        match failure.status {
            NAPI_OWNERSHIP_STATUS_INTERIOR_NUL => CopyError::InteriorNul { offset: failure.offset },
            NAPI_OWNERSHIP_STATUS_INVALID_UTF8 => CopyError::InvalidUtf8 { offset: failure.offset },
            _ => CopyError::AllocFailed,
        }
    }
}

/// A string copy owned by the core: made by [`CoreString::copy`] (the C ABI's `print_and_return_len`) and given
/// back to the C ABI's `free_string` exactly once, when it drops (seed 003's `CString::into_raw` /
/// `CString::from_raw`, as a Rust owner).
///
/// The bytes may be lent to JS (an external ArrayBuffer) through [`as_mut_ptr`](Self::as_mut_ptr), and JS may
/// write a 0 byte through such a view; Drop repairs the terminator before freeing, so `CString::from_raw`
/// (which re-measures with `strlen`) always rebuilds the allocation it made. A string never lent skips that scan
/// (for 1 MiB it is a pass over every byte on each free).
#[derive(Debug)]
pub struct CoreString {
    ptr: std::ptr::NonNull<c_char>,
    /// Bytes without the NUL.
    len: usize,
    /// Set once [`as_mut_ptr`](Self::as_mut_ptr) handed the address to a writer: Drop must repair the terminator.
    lent: std::sync::atomic::AtomicBool,
}

// SAFETY: a CoreString uniquely owns a heap allocation of this crate's allocator; nothing about it is tied to a
// thread, and `free_string` may run on any thread (a view's finalizer may drop it off the JS thread).
unsafe impl Send for CoreString {}
// SAFETY: `&CoreString` only hands out the address and the length; writing needs `&mut` or a raw pointer whose
// user (JS through a view) the owner accounts for.
unsafe impl Sync for CoreString {}

impl CoreString {
    /// Copies `bytes` (borrowed for the call) into a new NUL-terminated string of the core, after checking **the
    /// copy**: no 0 byte, then valid UTF-8, in the contract's order. `bytes` is read exactly once (one `memcpy`),
    /// so a caller whose bytes another thread may write (a Uint8Array over a SharedArrayBuffer) gets a consistent
    /// copy and the verdict on that copy.
    pub fn copy(bytes: &[u8]) -> Result<Self, CopyError> {
        let mut status = NAPI_OWNERSHIP_STATUS_OK;
        let mut offset = 0usize;
        // SAFETY: `bytes` is valid for `bytes.len()` reads for the call (its pointer is non-NULL, dangling for an
        // empty slice, which the C ABI reads nothing through); `status`/`offset` are locals.
        let copy = unsafe { print_and_return_len(bytes.as_ptr(), bytes.len(), &mut status, &mut offset) };
        match (std::ptr::NonNull::new(copy), status) {
            // Ownership moves from the C ABI to this value: freed by `free_string` when it drops.
            (Some(ptr), NAPI_OWNERSHIP_STATUS_OK) => Ok(CoreString::owned(ptr, bytes.len())),
            (_, NAPI_OWNERSHIP_STATUS_INTERIOR_NUL) => Err(CopyError::InteriorNul { offset }),
            (_, NAPI_OWNERSHIP_STATUS_INVALID_UTF8) => Err(CopyError::InvalidUtf8 { offset }),
            // ALLOC_FAILED, and NULL_INPUT, which a slice never is.
            _ => Err(CopyError::AllocFailed),
        }
    }

    /// A string of at most `len` bytes that `fill` writes in place, into the core's own allocation (so the binding
    /// converts a long JS string straight into it: no staging buffer, no second copy), then checked exactly as
    /// [`copy`](Self::copy) checks its copy. `fill` gets `len + 1` bytes of room (a writer such as Node-API adds a
    /// NUL) and returns how many bytes of string it wrote (at most `len`), or its own error. A buffer refused, or a
    /// failed `fill`, is freed here.
    pub fn fill<E>(
        len: usize,
        fill: impl FnOnce(&mut [std::mem::MaybeUninit<u8>]) -> Result<usize, E>,
    ) -> Result<Self, FillError<E>> {
        let mut buffer = try_alloc_with_nul(len).ok_or(FillError::Copy(CopyError::AllocFailed))?;
        let written = fill(&mut buffer.spare_capacity_mut()[..len + 1]).map_err(FillError::Fill)?;
        assert!(written <= len, "CoreString::fill: the writer reported {written} bytes for room of {len}");
        // SAFETY: `fill` initialised the first `written` bytes (its contract), within the capacity of `len + 1`.
        unsafe { buffer.set_len(written) };
        let string = check_and_seal(buffer).map_err(|failure| FillError::Copy(CopyError::from(failure)))?;
        // Ownership moves from the CString to this value: `free_string` (CString::from_raw) frees it when it drops.
        let ptr = std::ptr::NonNull::new(string.into_raw()).expect("CString::into_raw is never NULL");
        Ok(CoreString::owned(ptr, written))
    }

    /// Takes ownership of a sealed string of the core (`CString::into_raw`) of `len` bytes, not lent.
    fn owned(ptr: std::ptr::NonNull<c_char>, len: usize) -> Self {
        CoreString { ptr, len, lent: std::sync::atomic::AtomicBool::new(false) }
    }

    /// Bytes without the NUL.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of the first byte (NUL-terminated; the string's identity in the address trace).
    pub fn as_ptr(&self) -> *const c_char {
        self.ptr.as_ptr()
    }

    /// The address to lend the `len()` bytes to a writer (JS, through an external ArrayBuffer). The allocation
    /// stays valid until this value drops; whoever lends it must keep this value alive while the borrower can
    /// reach the bytes.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        // Relaxed: Drop reads it through `&mut self`, after whatever handed this value over synchronised.
        self.lent.store(true, std::sync::atomic::Ordering::Relaxed);
        self.ptr.as_ptr().cast()
    }

    /// Makes the NUL at `len` the first 0 byte again, whatever a borrower wrote.
    fn restore_terminator(&mut self) {
        // SAFETY: `ptr` is our live allocation of `len + 1` bytes; `&mut self` means no view is lent any more (the
        // owner drops us only after the last one let go), so nothing else aliases it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u8>(), self.len) };
        if bytes.contains(&0) {
            bytes.iter_mut().filter(|b| **b == 0).for_each(|b| *b = b'?');
        }
    }
}

impl Drop for CoreString {
    fn drop(&mut self) {
        if *self.lent.get_mut() {
            self.restore_terminator();
        }
        // What `CString::from_raw` will measure must be the allocation it made (checked in debug and test builds: a
        // lent string whose repair was skipped fails here, not silently in the allocator).
        // SAFETY: `ptr` is our live allocation, NUL-terminated at `len`.
        debug_assert_eq!(unsafe { CStr::from_ptr(self.ptr.as_ptr()) }.count_bytes(), self.len);
        // SAFETY: `ptr` came from `print_and_return_len` and this is its only owner, so it is freed exactly once,
        // with its terminator the first 0 byte (restored above).
        unsafe { free_string(self.ptr.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fill` accepts and refuses exactly what `copy` does, frees what it refuses, and passes the writer's error on.
    #[test]
    fn fill_checks_like_copy() {
        let long = vec![b'm'; 1 << 20];
        let inputs: [&[u8]; 6] = [b"", b"abc", b"a\0c", "\u{e9}t\u{e9}".as_bytes(), b"bad \xff byte", &long];
        for input in inputs {
            let filled = CoreString::fill(input.len(), |room| {
                assert_eq!(room.len(), input.len() + 1);
                for (slot, byte) in room.iter_mut().zip(input) {
                    slot.write(*byte);
                }
                Ok::<usize, ()>(input.len())
            });
            match (CoreString::copy(input), filled) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.len(), b.len());
                    // SAFETY: both are live strings of the core with `len()` bytes.
                    let (a, b) = unsafe {
                        (
                            std::slice::from_raw_parts(a.as_mut_ptr(), a.len()).to_vec(),
                            std::slice::from_raw_parts(b.as_mut_ptr(), b.len()).to_vec(),
                        )
                    };
                    assert_eq!(a, b);
                }
                (Err(a), Err(FillError::Copy(b))) => assert_eq!(a, b),
                (a, b) => panic!("copy {a:?} but fill {b:?}"),
            }
        }
        assert_eq!(
            CoreString::fill(8, |_| Err::<usize, &str>("writer failed")).unwrap_err(),
            FillError::Fill("writer failed")
        );
        // A writer that writes less than it was given room for: the string is what it wrote.
        let short = CoreString::fill(8, |room| {
            room[0].write(b'x');
            Ok::<usize, ()>(1)
        })
        .unwrap();
        assert_eq!(short.len(), 1);
    }

    /// Runs `print_and_return_len` and returns (pointer, status, offset).
    fn call_len(bytes: &[u8]) -> (*mut c_char, i32, usize) {
        let mut status = -1;
        let mut offset = usize::MAX;
        // SAFETY: `bytes` is a live slice; status/offset are live locals.
        let out = unsafe { print_and_return_len(bytes.as_ptr(), bytes.len(), &mut status, &mut offset) };
        (out, status, offset)
    }

    /// Reads a returned C string and frees it.
    fn take(out: *mut c_char) -> Vec<u8> {
        assert!(!out.is_null());
        // SAFETY: `out` was just returned by the core and is freed right after the copy.
        let bytes = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
        // SAFETY: freed once, from print_and_return*.
        unsafe { free_string(out) };
        bytes
    }

    fn round_trip_len(input: &[u8]) {
        let (out, status, offset) = call_len(input);
        assert_eq!((status, offset), (NAPI_OWNERSHIP_STATUS_OK, 0));
        assert_ne!(out.cast_const().cast::<u8>(), input.as_ptr(), "the core returns a copy");
        assert_eq!(take(out), input);
    }

    fn round_trip_cstr(input: &str) {
        let c = CString::new(input).unwrap();
        // SAFETY: `c` is a live NUL-terminated string.
        let out = unsafe { print_and_return(c.as_ptr()) };
        assert_ne!(out.cast_const(), c.as_ptr());
        assert_eq!(take(out), input.as_bytes());
    }

    #[test]
    fn round_trips_ascii_emoji_empty_and_one_mib() {
        let big = "x".repeat(1 << 20);
        for input in ["Hello from C++", "héllo 🦀 wörld 👍🏽", "", big.as_str()] {
            round_trip_len(input.as_bytes());
            round_trip_cstr(input);
        }
    }

    #[test]
    fn empty_input_with_dangling_pointer() {
        // An empty JS Uint8Array may have no data pointer; the binding passes a dangling one.
        let mut status = -1;
        let dangling = std::ptr::NonNull::<u8>::dangling().as_ptr();
        // SAFETY: len 0 reads nothing through the non-NULL dangling pointer; status is a live local.
        let out = unsafe { print_and_return_len(dangling, 0, &mut status, std::ptr::null_mut()) };
        assert_eq!(status, NAPI_OWNERSHIP_STATUS_OK);
        assert_eq!(take(out), b"");
    }

    #[test]
    fn interior_nul_reports_its_offset() {
        for (input, at) in [(&b"\0abc"[..], 0), (b"ab\0c", 2), (b"abc\0", 3), ("é\0".as_bytes(), 2)] {
            let (out, status, offset) = call_len(input);
            assert!(out.is_null());
            assert_eq!((status, offset), (NAPI_OWNERSHIP_STATUS_INTERIOR_NUL, at), "{input:?}");
        }
    }

    #[test]
    fn invalid_utf8_reports_first_bad_byte() {
        let cases: [(&[u8], usize); 5] = [
            (b"\xff", 0),
            (b"ab\xffcd", 2),
            (b"ok\xc3", 2),                   // truncated two-byte sequence
            (b"\xe2\x82\xac\xe2\x28\xa1", 3), // "€" then a broken three-byte sequence
            (b"\xed\xa0\x80", 0),             // an encoded surrogate is not UTF-8
        ];
        for (input, at) in cases {
            let (out, status, offset) = call_len(input);
            assert!(out.is_null());
            assert_eq!((status, offset), (NAPI_OWNERSHIP_STATUS_INVALID_UTF8, at), "{input:?}");
        }
        let bad = CString::new(&b"ab\xff"[..]).unwrap();
        // SAFETY: `bad` is a live NUL-terminated string.
        assert!(unsafe { print_and_return(bad.as_ptr()) }.is_null());
    }

    #[test]
    fn nul_is_reported_before_bad_utf8() {
        let (out, status, offset) = call_len(b"\xff\0");
        assert!(out.is_null());
        assert_eq!((status, offset), (NAPI_OWNERSHIP_STATUS_INTERIOR_NUL, 1));
    }

    #[test]
    fn null_input() {
        // SAFETY: NULL is an accepted input for both.
        assert!(unsafe { print_and_return(std::ptr::null()) }.is_null());
        let mut status = -1;
        let mut offset = 7;
        // SAFETY: NULL bytes is accepted; status/offset are live locals.
        let out = unsafe { print_and_return_len(std::ptr::null(), 5, &mut status, &mut offset) };
        assert!(out.is_null());
        assert_eq!((status, offset), (NAPI_OWNERSHIP_STATUS_NULL_INPUT, 0));
    }

    #[test]
    fn status_and_offset_may_be_null() {
        let input = b"abc";
        // SAFETY: live slice; NULL out-pointers are accepted.
        let out =
            unsafe { print_and_return_len(input.as_ptr(), 3, std::ptr::null_mut(), std::ptr::null_mut()) };
        assert_eq!(take(out), b"abc");
        let with_nul = c"a".to_bytes_with_nul();
        // SAFETY: as above.
        let out =
            unsafe { print_and_return_len(with_nul.as_ptr(), 2, std::ptr::null_mut(), std::ptr::null_mut()) };
        assert!(out.is_null());
    }

    #[test]
    fn free_null_is_a_no_op() {
        // SAFETY: NULL is explicitly allowed.
        unsafe { free_string(std::ptr::null_mut()) };
    }

    #[test]
    fn huge_allocation_fails_instead_of_aborting() {
        assert!(try_alloc_with_nul(usize::MAX).is_none(), "len + 1 overflows");
        assert!(try_alloc_with_nul(isize::MAX as usize).is_none(), "beyond isize::MAX");
        assert!(try_alloc_with_nul(usize::MAX / 2 - 1).is_none());
        assert!(try_alloc_with_nul(16).is_some_and(|b| b.capacity() == 17));
    }

    #[test]
    fn core_string_is_the_safe_owner() {
        let copy = CoreString::copy("héllo".as_bytes()).unwrap();
        assert_eq!(copy.len(), 6);
        // SAFETY: test-only write inside the allocation, as JS could through a view.
        unsafe { copy.as_mut_ptr().add(2).write(0) };
        drop(copy); // the terminator is repaired before free_string (valgrind/miri would see a bad free otherwise)
        assert_eq!(CoreString::copy(b"ab\0").unwrap_err(), CopyError::InteriorNul { offset: 2 });
        assert_eq!(CoreString::copy(b"a\xff").unwrap_err(), CopyError::InvalidUtf8 { offset: 1 });
        assert_eq!(CoreString::copy(b"\xff\0").unwrap_err(), CopyError::InteriorNul { offset: 1 });
        assert!(CoreString::copy(b"").unwrap().is_empty());
    }
}
