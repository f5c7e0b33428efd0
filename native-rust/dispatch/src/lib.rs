//! Seed 000's boxed callbacks, for real: a Rust [`OnSend`] handler is boxed, wrapped twice and lent to the C++
//! dispatcher core (`native-cpp/core/include/napi_ownership/dispatcher.h`, compiled in by `build.rs`), and every box
//! comes back and is dropped exactly once.
//!
//! ```text
//! handler_:  Box<H> --into_raw--> RustSideHandler { opaque } --into_raw--> FFIWrapper { callback, self_rust_side }
//!            --into_raw--> dispatcher_handler(d, dest, ffi_wrapper) -> ctx      => UserSpaceWrapper { ffi_wrapper, ctx }
//! cancel_:   dispatcher_cancel(d, dest, ctx) == 0  =>  Box::from_raw x 3, dropped (seed 000's fix)
//!                                            == -1 =>  nothing freed; the UserSpaceWrapper is handed back (Err)
//! ```
//!
//! Why two boxes around the handler: `Box<dyn OnSend>` is a fat pointer (data + vtable) and cannot travel through a
//! C `void*`; `RustSideHandler` is a thin-pointer box that holds it.
//!
//! Who owns what
//! - The [`UserSpaceWrapper`] owns the three boxes. The dispatcher only borrows them, from `dispatcher_handler` until
//!   `dispatcher_cancel` returns 0 (or `dispatcher_shutdown` dropped the registration).
//! - `cancel_` frees them when the dispatcher gives them back, and only then. With the wrong dest the registration
//!   stays active, so `cancel_` returns the wrapper in `Err` instead of freeing borrowed memory (seed 000 ignored this
//!   path). Dropping a wrapper cancels it under its own dest and frees the boxes, so nothing can leak or dangle.
//! - A wrapper keeps its dispatcher alive (an `Arc`), so its ctx can never be given to a dispatcher that did not issue
//!   it, and the C dispatcher is freed when the last [`Dispatcher`] or wrapper goes.
//!
//! One refinement of the seed: a callback may cancel its own registration (or one whose callback is further up the
//! same stack). The header lets the caller free the boxes as soon as cancel returns, but in Rust that is undefined
//! behaviour: `on_send(&self)` is still running, and a `&self` argument must stay valid until its call returns
//! (Miri reports "deallocation ... strongly protected" under Stacked and Tree Borrows). So each `handler_cb` call
//! pushes a frame on a thread-local list; a release that finds its registration there (the dispatcher has already
//! waited for every *other* thread) hands the boxes to the outermost such frame, which frees them right after its
//! `on_send` returns. Nothing observable changes: the handler is not called again.
//!
//! Threads: the C core is thread-safe. [`Dispatcher<H>`] and [`UserSpaceWrapper<H>`] are `Send`/`Sync` only when the
//! handler type `H` is (`Dispatcher<dyn OnSend + Send + Sync>`); the default `Dispatcher` (`H = dyn OnSend`) stays on
//! the thread that made it, which is what a handler holding Node-API values needs. [`Dispatcher::post`] and
//! [`Producer`] (asynchronous delivery on the dispatcher's worker thread, see `post.rs`) need `H: Sync`: the worker
//! calls `on_send(&H)` on its own thread, while the boxes stay owned (and are dropped) where their wrapper lives.
//!
//! ```compile_fail
//! // A Dispatcher of plain `dyn OnSend` handlers cannot leave its thread: another thread's send would run them there.
//! let dispatcher: napi_ownership_dispatch::Dispatcher = napi_ownership_dispatch::Dispatcher::new().unwrap();
//! std::thread::spawn(move || drop(dispatcher));
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::{self, NonNull};
use std::sync::Arc;

mod ffi;
mod post;

pub use ffi::{DispatcherCtx, FFIWrapper};
pub use post::{Delivered, PostError, PostRefused, Producer, StartRefused};

/// Seed 000's handler trait: called once per message sent to the dest it is registered under.
pub trait OnSend {
    fn on_send(&self, dest: &str, msg: &str);
}

// ---------------------------------------------------------------------------------------------------------------------
// The dispatcher

