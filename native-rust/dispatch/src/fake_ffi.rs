//! A Rust model of dispatcher.h for Miri, which cannot run the C++ core. Same contract on one thread: delivery in
//! registration order to the registrations present when the send began and not cancelled when their turn comes; the
//! lock is never held across a callback; ctx never reused; cancel under the wrong dest fails and keeps the
//! registration. Not modelled: cancel waiting for callbacks running on *other* threads (Miri runs the single-thread
//! tests only).

use std::ffi::{CStr, CString, c_char};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{DispatcherCtx, FFIWrapper};

struct Registration {
    ctx: DispatcherCtx,
    dest: CString,
    wrapper: *mut FFIWrapper,
    cancelled: AtomicBool,
}

#[derive(Default)]
struct State {
    registrations: Vec<Arc<Registration>>,
    next_ctx: DispatcherCtx,
}

pub struct Dispatcher {
    state: Mutex<State>,
}

pub fn dispatcher_new() -> *mut Dispatcher {
    Box::into_raw(Box::new(Dispatcher {
        state: Mutex::new(State { registrations: Vec::new(), next_ctx: 1 }),
    }))
}

/// # Safety
/// As `dispatcher_free` in dispatcher.h.
pub unsafe fn dispatcher_free(d: *mut Dispatcher) {
    if !d.is_null() {
        // SAFETY: `d` came from dispatcher_new and is freed once.
        unsafe {
            dispatcher_shutdown(d);
            drop(Box::from_raw(d));
        }
    }
}

/// # Safety
/// As `dispatcher_handler` in dispatcher.h.
pub unsafe fn dispatcher_handler(
    d: *mut Dispatcher,
    dest: *const c_char,
    w: *mut FFIWrapper,
) -> DispatcherCtx {
    // SAFETY: per dispatcher.h the arguments are valid.
    let (d, dest) = unsafe { (&*d, CStr::from_ptr(dest).to_owned()) };
    let mut state = d.state.lock().unwrap();
    let ctx = state.next_ctx;
    state.next_ctx += 1;
    state.registrations.push(Arc::new(Registration {
        ctx,
        dest,
        wrapper: w,
        cancelled: AtomicBool::new(false),
    }));
    ctx
}

/// # Safety
/// As `dispatcher_cancel` in dispatcher.h.
pub unsafe fn dispatcher_cancel(d: *mut Dispatcher, dest: *const c_char, ctx: DispatcherCtx) -> i32 {
    // SAFETY: per dispatcher.h the arguments are valid.
    let (d, dest) = unsafe { (&*d, CStr::from_ptr(dest)) };
    let mut state = d.state.lock().unwrap();
    match state.registrations.iter().position(|r| r.ctx == ctx && r.dest.as_c_str() == dest) {
        Some(index) => {
            state.registrations.remove(index).cancelled.store(true, Ordering::Relaxed);
            0
        }
        None => -1,
    }
}

/// # Safety
/// As `dispatcher_send` in dispatcher.h.
pub unsafe fn dispatcher_send(d: *mut Dispatcher, dest: *const c_char, msg: *const c_char) -> i32 {
    // SAFETY: per dispatcher.h the arguments are valid.
    let (d, key) = unsafe { (&*d, CStr::from_ptr(dest)) };
    let snapshot: Vec<Arc<Registration>> = {
        let state = d.state.lock().unwrap();
        state.registrations.iter().filter(|r| r.dest.as_c_str() == key).cloned().collect()
    };
    let mut delivered = 0;
    for registration in snapshot {
        let call = {
            let _state = d.state.lock().unwrap();
            if registration.cancelled.load(Ordering::Relaxed) {
                None
            } else {
                // SAFETY: not cancelled, so the caller's FFIWrapper is still lent to us.
                let w = unsafe { &*registration.wrapper };
                Some((w.callback, w.self_rust_side))
            }
        };
        if let Some((callback, self_rust_side)) = call {
            // SAFETY: the registration's own callback with its own `self`, and the send's strings.
            unsafe { callback(self_rust_side, dest, msg) };
            delivered += 1;
        }
    }
    delivered
}

/// # Safety
/// As `dispatcher_shutdown` in dispatcher.h.
pub unsafe fn dispatcher_shutdown(d: *mut Dispatcher) -> i32 {
    // SAFETY: per dispatcher.h `d` is valid.
    let d = unsafe { &*d };
    let mut state = d.state.lock().unwrap();
    let dropped = std::mem::take(&mut state.registrations);
    for registration in &dropped {
        registration.cancelled.store(true, Ordering::Relaxed);
    }
    dropped.len() as i32
}

/// # Safety
/// As `dispatcher_live` in dispatcher.h.
pub unsafe fn dispatcher_live(d: *const Dispatcher) -> u32 {
    // SAFETY: per dispatcher.h `d` is valid.
    unsafe { &*d }.state.lock().unwrap().registrations.len() as u32
}