/// Owns one C dispatcher instance (`dispatcher_new`); `dispatcher_free` runs when the last owner goes.
struct RawDispatcher(NonNull<ffi::Dispatcher>);

// SAFETY: dispatcher.h: "Every function may be called from any thread; a mutex guards the registrations". This type
// only ever passes the pointer to those functions, so moving or sharing it between threads is sound. Whether the
// *handlers* may run on another thread is a separate question, answered by the bounds on `Dispatcher<H>`.
unsafe impl Send for RawDispatcher {}
// SAFETY: as for Send: every use is a call to a thread-safe dispatcher function.
unsafe impl Sync for RawDispatcher {}

impl Drop for RawDispatcher {
    fn drop(&mut self) {
        if ON_WORKER.get() == 0 {
            // SAFETY: the pointer came from dispatcher_new and this is its only owner (every Dispatcher, wrapper and
            // Producer holds it through one Arc), so it is freed once, after everything that could use it is gone.
            // Not inside a worker callback, and a synchronous send borrows a Dispatcher (so it cannot be the last).
            unsafe { ffi::dispatcher_free(self.0.as_ptr()) };
            return;
        }
        // The last owner went inside a callback on a dispatcher's worker thread (a posted closure that held it, say).
        // dispatcher_free must not run there: the worker cannot join itself and uses the dispatcher again when the
        // callback returns. A thread of its own frees it instead: its shutdown joins the worker first.
        // ManuallyDrop: if no thread can be started, the closure is dropped here without freeing (nor re-entering
        // this Drop): leaking the dispatcher is the only sound choice left then.
        let raw = ManuallyDrop::new(RawDispatcher(self.0));
        let free = move || drop(ManuallyDrop::into_inner(raw));
        drop(std::thread::Builder::new().name("dispatcher_free".to_owned()).spawn(free));
    }
}

thread_local! {
    /// How many callbacks of a dispatcher's worker thread (handlers and `on_delivered`) are running on this thread.
    /// Non-zero only on a worker thread: see `RawDispatcher::drop`.
    static ON_WORKER: Cell<u32> = const { Cell::new(0) };
}

/// Marks this thread as inside a worker callback for as long as it lives.
struct OnWorker;

impl OnWorker {
    fn enter() -> Self {
        ON_WORKER.set(ON_WORKER.get() + 1);
        OnWorker
    }
}

impl Drop for OnWorker {
    fn drop(&mut self) {
        ON_WORKER.set(ON_WORKER.get() - 1);
    }
}

/// A message dispatcher keyed by destination (seed 000's "libdummy", the C++ core), for handlers of type `H`.
///
/// `Dispatcher` (= `Dispatcher<dyn OnSend>`) takes any handler and stays on its thread; a
/// `Dispatcher<dyn OnSend + Send + Sync>` may be shared between threads.
pub struct Dispatcher<H: ?Sized + OnSend = dyn OnSend> {
    raw: Arc<RawDispatcher>,
    /// Not Send/Sync by default (a raw pointer marker): see the impls below.
    _handlers: PhantomData<*const H>,
}

// SAFETY: through a shared or moved Dispatcher another thread can run `send`, which calls `on_send(&H)` there, and
// can release a registration whose boxes are then dropped there: both are sound when H is Send + Sync. The C core
// itself is thread-safe (see RawDispatcher).
unsafe impl<H: ?Sized + OnSend + Send + Sync> Send for Dispatcher<H> {}
// SAFETY: as for Send.
unsafe impl<H: ?Sized + OnSend + Send + Sync> Sync for Dispatcher<H> {}

impl<H: ?Sized + OnSend> fmt::Debug for Dispatcher<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher").field("ptr", &self.raw.0).field("live", &self.live()).finish()
    }
}

/// The innermost `send` in progress on this thread. Lives on `send_cstr`'s stack, linked from [`SENDING`].
struct Sending<'a> {
    dest: &'a CStr,
    msg: &'a CStr,
    /// `dest` and `msg` as text, measured and checked once per send instead of once per handler.
    text: Option<(&'a str, &'a str)>,
    /// The first panic caught in a handler of this send, resumed by `send_cstr` once every handler ran (a panic must
    /// never unwind through the C++ frames in between).
    panic: Cell<Option<Box<dyn Any + Send>>>,
}

thread_local! {
    /// The innermost `Sending` of this thread (NULL if none); each `send_cstr` saves and restores it, so nested sends
    /// each keep their own.
    static SENDING: Cell<*const Sending<'static>> = const { Cell::new(ptr::null()) };
}

/// Keeps the first panic of a send; later ones are dropped (and so is a panic outside any send).
fn keep_first_panic(sending: Option<&Sending<'_>>, payload: Box<dyn Any + Send>) {
    let later = match sending {
        Some(sending) => match sending.panic.take() {
            Some(first) => {
                sending.panic.set(Some(first));
                Some(payload)
            }
            None => {
                sending.panic.set(Some(payload));
                None
            }
        },
        None => Some(payload),
    };
    // A payload's own Drop may panic; not even that may unwind into C++.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(later)));
}

impl<H: ?Sized + OnSend> Dispatcher<H> {
    /// A new, empty dispatcher, or `None` if the C++ core could not allocate one.
    pub fn new() -> Option<Self> {
        // Ownership: the instance is ours from here; freed by dispatcher_free when the last owner drops.
        let raw = NonNull::new(ffi::dispatcher_new())?;
        Some(Dispatcher { raw: Arc::new(RawDispatcher(raw)), _handlers: PhantomData })
    }

    fn ptr(&self) -> *mut ffi::Dispatcher {
        self.raw.0.as_ptr()
    }

    /// Delivers `msg` to every handler registered under `dest` (synchronously, on this thread, in registration
    /// order) and returns how many ran. If a handler panicked, the others still ran and the first panic is resumed
    /// here.
    pub fn send_cstr(&self, dest: &CStr, msg: &CStr) -> u32 {
        let text = dest.to_str().ok().zip(msg.to_str().ok());
        let sending = Sending { dest, msg, text, panic: Cell::new(None) };
        // The handlers of this send (and of none nested in it) find it here.
        let outer = SENDING.replace(ptr::from_ref(&sending).cast::<Sending<'static>>());
        // SAFETY: the dispatcher is alive (we hold it); `dest` and `msg` are NUL-terminated and outlive the call.
        let delivered = unsafe { ffi::dispatcher_send(self.ptr(), dest.as_ptr(), msg.as_ptr()) };
        SENDING.set(outer);
        if let Some(payload) = sending.panic.take() {
            resume_unwind(payload);
        }
        // -2 only for a NULL argument, which cannot happen here.
        u32::try_from(delivered).unwrap_or(0)
    }

    /// [`send_cstr`](Self::send_cstr) for Rust strings; `Err` if either holds a NUL byte (nothing is sent).
    pub fn send(&self, dest: &str, msg: &str) -> Result<u32, InteriorNul> {
        with_c_str("dest", dest, |dest| with_c_str("message", msg, |msg| self.send_cstr(dest, msg)))?
    }

    /// Drops every registration (`dispatcher_shutdown`); returns how many it dropped. The dispatcher stays usable.
    ///
    /// The boxes of those registrations stay with their [`UserSpaceWrapper`]s: the dispatcher no longer borrows
    /// them, so dropping a wrapper (or a `cancel_` that fails) frees them.
    pub fn shutdown(&self) -> u32 {
        // SAFETY: the dispatcher is alive (we hold it).
        let dropped = unsafe { ffi::dispatcher_shutdown(self.ptr()) };
        u32::try_from(dropped).unwrap_or(0)
    }

    /// Registrations the dispatcher currently holds.
    pub fn live(&self) -> u32 {
        // SAFETY: the dispatcher is alive (we hold it).
        unsafe { ffi::dispatcher_live(self.ptr()) }
    }
}

/// A string with a NUL byte cannot be passed as a C string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InteriorNul {
    /// Which argument: `dest` or `message`.
    pub arg: &'static str,
    /// Byte offset of the first NUL.
    pub offset: usize,
}

impl fmt::Display for InteriorNul {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} contains a NUL byte at offset {}; a NUL-terminated C string cannot carry it",
            self.arg, self.offset
        )
    }
}

impl std::error::Error for InteriorNul {}

/// Runs `f` with `s` as a C string, through a stack buffer when it is short (no allocation).
fn with_c_str<R>(arg: &'static str, s: &str, f: impl FnOnce(&CStr) -> R) -> Result<R, InteriorNul> {
    const STACK: usize = 128;
    let bytes = s.as_bytes();
    if let Ok(prefix) = CStr::from_bytes_until_nul(bytes) {
        return Err(InteriorNul { arg, offset: prefix.count_bytes() });
    }
    if bytes.len() < STACK {
        let mut buffer = [0u8; STACK];
        buffer[..bytes.len()].copy_from_slice(bytes);
        let c =
            CStr::from_bytes_until_nul(&buffer).expect("a zeroed buffer longer than the string has a NUL");
        return Ok(f(c));
    }
    let c = CString::new(bytes).expect("no NUL: checked above");
    Ok(f(&c))
}

// ---------------------------------------------------------------------------------------------------------------------
// Registrations: handler_, cancel_, handler_cb

/// Seed 000's middle box: what `FFIWrapper::self_rust_side` points to.
pub struct RustSideHandler<H: ?Sized> {
    /// The boxed handler (`Box::into_raw`): freed with the other two boxes.
    opaque: *mut H,
    /// The FFIWrapper that points here, so a deferred release can rebuild all three boxes from `handler_cb`.
    ffi_wrapper: *mut FFIWrapper,
}

/// One `handler_cb` call in progress on this thread: lives on that call's stack, linked from [`RUNNING`].
struct Running {
    /// The registration being called (its `self_rust_side`).
    side: *const c_void,
    /// Set by a release while this call is running: this call frees the boxes when its `on_send` returns.
    free_on_return: Cell<bool>,
    /// The call further out on this thread's stack (NULL at the outermost).
    outer: *const Running,
}

thread_local! {
    /// The innermost `handler_cb` call running on this thread (NULL if none). A thread-local list, not a counter in
    /// the registration: once `dispatcher_cancel` returned 0 (or a shutdown dropped the registration), no *other*
    /// thread is inside the callback (the dispatcher waited for them), so only this thread's calls can still be
    /// using the boxes, and finding them needs no shared atomics on the delivery path.
    static RUNNING: Cell<*const Running> = const { Cell::new(ptr::null()) };
}

/// Seed 000's handle to a registration: owns the three boxes the dispatcher borrows.
///
/// Give it to [`cancel_`] to cancel the registration. Dropping it also cancels (under its own dest) and frees the
/// boxes: a registration lives exactly as long as its wrapper.
#[must_use = "dropping a UserSpaceWrapper cancels its registration"]
pub struct UserSpaceWrapper<H: ?Sized + OnSend = dyn OnSend> {
    /// Seed 000's field: the FFIWrapper box (`Box::into_raw`), which leads to the other two.
    ffi_wrapper: *mut FFIWrapper,
    /// Seed 000's field: the dispatcher's id for this registration, never reused within a dispatcher.
    ctx: DispatcherCtx,
    /// The dest it was registered under: Drop cancels under it.
    dest: CString,
    /// The dispatcher that issued `ctx`, kept alive while this wrapper exists.
    dispatcher: Arc<RawDispatcher>,
    /// Set once `dispatcher_cancel` returned 0 for it: then Drop only frees.
    cancelled: bool,
    _owns: PhantomData<Box<H>>,
}

// SAFETY: the wrapper owns the boxes; moving it to another thread moves the right to cancel (a thread-safe C call,
// which waits for callbacks running on other threads) and to drop Box<H> there, which needs H: Send.
unsafe impl<H: ?Sized + OnSend + Send> Send for UserSpaceWrapper<H> {}

impl<H: ?Sized + OnSend> UserSpaceWrapper<H> {
    /// The dispatcher's id for this registration.
    pub fn ctx(&self) -> DispatcherCtx {
        self.ctx
    }

    /// The dest it was registered under.
    pub fn dest(&self) -> &CStr {
        &self.dest
    }

    /// The boxed handler, borrowed from the wrapper that owns it.
    pub fn handler(&self) -> &H {
        // SAFETY: the three boxes live until this wrapper is consumed (cancel_) or dropped, neither of which can
        // happen while this borrow of it lasts. A shared borrow may coexist with the dispatcher's `on_send(&H)`
        // calls: on another thread only when H: Sync (post, or a Dispatcher shared between threads).
        unsafe { &*(*(*self.ffi_wrapper).self_rust_side.cast::<RustSideHandler<H>>()).opaque }
    }
}

impl<H: ?Sized + OnSend> fmt::Debug for UserSpaceWrapper<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpaceWrapper")
            .field("ctx", &self.ctx)
            .field("dest", &self.dest)
            .finish_non_exhaustive()
    }
}

impl<H: ?Sized + OnSend> Drop for UserSpaceWrapper<H> {
    fn drop(&mut self) {
        if !self.cancelled {
            // SAFETY: the dispatcher is alive (we hold it) and `dest` is NUL-terminated. 0: cancelled now. -1: the
            // registration is already gone (dispatcher_shutdown dropped it; ctx is never reused and `dest` is the one
            // it was registered under, so it cannot be "registered elsewhere"). Either way the dispatcher is done
            // with the boxes.
            let status =
                unsafe { ffi::dispatcher_cancel(self.dispatcher.0.as_ptr(), self.dest.as_ptr(), self.ctx) };
            debug_assert!(status == 0 || status == -1, "dispatcher_cancel returned {status}");
        }
        // SAFETY: `ffi_wrapper` came from handler_ and is released once, here; the dispatcher no longer borrows it.
        unsafe { release::<H>(self.ffi_wrapper) };
    }
}

/// Why [`handler_`] registered nothing. The handler is handed back.
pub struct Refused<H: ?Sized> {
    pub reason: RefusedReason,
    pub handle: Box<H>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// `dest` holds a NUL byte.
    InteriorNul(InteriorNul),
    /// `dispatcher_handler` returned 0 (allocation failed).
    Dispatcher,
}

impl<H: ?Sized> fmt::Debug for Refused<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refused").field("reason", &self.reason).finish_non_exhaustive()
    }
}

/// Registers `handle` for messages to `dest` (seed 000's `handler_`): boxes it as `RustSideHandler` and `FFIWrapper`
/// and lends those to the dispatcher. The returned wrapper owns all three boxes.
pub fn handler_<H: ?Sized + OnSend>(
    dispatcher: &Dispatcher<H>,
    dest: &str,
    handle: Box<H>,
) -> Result<UserSpaceWrapper<H>, Refused<H>> {
    let dest = match CString::new(dest) {
        Ok(dest) => dest,
        Err(error) => {
            let reason =
                RefusedReason::InteriorNul(InteriorNul { arg: "dest", offset: error.nul_position() });
            return Err(Refused { reason, handle });
        }
    };
    // Ownership of the three boxes moves into raw pointers here; from now on the returned UserSpaceWrapper owns them
    // (freed by cancel_ when dispatcher_cancel returns 0, or by the wrapper's Drop).
    let handle = Box::into_raw(handle);
    let rust_side_obj = Box::new(RustSideHandler { opaque: handle, ffi_wrapper: ptr::null_mut() });
    let rust_side = Box::into_raw(rust_side_obj);
    let ffi_obj =
        Box::new(FFIWrapper { callback: handler_cb::<H>, self_rust_side: rust_side.cast::<c_void>() });
    let ffi_obj = Box::into_raw(ffi_obj);
    // SAFETY: `rust_side` was just leaked from a Box and nothing else has seen it yet.
    unsafe { (*rust_side).ffi_wrapper = ffi_obj };

    // SAFETY: the dispatcher is alive; `dest` is NUL-terminated (the core copies it); `ffi_obj` and what it points to
    // stay allocated until the dispatcher is done with them (cancel_ / Drop below). The dispatcher borrows them now.
    let ctx = unsafe { ffi::dispatcher_handler(dispatcher.ptr(), dest.as_ptr(), ffi_obj) };
    if ctx == 0 {
        // Nothing was registered, so nothing borrows the boxes: take them back and return the handler.
        // SAFETY: all three pointers came from Box::into_raw above and were never shared.
        let handle = unsafe { take_boxes::<H>(ffi_obj) };
        return Err(Refused { reason: RefusedReason::Dispatcher, handle });
    }
    Ok(UserSpaceWrapper {
        ffi_wrapper: ffi_obj,
        ctx,
        dest,
        dispatcher: Arc::clone(&dispatcher.raw),
        cancelled: false,
        _owns: PhantomData,
    })
}

/// Cancels the registration of `user_wrapper` under `dest` (seed 000's `cancel_`).
///
/// `Ok(())`: `dispatcher_cancel` returned 0; the handler will not be called again and its three boxes are freed
/// (now, or, if its callback is running on this thread, as soon as that call returns).
///
/// `Err(user_wrapper)`: `dispatcher_cancel` refused (`dest` is not the dest it was registered under, or `dest` holds a
/// NUL, or `user_wrapper` belongs to another dispatcher, or a shutdown already dropped the registration). Nothing
/// was freed: the registration, if still active, stays active, and the wrapper comes back with its boxes.
pub fn cancel_<H: ?Sized + OnSend>(
    dispatcher: &Dispatcher<H>,
    dest: &str,
    mut user_wrapper: UserSpaceWrapper<H>,
) -> Result<(), UserSpaceWrapper<H>> {
    // Another dispatcher's ctx would name an unrelated registration here.
    if !Arc::ptr_eq(&dispatcher.raw, &user_wrapper.dispatcher) {
        return Err(user_wrapper);
    }
    let ctx = user_wrapper.ctx;
    // SAFETY: the dispatcher is alive; `dest` is NUL-terminated for the call.
    let status = with_c_str("dest", dest, |dest| unsafe {
        ffi::dispatcher_cancel(dispatcher.ptr(), dest.as_ptr(), ctx)
    });
    if status != Ok(0) {
        // -1: not registered under `dest` (it stays registered if it is); a NUL: no registration has such a dest.
        return Err(user_wrapper);
    }
    // The dispatcher is done with the boxes: the Drop below rebuilds all three with Box::from_raw and drops them
    // (seed 000's fix), without cancelling a second time.
    user_wrapper.cancelled = true;
    drop(user_wrapper);
    Ok(())
}

/// The dispatcher is done with this registration: free its boxes now, or, if a `handler_cb` call is inside it on
/// this thread (further up the stack: the dispatcher has waited for other threads), let the outermost such call free
/// them when its `on_send` returns.
///
/// # Safety
/// `ffi_wrapper` comes from [`handler_`], the dispatcher no longer borrows it, and it is released exactly once.
// The seeded bug leaves `H` unused (it never rebuilds the boxes).
#[cfg_attr(feature = "seed-bug-cancel-keeps-boxes", allow(clippy::extra_unused_type_parameters))]
unsafe fn release<H: ?Sized + OnSend>(ffi_wrapper: *mut FFIWrapper) {
    // SAFETY: the FFIWrapper is alive until the boxes are freed, which has not happened yet (only one release).
    let side = unsafe { (*ffi_wrapper).self_rust_side }.cast_const();
    let mut outermost: Option<&Running> = None;
    let mut frame = RUNNING.get();
    // SAFETY: every frame on the list is alive: each `handler_cb` unlinks its own before returning.
    while let Some(running) = unsafe { frame.as_ref() } {
        if running.side == side {
            outermost = Some(running);
        }
        frame = running.outer;
    }
    match outermost {
        // That call is still using the handler (its `&self`): it frees the boxes after on_send returns.
        Some(running) => running.free_on_return.set(true),
        // SAFETY: no call is inside the handler and none can enter (the dispatcher is done with it): ours to free.
        #[cfg(not(feature = "seed-bug-cancel-keeps-boxes"))]
        None => drop(unsafe { take_boxes::<H>(ffi_wrapper) }),
        // Seeded bug 1 (leak-test self-test builds only): seed 000's original cancel_, which never rebuilt the boxes.
        // black_box keeps the optimiser from treating the pointer as dead and the leak as removable.
        #[cfg(feature = "seed-bug-cancel-keeps-boxes")]
        None => {
            std::hint::black_box(ffi_wrapper);
        }
    }
}

/// Rebuilds the three boxes of a registration and returns the handler, dropping the two wrappers (seed 000's fix:
/// `Box::from_raw` the FFIWrapper, then the RustSideHandler it points to, then the handler that points to).
///
/// # Safety
/// `ffi_wrapper` comes from [`handler_`], nothing borrows it or the boxes behind it any more, and it is taken once.
unsafe fn take_boxes<H: ?Sized>(ffi_wrapper: *mut FFIWrapper) -> Box<H> {
    // SAFETY: per the contract above: each pointer came from Box::into_raw in handler_ and is rebuilt exactly once.
    unsafe {
        let ffi_obj_to_drop = Box::from_raw(ffi_wrapper);
        let self_rust_side_to_drop =
            Box::from_raw(ffi_obj_to_drop.self_rust_side.cast::<RustSideHandler<H>>());
        Box::from_raw(self_rust_side_to_drop.opaque)
    }
}

/// The `DispatcherCallback` of every registration: calls the boxed handler. Never unwinds into C++ (a panic is kept
/// and resumed by [`Dispatcher::send_cstr`]).
///
/// # Safety
/// Called by the dispatcher only, with the `self_rust_side` of a registration it still holds, and NUL-terminated
/// `dest` and `msg` that live for the call.
unsafe extern "C" fn handler_cb<H: ?Sized + OnSend>(
    self_rust_side: *mut c_void,
    dest: *const c_char,
    msg: *const c_char,
) {
    let side = self_rust_side.cast::<RustSideHandler<H>>();
    // SAFETY: the dispatcher calls us only while the registration is held, so the boxes are alive now, and this
    // frame keeps any release from freeing them until we unlink it (see `release`). Only copies of the two
    // immutable pointers are taken, never a `&RustSideHandler` that could outlive the boxes.
    let (opaque, ffi_wrapper) = unsafe { ((*side).opaque, (*side).ffi_wrapper) };
    let running = Running { side: self_rust_side, free_on_return: Cell::new(false), outer: RUNNING.get() };
    RUNNING.set(&running);

    // SAFETY: a non-NULL SENDING is the frame of the innermost `send_cstr` on this thread, which is the send that
    // is calling us (the dispatcher delivers synchronously, on the sending thread); it outlives this call.
    let sending = unsafe { SENDING.get().as_ref() };
    // No `send_cstr` on this thread: the dispatcher's worker is delivering a posted message.
    let _on_worker = sending.is_none().then(OnWorker::enter);

    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let (dest, msg) = match sending {
            // The send's own strings (the dispatcher passes them through): already measured and checked.
            Some(Sending { dest: d, msg: m, text: Some(text), .. })
                if d.as_ptr() == dest && m.as_ptr() == msg =>
            {
                (Cow::Borrowed(text.0), Cow::Borrowed(text.1))
            }
            // SAFETY: the dispatcher passes NUL-terminated strings that live for the call.
            _ => unsafe { (CStr::from_ptr(dest).to_string_lossy(), CStr::from_ptr(msg).to_string_lossy()) },
        };
        // SAFETY: the handler box is alive for the whole call: `running` is linked, so a release (even by this very
        // on_send, cancelling its own registration) leaves the freeing to us.
        unsafe { &*opaque }.on_send(&dest, &msg);
    }));
    RUNNING.set(running.outer);
    if let Err(payload) = outcome {
        keep_first_panic(sending, payload);
    }

    if running.free_on_return.get() {
        // Released while we were inside (the handler cancelled itself, or a cancel or shutdown further down this
        // stack did) and we are the outermost call of it: ours to free. The dispatcher does not touch the
        // FFIWrapper after this callback returns.
        let freed = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: released (the dispatcher is done with it), no call of it is left on this stack, and the
            // dispatcher waited for other threads: exactly one party gets here.
            drop(unsafe { take_boxes::<H>(ffi_wrapper) });
        }));
        if let Err(payload) = freed {
            keep_first_panic(sending, payload);
        }
    }
}

#[cfg(test)]
mod tests;
